// `continuum plan` through the real binary: the text output against a golden file, the JSON output
// parsed and round-tripped, and planning errors as exit code 2. No daemons; the host facts come
// from CONTINUUM_USER / CONTINUUM_LOCAL_CORES / CONTINUUM_EXTERNAL_CORES so the output is stable.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "continuum/plan/plan.h"
#include "continuum/util/process.h"

namespace fs = std::filesystem;
using continuum::util::ProcessSpec;
using continuum::util::run_process;

namespace {

const fs::path kSource = CONTINUUM_SOURCE_DIR;

struct Outcome {
  int code = -1;
  std::string out, err;
};

Outcome plan(std::vector<std::string> args, const std::map<std::string, std::string>& env = {}) {
  ProcessSpec spec;
  spec.argv = {CONTINUUM_BINARY, "plan"};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.env = {{"CONTINUUM_USER", "test"}, {"CONTINUUM_LOCAL_CORES", "8"}};
  for (auto& [k, v] : env) spec.env[k] = v;
  spec.timeout = std::chrono::seconds(60);
  auto r = run_process(spec);
  if (!r.ok()) return {-1, "", r.error().message};
  return {r->exit_code, r->out, r->err};
}

std::string read(const fs::path& f) {
  std::ifstream in(f);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class TempDir {
 public:
  TempDir() : path_(fs::temp_directory_path() / ("plan_cli_" + std::to_string(::getpid()))) {
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  fs::path write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name) << text;
    return path_ / name;
  }

 private:
  fs::path path_;
};

TEST(PlanCli, BenchCloudTextMatchesGolden) {
  Outcome r = plan({(kSource / "configuration/bench_cloud.cfg").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const fs::path golden = kSource / "tests/data/plan/bench_cloud.txt";
  // CONTINUUM_UPDATE_GOLDEN=1 rewrites the file after an intended change (review the diff).
  if (const char* u = std::getenv("CONTINUUM_UPDATE_GOLDEN"); u && std::string(u) == "1")
    std::ofstream(golden) << r.out;
  EXPECT_EQ(r.out, read(golden));
}

TEST(PlanCli, JsonParsesAndRoundTrips) {
  Outcome r = plan({"--format", "json", (kSource / "configuration/bench_cloud.cfg").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);  // throws (fails the test) if not JSON
  EXPECT_EQ(j["nodes"].size(), 3u);
  EXPECT_EQ(j["nodes"][0]["name"], "cloud_controller_test");
  EXPECT_EQ(j["nodes"][0]["ip"], "192.168.100.2");
  EXPECT_EQ(j["nodes"][2]["ip"], "192.168.100.4");
  EXPECT_EQ(j["hosts"][0]["physical_cores"], 8);
  // `plan --format json` adds the derived tc commands ("tc", from infra/netem) to the plan.
  ASSERT_TRUE(j.contains("tc"));
  EXPECT_EQ(j["tc"]["endpoint0"].size(), 6u);
  j.erase("tc");
  auto p = continuum::plan::from_json(j);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(continuum::plan::to_json(*p), j);
  EXPECT_EQ(continuum::plan::to_json(*p).dump(2), j.dump(2));
}

const char* kLarge =
    "# experiment_large_deployments/cloud.cfg with the memory keys main requires\n"
    "[infrastructure]\nprovider = qemu\n"
    "cloud_nodes = 11\ncloud_cores = 4\ncloud_memory = 4\ncloud_quota = 1.0\n"
    "endpoint_nodes = 40\nendpoint_cores = 1\nendpoint_memory = 1\nendpoint_quota = 0.5\n"
    "network_emulation = True\nwireless_network_preset = 4g\n"
    "external_physical_machines = matthijs@node3,matthijs@node4\n"
    "[benchmark]\nresource_manager = kubernetes\napplication = image_classification\nfrequency = "
    "5\n";

TEST(PlanCli, ExternalCoresFromTheEnvironment) {
  TempDir dir;
  fs::path cfg = dir.write("large.cfg", kLarge);
  Outcome r = plan({"--format", "json", cfg.string()},
                   {{"CONTINUUM_LOCAL_CORES", "16"}, {"CONTINUUM_EXTERNAL_CORES", "16,32"}});
  ASSERT_EQ(r.code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["hosts"].size(), 3u);
  EXPECT_EQ(j["hosts"][1]["physical_cores"], 16);
  EXPECT_EQ(j["hosts"][2]["physical_cores"], 32);
  EXPECT_EQ(j["hosts"][2]["libvirt_uri"], "qemu+ssh://matthijs@node4/system?no_tty=1");
  EXPECT_EQ(j["nodes"].size(), 51u);
  int per_host[3] = {0, 0, 0};
  for (const auto& n : j["nodes"]) per_host[n["host"].get<int>()]++;
  // 84 cores over 16:16:32 by least used/physical ratio: 21, 21, 42 cores.
  EXPECT_EQ(j["hosts"][0]["used_cores"], 21);
  EXPECT_EQ(j["hosts"][1]["used_cores"], 21);
  EXPECT_EQ(j["hosts"][2]["used_cores"], 42);
  EXPECT_EQ(per_host[0] + per_host[1] + per_host[2], 51);
}

TEST(PlanCli, CpuPinOverflowIsExitCode2WithAMessage) {
  TempDir dir;
  std::string text = kLarge;
  text.replace(text.find("network_emulation"), 0, "cpu_pin = True\n");
  fs::path cfg = dir.write("pinned.cfg", text);
  Outcome r =
      plan({cfg.string()}, {{"CONTINUUM_LOCAL_CORES", "16"}, {"CONTINUUM_EXTERNAL_CORES", "16"}});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.out, "");
  // 84 cores needed, 48 available: 11 clouds fill 44 cores (4 per host, 12 left over 3 hosts),
  // endpoints fill node4 and stop.
  EXPECT_NE(r.err.find("cpu_pin = True: not all VMs fit"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("48 available"), std::string::npos) << r.err;
}

}  // namespace

// The exporters of [energy] exporter_command (src/energy/include/continuum/energy/exporters.h),
// with real programs on loopback: Debian's prometheus-node-exporter as the exporter (started from
// the template, one per VM on consecutive ports, serving a file from the VM's share directory),
// and programs that fail the ways exporters do (exit at once, never answer, die mid-run). Each
// case checks that the processes this test caused to exist are gone afterwards.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <thread>

#include "continuum/config/config.h"
#include "continuum/energy/exporters.h"
#include "continuum/plan/plan.h"
#include "continuum/util/background.h"
#include "continuum/util/files.h"
#include "continuum/util/process.h"
#include "support/ports.h"

using namespace continuum;
namespace fs = std::filesystem;

namespace {

/// An OnStarted that records each started exporter's PID.
energy::ExporterSet::OnStarted collect_pids(std::vector<pid_t>& pids) {
  return [&pids](const energy::ExporterLaunch&, const util::ProcessIdentity& id) -> Status {
    pids.push_back(id.pid);
    return {};
  };
}

class ExporterLaunch : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!util::have_program("prometheus-node-exporter"))
      GTEST_SKIP() << "prometheus-node-exporter not installed (scripts/bootstrap installs it)";
    dir_ = fs::temp_directory_path() / ("continuum-exporters-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "run");
    port_ = test_support::free_port_pair();
    ASSERT_GT(port_, 0);
  }
  void TearDown() override {
    if (!dir_.empty() && !HasFailure()) fs::remove_all(dir_);
  }

  /// A two-VM configuration (cloud_controller + endpoint0) whose exporters use `command`.
  std::pair<config::Config, plan::Plan> setup(const std::string& command, double timeout = 20) {
    std::string text =
        "[infrastructure]\nprovider = qemu\ncloud_nodes = 1\ncloud_cores = 1\n"
        "cloud_memory = 1\ncloud_quota = 1.0\nendpoint_nodes = 1\n"
        "endpoint_cores = 1\nendpoint_memory = 1\nendpoint_quota = 1.0\n"
        "virtiofs_host_dir = " +
        (dir_ / "shares").string() +
        "\n[benchmark]\nresource_manager = none\n[workload w]\ncommand = true\n"
        "nodes = endpoint\n[energy]\nenabled = True\nhost_port_base = " +
        std::to_string(port_) + "\nexporter_start_timeout = " + std::to_string(timeout) +
        "\nexporter_command = " + command + "\n";
    auto c = config::load_text(text, dir_ / "e.cfg");
    EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
    auto p = plan::make(*c, plan::Environment{"t", 4, {}});
    EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message);
    for (const auto& n : p->nodes) fs::create_directories(dir_ / "shares" / n.name);
    return {*c, *p};
  }

  fs::path dir_;
  int port_ = 0;
};

const char* kNodeExporter =
    "prometheus-node-exporter --web.listen-address={address}:{port} --collector.disable-defaults "
    "--collector.textfile --collector.textfile.directory={share}";

TEST_F(ExporterLaunch, TemplateExpandsPerVmInPlanOrder) {
  auto [c, p] = setup(
      "SCAPHANDRE_POWERCAP_PATH={share} A_B=1 scaphandre --vm prometheus "
      "--address {address} --port {port} --tag '{vm} @{index}' {{literal}}");
  auto l = energy::plan_exporters(c, p, dir_ / "run");
  ASSERT_TRUE(l.ok()) << l.error().message;
  ASSERT_EQ(l->size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const auto& e = (*l)[i];
    EXPECT_EQ(e.vm, p.nodes[i].name);
    EXPECT_EQ(e.port, port_ + i);
    EXPECT_EQ(e.url, "http://127.0.0.1:" + std::to_string(port_ + i) + "/metrics");
    EXPECT_EQ(e.env.at("SCAPHANDRE_POWERCAP_PATH"), (dir_ / "shares" / e.vm).string());
    EXPECT_EQ(e.env.at("A_B"), "1");
    EXPECT_EQ(e.argv,
              (std::vector<std::string>{"scaphandre", "--vm", "prometheus", "--address",
                                        "127.0.0.1", "--port", std::to_string(port_ + i), "--tag",
                                        e.vm + " @" + std::to_string(i), "{literal}"}));
    EXPECT_EQ(e.log, dir_ / "run" / "energy" / "exporters" / (e.vm + ".log"));
  }
}

TEST_F(ExporterLaunch, StartsEachWaitsUntilItAnswersAndStopsItByPid) {
  auto [c, p] = setup(kNodeExporter);
  for (const auto& n : p.nodes)
    ASSERT_TRUE(util::write_file_atomic(dir_ / "shares" / n.name / "x.prom",
                                        "scaph_host_power_microwatts 5000000\n")
                    .ok());
  std::map<std::string, util::ProcessIdentity> started;
  std::vector<std::string> stopped;
  auto set = energy::ExporterSet::start(
      *energy::plan_exporters(c, p, dir_ / "run"), 20,
      [&](const energy::ExporterLaunch& l, const util::ProcessIdentity& id) -> Status {
        started[l.vm] = id;
        return {};
      },
      [&](const energy::ExporterLaunch& l) { stopped.push_back(l.vm); });
  ASSERT_TRUE(set.ok()) << set.error().message;
  ASSERT_EQ(started.size(), 2u);
  // Both answer on their own ports, each serving its own share's file.
  for (size_t i = 0; i < 2; ++i) {
    util::ProcessSpec curl;
    curl.argv = {"curl", "-sf", "--noproxy", "*", (*set)->launches()[i].url};
    auto r = util::run_process(curl);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit_code, 0);
    EXPECT_NE(r->out.find("scaph_host_power_microwatts 5e+06"), std::string::npos) << r->out;
  }
  for (const auto& [vm, id] : started) EXPECT_TRUE(util::process_identity(id.pid)) << vm;
  auto usage = (*set)->stop();
  ASSERT_EQ(usage.size(), 2u);
  for (const auto& u : usage) {
    EXPECT_FALSE(u.died_with) << u.vm;
    EXPECT_GT(u.wall_seconds, 0);
    EXPECT_GE(u.cpu_seconds, 0);
  }
  EXPECT_EQ(stopped.size(), 2u);
  for (const auto& [vm, id] : started) EXPECT_FALSE(util::process_identity(id.pid)) << vm;
  EXPECT_TRUE((*set)->stop().empty());  // idempotent
  // Their output is kept.
  EXPECT_TRUE(fs::exists(dir_ / "run" / "energy" / "exporters" / (p.nodes[0].name + ".log")));
}

TEST_F(ExporterLaunch, AnExporterThatExitsFailsTheStartNamingItAndStopsTheOthers) {
  // VM 0's exporter is a real one; VM 1's exits at once: `sh` stands for a broken exporter whose
  // word {index} selects which one fails.
  auto [c, p] = setup(
      "sh -c 'test {index} = 0 && exec prometheus-node-exporter "
      "--web.listen-address={address}:{port} --collector.disable-defaults; echo "
      "bad flag >&2; exit 3'");
  std::vector<pid_t> pids;
  auto set = energy::ExporterSet::start(*energy::plan_exporters(c, p, dir_ / "run"), 20,
                                        collect_pids(pids), nullptr);
  ASSERT_FALSE(set.ok());
  const std::string& m = set.error().message;
  EXPECT_NE(m.find("the exporter of " + p.nodes[1].name), std::string::npos) << m;
  EXPECT_NE(m.find("exited with status 3"), std::string::npos) << m;
  EXPECT_NE(m.find("bad flag"), std::string::npos) << m;  // the end of its log
  // VM 0's exporter was running when it was recorded; VM 1's may have exited before it could be
  // (a process that is gone has no identity to record, and needs no stopping).
  ASSERT_GE(pids.size(), 1u);
  ASSERT_LE(pids.size(), 2u);
  for (pid_t pid : pids) EXPECT_FALSE(util::process_identity(pid)) << pid;
}

TEST_F(ExporterLaunch, OneThatNeverAnswersTimesOutAndIsStopped) {
  auto [c, p] = setup("sleep 600", 0.5);
  std::vector<pid_t> pids;
  auto set = energy::ExporterSet::start(*energy::plan_exporters(c, p, dir_ / "run"), 0.5,
                                        collect_pids(pids), nullptr);
  ASSERT_FALSE(set.ok());
  EXPECT_NE(set.error().message.find("not answering after 0.5 s"), std::string::npos)
      << set.error().message;
  ASSERT_EQ(pids.size(), 2u);
  for (pid_t pid : pids) EXPECT_FALSE(util::process_identity(pid)) << pid;
}

TEST_F(ExporterLaunch, OneThatDiesMidRunIsReportedWithItsStatus) {
  auto [c, p] = setup(kNodeExporter);
  auto set =
      energy::ExporterSet::start(*energy::plan_exporters(c, p, dir_ / "run"), 20, nullptr, nullptr);
  ASSERT_TRUE(set.ok()) << set.error().message;
  const pid_t victim = (*set)->pids()[1];
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  // Dead once the kernel has made it a zombie (state Z in /proc), which is what stop() can see.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    auto stat = util::read_file("/proc/" + std::to_string(victim) + "/stat");
    ASSERT_TRUE(stat.ok());
    if (stat->find(") Z ") != std::string::npos) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline);
    std::this_thread::yield();
  }
  auto usage = (*set)->stop();
  ASSERT_EQ(usage.size(), 2u);
  EXPECT_FALSE(usage[0].died_with);
  ASSERT_TRUE(usage[1].died_with);
  EXPECT_EQ(*usage[1].died_with, 128 + SIGKILL);
  EXPECT_NE(energy::describe_usage(usage).find("had exited before the end (status 137)"),
            std::string::npos);
}

}  // namespace

// End to end, the original's container benchmark offline: `continuum configuration/mist.cfg`
// (resource_manager = mist, 1 edge + 1 endpoint, 5G) on TCG VMs, in a network namespace of its own
// with its own libvirtd (tests/e2e/harness.h):
//  1. the guests boot the image variant with Docker; the application's images are built (or
//     taken from the cache), the run's registry starts on the VM network's gateway, the images
//     are pushed to it and pulled by the guests (the registry's access log shows the pulls from
//     each guest's address); the worker container runs on the edge, the endpoint container on the
//     endpoint; every frame is answered; the original's EDGE/ENDPOINT tables are printed; the
//     containers had the configured limits (docker inspect kept in the run directory);
//  2. with the VMs kept (delete = False in mist.cfg): no container is left in either guest, the
//     registry process is gone; a CPU-bound container under --cpus=0.25 is throttled (its
//     per-frame processing time several times that of the same container without a limit);
//  3. `continuum destroy RUN_DIR` leaves no domain, network, process or file of the run.
// That a rerun takes every image from the cache is shown by
// tests/integration/containers_registry_test.cc on the same build code; this test used to rerun
// the whole configuration for it (about five minutes of CI under TCG).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "continuum/infra/deployment.h"
#include "continuum/infra/hypervisor.h"
#include "continuum/util/background.h"
#include "continuum/util/ssh.h"
#include "e2e/harness.h"

using namespace continuum;
using namespace continuum::e2e;

namespace {

class Mist : public LibvirtNetnsTest {
 protected:
  struct Run {
    int exit_code = -1;
    fs::path dir;
    std::string out;  // stdout + stderr
    std::string log;  // continuum.log
    nlohmann::json metrics;
    infra::Deployment d;
  };

  /// One `continuum --output RUNS configuration/mist.cfg`; fails the test unless it exits 0.
  Run run_mist(const fs::path& runs, const std::string& name) {
    Run out;
    const fs::path cfg = fs::path(CONTINUUM_SOURCE_DIR) / "configuration" / "mist.cfg";
    auto t0 = Clock::now();
    auto r =
        run({"ip", "netns", "exec", ns_, CONTINUUM_BINARY, "--output", runs.string(), cfg.string()},
            3600s, [&](const std::string& l, bool) {
              std::printf("  [%s] %s\n", name.c_str(), l.c_str());
              std::fflush(stdout);
            });
    timing(name + "_total", secs(Clock::now() - t0));
    if (fs::exists(runs))
      for (const auto& e : fs::directory_iterator(runs)) out.dir = e.path();
    run_dir_ = out.dir;
    destroyed_ = false;
    out.exit_code = r.exit_code;
    out.out = r.out + r.err;
    out.log = util::read_file(out.dir / "continuum.log").ok()
                  ? *util::read_file(out.dir / "continuum.log")
                  : "";
    auto m = util::read_file(out.dir / "benchmark" / "metrics.json");
    out.metrics = nlohmann::json::parse(m.ok() ? *m : "{}", nullptr, false);
    auto dj = util::read_file(out.dir / "deployment.json");
    if (dj.ok()) {
      auto d = infra::deployment_from_json(nlohmann::json::parse(*dj));
      if (d.ok()) out.d = *d;
    }
    out.d.netns = ns_;  // the run was inside the namespace; the test reaches the guests from it
    for (const auto& line : util::split(out.log, '\n'))
      if (line.find("phase took") != std::string::npos)
        std::printf("E2E-PHASE %s %s\n", name.c_str(), line.c_str());
    return out;
  }

  /// Every frame of the one repeat answered, through a worker on the edge.
  void expect_all_frames(const Run& r) {
    ASSERT_EQ(r.metrics["repeats"].size(), 1u) << r.metrics.dump(2);
    const auto& rep = r.metrics["repeats"][0];
    ASSERT_TRUE(rep["app"].is_object()) << rep.dump(2);
    EXPECT_TRUE(rep["app_errors"].empty()) << rep.dump(2);
    EXPECT_EQ(rep["app"]["mode"], "edge") << rep.dump(2);
    ASSERT_EQ(rep["app"]["workers"].size(), 1u) << rep.dump(2);
    ASSERT_EQ(rep["app"]["endpoints"].size(), 1u) << rep.dump(2);
    EXPECT_EQ(rep["app"]["workers"][0]["frames"], 30) << rep.dump(2);  // 30 s at 1 frame/s
    EXPECT_EQ(rep["app"]["endpoints"][0]["frames"], 30) << rep.dump(2);
    const double delay = rep["app"]["workers"][0]["delay_avg_ms"].get<double>();
    EXPECT_GT(delay, 5.0) << "5G: 7.5 ms at the endpoint's egress";
    EXPECT_LT(delay, 1000.0);
    std::printf("E2E-METRICS %s\n", rep["app"].dump().c_str());
  }

  Expected<util::RemotePtr> ssh(const Run& r, const std::string& id) {
    const infra::DeployedNode* n = r.d.find(id);
    if (!n) return make_error("no node " + id + " in deployment.json");
    return util::ssh_connect(r.d.ssh_target(*n), std::chrono::seconds(30));
  }

  std::string exec(util::Remote& r, const std::string& cmd) {
    auto res = r.exec(cmd, std::chrono::seconds(300));
    EXPECT_TRUE(res.ok()) << cmd;
    if (!res.ok()) return "";
    EXPECT_EQ(res->exit_code, 0) << cmd << "\n" << res->err;
    return res->out;
  }
};

/// Mean of the "... processing (ns): N" values of a combined endpoint's output, in ms.
double mean_processing_ms(const std::string& out) {
  std::regex re(R"(processing \(ns\)\s*:\s*([0-9]+))");
  double sum = 0;
  int n = 0;
  for (std::sregex_iterator it(out.begin(), out.end(), re), end; it != end; ++it, ++n)
    sum += std::stod((*it)[1].str()) / 1e6;
  return n ? sum / n : 0;
}

TEST_F(Mist, ContainersFromTheRunsRegistryOnTheEdgeAndTheEndpoint) {
  ::setenv("HOME", kWorkRoot.c_str(), 1);  // the image caches persist across runs, like a home
  ::unsetenv("CONTINUUM_GUEST_APP_DIR");

  // 0. As the README says for mist: the guest image with Docker and the application's container
  // images, built (or found in the cache) once, where Debian's mirror is reachable (the test's
  // namespace has no route out).
  auto img = build_image("docker");
  ASSERT_EQ(img.exit_code, 0) << img.err;
  for (const char* role : {"subscriber", "publisher", "combined"})
    EXPECT_NE(img.out.find(std::string("container image continuum/image_classification_") + role),
              std::string::npos)
        << img.out;

  // 1. The first run.
  Run r1 = run_mist(work_ / "runs-1", "run1");
  ASSERT_FALSE(r1.dir.empty());
  ASSERT_EQ(r1.exit_code, 0) << "continuum run failed:\n" << r1.out;
  expect_all_frames(r1);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_NE(r1.out.find("EDGE OUTPUT"), std::string::npos) << "the original's mist tables";
  EXPECT_NE(r1.out.find("ENDPOINT OUTPUT"), std::string::npos);
  EXPECT_NE(r1.log.find("software: playbook docker done in"), std::string::npos);

  // The registry: on the gateway only, the pushes, and each guest pulling its image.
  ASSERT_FALSE(r1.d.registry.empty()) << "deployment.json names no registry";
  EXPECT_TRUE(r1.d.registry.starts_with("192.168.100.1:")) << r1.d.registry;
  auto reglog = util::read_file(r1.dir / "containers" / "registry.log");
  ASSERT_TRUE(reglog.ok()) << "no registry log in the run directory";
  const std::string edge_ip = r1.d.find("edge0")->ip, ep_ip = r1.d.find("endpoint0")->ip;
  bool pushed = false, edge_pulled = false, endpoint_pulled = false;
  for (const auto& line : util::split(*reglog, '\n')) {
    if (line.find("PUT /v2/continuum/image_classification_subscriber/manifests/") !=
        std::string::npos)
      pushed = true;
    if (line.starts_with(edge_ip + " ") &&
        line.find("GET /v2/continuum/image_classification_subscriber/") != std::string::npos)
      edge_pulled = true;
    if (line.starts_with(ep_ip + " ") &&
        line.find("GET /v2/continuum/image_classification_publisher/") != std::string::npos)
      endpoint_pulled = true;
  }
  EXPECT_TRUE(pushed) << *reglog;
  EXPECT_TRUE(edge_pulled) << "the edge did not pull the worker image:\n" << *reglog;
  EXPECT_TRUE(endpoint_pulled) << "the endpoint did not pull its image:\n" << *reglog;

  // The containers' limits, as docker applied them (mist.cfg: edge 2 cores / 1 GB, so the worker
  // gets 1.5 CPUs and 0.5 GB; the endpoint its 1 core and 1 GB).
  for (const auto& [name, cpus, mib] : std::vector<std::tuple<std::string, double, long long>>{
           {"edge0_worker", 1.5, 512}, {"edge0_endpoint0", 1.0, 1024}}) {
    fs::path f =
        r1.dir / "benchmark" / "repeat-0" / "image_classification" / (name + ".inspect.json");
    auto text = util::read_file(f);
    ASSERT_TRUE(text.ok()) << "missing " << f;
    auto j = nlohmann::json::parse(*text)[0];
    EXPECT_EQ(j["HostConfig"]["NanoCpus"].get<long long>(), static_cast<long long>(cpus * 1e9))
        << name;
    EXPECT_EQ(j["HostConfig"]["Memory"].get<long long>(), mib * 1024 * 1024) << name;
    EXPECT_EQ(j["State"]["ExitCode"], 0) << name;
    EXPECT_TRUE(j["Config"]["Image"].get<std::string>().starts_with(r1.d.registry + "/continuum/"))
        << j["Config"]["Image"];
  }

  // 2. VMs kept: no container left in the guests; the registry process is gone.
  auto state = nlohmann::json::parse(*util::read_file(r1.dir / "state.json"));
  int registries = 0;
  for (const auto& res : state["resources"])
    if (res["kind"] == "process") {
      ++registries;
      EXPECT_EQ(res["state"], "removed") << res.dump();
      auto id = util::ProcessIdentity::parse(res["name"]);
      ASSERT_TRUE(id.has_value()) << res.dump();
      auto now = util::process_identity(id->pid);
      EXPECT_FALSE(now && now->start_ticks == id->start_ticks) << "the registry still runs";
    }
  EXPECT_EQ(registries, 1) << state.dump(2);
  for (const char* id : {"edge0", "endpoint0"}) {
    auto r = ssh(r1, id);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(util::trim(exec(**r, "docker ps -aq")), "") << "containers left on " << id;
  }

  // CPU limits are enforced: the endpoint image in its endpoint-only (combined) mode classifies
  // its own frames, CPU-bound; with --cpus=0.25 each frame takes several times as long.
  {
    auto r = ssh(r1, "endpoint0");
    ASSERT_TRUE(r.ok()) << r.error().message;
    const std::string image = r1.d.images.at("publisher");
    auto combined = [&](const std::string& limit) {
      return exec(**r, "docker run --rm " + limit +
                           " -e COMBINED=True -e FREQUENCY=1 -e DURATION=4 -e CPU_THREADS=1 " +
                           util::shell_quote(image) + " 2>&1");
    };
    const double free_ms = mean_processing_ms(combined(""));
    const double limited_ms = mean_processing_ms(combined("--cpus=0.25"));
    std::printf("E2E-THROTTLE unlimited %.0f ms/frame, --cpus=0.25 %.0f ms/frame\n", free_ms,
                limited_ms);
    ASSERT_GT(free_ms, 0) << "no processing times in the combined output";
    EXPECT_GT(limited_ms, 2.0 * free_ms) << "--cpus=0.25 did not throttle";
  }

  // 3. destroy removes everything of the run.
  auto d = run({"ip", "netns", "exec", ns_, CONTINUUM_BINARY, "destroy", r1.dir.string()}, 300s);
  ASSERT_EQ(d.exit_code, 0) << d.out << d.err;
  destroyed_ = true;
  {
    auto hv = infra::connect_libvirt("qemu:///system");
    ASSERT_TRUE(hv.ok()) << hv.error().message;
    auto doms = (*hv)->list_domains();
    ASSERT_TRUE(doms.ok());
    EXPECT_TRUE(doms->empty()) << "domains left: " << util::join(*doms, ", ");
    state = nlohmann::json::parse(*util::read_file(r1.dir / "state.json"));
    for (const auto& res : state["resources"]) {
      const std::string kind = res["kind"];
      EXPECT_EQ(res["state"], "removed") << res.dump();
      if (kind == "network") {
        auto ex = (*hv)->network_exists(res["name"]);
        ASSERT_TRUE(ex.ok());
        EXPECT_FALSE(*ex) << "network left: " << res["name"];
      } else if (kind != "domain" && kind != "process") {
        EXPECT_FALSE(fs::exists(std::string(res["name"]))) << "left: " << res["name"];
      }
    }
  }
}

}  // namespace

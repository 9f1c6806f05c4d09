// benchmark::run end to end without VMs: resource manager none, the real guest programs and a real
// mosquitto on loopback; only the SSH transport is replaced by a Fake Remote that runs each
// command with the local /bin/sh in a per-node "home" directory. Covers the direct launch
// commands (setsid/nohup, pid and rc files), repeats, workloads, events and the output files.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "bench_support.h"
#include "continuum/benchmark/benchmark.h"
#include "continuum/util/files.h"
#include "continuum/util/strings.h"

using namespace continuum;
using namespace continuum::benchmark;

namespace {

const std::filesystem::path kApp = std::filesystem::path(CONTINUUM_BUILD_DIR) / "app";

std::filesystem::path temp_dir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() /
           ("continuum-br-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

infra::Deployment deployment() {
  infra::Deployment d;
  infra::DeployedNode w;
  w.id = "cloud0";
  w.name = "cloud0_tester";
  w.tier = "cloud";
  w.ip = "127.0.0.1";
  infra::DeployedNode e = w;
  e.id = "endpoint0";
  e.name = "endpoint0_tester";
  e.tier = "endpoint";
  e.ip = "127.0.0.2";  // another loopback address: the reply really goes to the endpoint's broker
                       // address
  d.nodes = {w, e};
  return d;
}

config::Config make_config(int duration, int repeat) {
  config::Config c;
  c.infrastructure.cloud = {1, 2, 2, 1.0, 0, 0};
  c.infrastructure.endpoint = {1, 1, 1, 1.0, 0, 0};
  config::Benchmark b;
  b.resource_manager = continuum::config::ResourceManager::none;
  b.direct_offload = true;  // the worker on the cloud node (without it: endpoint-only, no worker)
  b.application = continuum::config::Application::image_classification;
  b.frequency = 5;
  b.duration = duration;
  b.application_worker_cpu = 1;
  b.repeat = repeat;
  b.repeat_pause = 0.2;
  b.benchmark_timeout = 120;
  c.benchmark = b;
  return c;
}

struct Fixture {
  std::filesystem::path dir;
  std::unique_ptr<bench_test::Broker> broker;
  Hooks hooks;
  std::vector<bench_test::LocalShellRemote*> made;
  explicit Fixture(const std::string& name) : dir(temp_dir(name)) {
    broker =
        std::make_unique<bench_test::Broker>(dir / "broker", bench_test::free_port(),
                                             std::vector<std::string>{"127.0.0.1", "127.0.0.2"});
    // The programs inherit these: the test broker's port, and a smaller CNN input so that the
    // worker keeps up with 5 frames/s on a loaded machine.
    const std::map<std::string, std::string> env{{"MQTT_PORT", std::to_string(broker->port())},
                                                 {"INPUT_SIZE", "48"}};
    auto root = dir / "guests";
    hooks.connect = [root, env](const infra::DeployedNode& n) -> Expected<util::RemotePtr> {
      return util::RemotePtr(
          std::make_unique<bench_test::LocalShellRemote>(root / n.id, env, n.id));
    };
    hooks.bin_dir = kApp.string();
    hooks.poll = std::chrono::milliseconds(300);
  }
  ~Fixture() {
    // Kept when a test failed: the guests' out files and the run directory say why.
    if (::testing::Test::HasFailure())
      std::fprintf(stderr, "kept %s\n", dir.c_str());
    else
      std::filesystem::remove_all(dir);
  }
};

// Whether any live (non-zombie) process is in process group `pgid`: zombies count as gone, as
// nothing here may reap the reparented programs.
bool group_alive(pid_t pgid) {
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    auto stat = util::read_file(e.path() / "stat");
    if (!stat.ok()) continue;
    auto close = stat->rfind(')');
    if (close == std::string::npos) continue;
    auto f = util::split(stat->substr(close + 2), ' ');  // state ppid pgrp ...
    if (f.size() > 2 && f[0] != "Z" && std::stoi(f[2]) == pgid) return true;
  }
  return false;
}

}  // namespace

TEST(FakeRemoteBenchmarkRun, TwoRepeatsWithWorkloadsLeaveCompleteData) {
  Fixture f("full");
  ASSERT_TRUE(f.broker->ready());
  auto cfg = make_config(3, 2);
  config::SshWorkload probe;
  probe.name = "probe";
  probe.command = "cat /proc/loadavg; echo \"$GREETING\"";
  probe.nodes = {"endpoint"};
  probe.warmup = 1;
  probe.repeat = 2;
  probe.timeout = 20;
  probe.env = {{"GREETING", "hello 'world'"}};
  config::SshWorkload failing;
  failing.name = "failing";
  failing.command = "echo broken >&2; exit 3";
  failing.nodes = {"cloud0"};
  failing.timeout = 20;
  cfg.workloads = {probe, failing};
  plan::Plan plan;
  plan.repeats = 2;
  auto d = deployment();
  const auto run_dir = f.dir / "run";
  auto log = record::EventLog::open(run_dir / "events.jsonl", std::chrono::steady_clock::now());
  ASSERT_TRUE(log.ok());
  std::atomic<bool> interrupted{false};

  auto r = run(cfg, plan, d, run_dir, log->get(), &interrupted, f.hooks);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->repeats.size(), 2u);
  for (const auto& rep : r->repeats) {
    ASSERT_TRUE(rep.app.has_value());
    EXPECT_TRUE(rep.app_errors.empty()) << rep.app_errors.front();
    ASSERT_EQ(rep.app->workers.size(), 1u);
    ASSERT_EQ(rep.app->endpoints.size(), 1u);
    EXPECT_EQ(rep.app->workers[0].frames, 15u);
    EXPECT_EQ(rep.app->endpoints[0].frames, 15u);  // every reply back
    EXPECT_GT(rep.app->endpoints[0].latency_avg_ms, 0);
    EXPECT_EQ(rep.app->endpoints[0].connected_to, 0);
    EXPECT_EQ(rep.workload_runs.size(), 4u);  // probe: 1 warm-up + 2; failing: 1
  }
  EXPECT_EQ(r->failures, 2);  // the failing workload, once per repeat: reported, not hidden
  EXPECT_FALSE(r->interrupted);

  for (const char* p : {"benchmark/metrics.csv", "benchmark/metrics.json", "benchmark/tables.txt",
                        "benchmark/repeat-0/image_classification/cloud0.worker.log",
                        "benchmark/repeat-1/image_classification/endpoint0.endpoint.log",
                        "benchmark/repeat-1/metrics.json", "benchmark/workloads/results.csv",
                        "benchmark/workloads/probe/endpoint0/1-warmup0.out",
                        "benchmark/workloads/failing/cloud0/1-0.err"})
    EXPECT_TRUE(std::filesystem::exists(run_dir / p)) << p;
  EXPECT_NE(util::read_file(run_dir / "benchmark/workloads/probe/endpoint0/0-1.out")
                ->find("hello 'world'"),
            std::string::npos);
  EXPECT_EQ(*util::read_file(run_dir / "benchmark/workloads/failing/cloud0/0-0.err"), "broken\n");
  auto j = nlohmann::json::parse(*util::read_file(run_dir / "benchmark/metrics.json"));
  EXPECT_EQ(j["repeats"].size(), 2u);
  EXPECT_EQ(j["failures"], 2);

  const std::string tables = render_tables(*r);
  std::printf("%s", tables.c_str());
  EXPECT_NE(tables.find("Mean over 2 repeats"), std::string::npos);
  EXPECT_NE(tables.find("WORKLOADS"), std::string::npos);

  auto events = record::read_events(run_dir / "events.jsonl");
  ASSERT_TRUE(events.ok());
  auto intervals = record::phase_intervals(*events);
  auto has = [&](const std::string& phase, int repeat, const std::string& app) {
    for (const auto& i : intervals)
      if (i.phase == phase && i.repeat == repeat && i.app == app && i.end >= i.start) return true;
    return false;
  };
  EXPECT_TRUE(has("benchmark", -1, "image_classification"));
  EXPECT_TRUE(has("repeat", 0, "image_classification"));
  EXPECT_TRUE(has("repeat", 1, "image_classification"));
  EXPECT_TRUE(has("application", 1, "image_classification"));
  EXPECT_TRUE(has("workload:probe", 0, "probe"));
  EXPECT_TRUE(has("workload:failing", 1, "failing"));
}

TEST(FakeRemoteBenchmarkRun, InterruptStopsProgramsAndKeepsData) {
  Fixture f("interrupt");
  ASSERT_TRUE(f.broker->ready());
  auto cfg = make_config(60, 3);
  plan::Plan plan;
  auto d = deployment();
  const auto run_dir = f.dir / "run";
  std::atomic<bool> interrupted{false};
  // Ctrl-C once the endpoint has been sending for a while.
  std::thread ctrl_c([&] {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < until) {
      auto out = util::read_file(f.dir / "guests/endpoint0/continuum-bench/repeat-0/endpoint/out");
      if (out.ok() && out->find("Latency (ns)") != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    interrupted = true;
  });
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run(cfg, plan, d, run_dir, nullptr, &interrupted, f.hooks);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ctrl_c.join();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->interrupted);
  EXPECT_LT(secs, 45.0);  // not the 60 s duration, nor 3 repeats
  ASSERT_EQ(r->repeats.size(), 1u);
  ASSERT_TRUE(r->repeats[0].app.has_value());
  EXPECT_GT(r->repeats[0].app->endpoints[0].frames, 0u);  // data so far kept
  EXPECT_TRUE(std::filesystem::exists(run_dir / "benchmark/metrics.json"));
  // The programs were stopped: their process groups are gone.
  for (const char* node :
       {"cloud0/continuum-bench/repeat-0/worker", "endpoint0/continuum-bench/repeat-0/endpoint"}) {
    auto pid = util::read_file(f.dir / "guests" / node / "pid");
    ASSERT_TRUE(pid.ok());
    pid_t p = std::stoi(*pid);
    bool gone = false;
    for (int i = 0; i < 100 && !gone; ++i) {
      gone = !group_alive(p);
      if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(gone) << node;
  }
}

TEST(FakeRemoteBenchmarkRun, ResourceManagerNoneWithoutDirectOffloadIsEndpointOnly) {
  // The original's endpoint-only mode although the deployment has a cloud node: the endpoint runs
  // the combined program (generates and classifies its own frames), nothing runs on cloud0, and
  // the tables are the original's single endpoint-only table.
  Fixture f("endpoint-only");
  auto cfg = make_config(3, 1);
  cfg.benchmark->direct_offload = false;
  plan::Plan plan;
  auto d = deployment();
  const auto run_dir = f.dir / "run";
  auto log = record::EventLog::open(run_dir / "events.jsonl", std::chrono::steady_clock::now());
  ASSERT_TRUE(log.ok());
  std::atomic<bool> interrupted{false};
  auto r = run(cfg, plan, d, run_dir, log->get(), &interrupted, f.hooks);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->repeats.size(), 1u);
  const auto& rep = r->repeats[0];
  ASSERT_TRUE(rep.app.has_value());
  EXPECT_TRUE(rep.app_errors.empty()) << rep.app_errors.front();
  EXPECT_EQ(rep.app->mode, "endpoint");
  EXPECT_TRUE(rep.app->workers.empty());
  ASSERT_EQ(rep.app->endpoints.size(), 1u);
  EXPECT_EQ(rep.app->endpoints[0].frames, 15u);  // 3 s at 5 frames/s, each processed locally
  EXPECT_GT(rep.app->endpoints[0].latency_avg_ms, 0);
  EXPECT_EQ(rep.app->endpoints[0].connected_to, -1);
  EXPECT_EQ(r->failures, 0);
  const auto out = run_dir / "benchmark/repeat-0/image_classification";
  EXPECT_TRUE(std::filesystem::exists(out / "endpoint0.endpoint.log"));
  EXPECT_FALSE(std::filesystem::exists(out / "cloud0.worker.log"));
  EXPECT_NE(util::read_file(out / "endpoint0.endpoint.log")
                ->find("Preparation, preprocessing and processing (ns)"),
            std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(f.dir / "guests" / "cloud0"))
      << "something ran on the cloud node";
  const std::string tables = render_tables(*r);
  std::printf("%s", tables.c_str());
  EXPECT_EQ(tables.find("CLOUD OUTPUT"), std::string::npos);
  EXPECT_NE(tables.find(" endpoint_id  total_time (s)  proc_time/data (ms)  latency_avg (ms)  "
                        "latency_stdev (ms)"),
            std::string::npos)
      << tables;
}

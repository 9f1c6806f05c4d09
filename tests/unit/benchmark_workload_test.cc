// SSH workloads, repeat aggregation and the metrics files. The remote side is a Fake Remote that
// runs each command with the local /bin/sh (no SSH): the commands themselves really run.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "continuum/benchmark/benchmark.h"
#include "continuum/util/files.h"
#include "continuum/util/process.h"
#include "continuum/util/strings.h"
#include "integration/bench_support.h"

using namespace continuum;
using namespace continuum::benchmark;

namespace {

infra::Deployment deployment() {
  infra::Deployment d;
  auto node = [](const std::string& id, std::string tier, std::string ip) {
    infra::DeployedNode n;
    n.id = id;
    n.name = id + "_tester";
    n.tier = std::move(tier);
    n.ip = std::move(ip);
    return n;
  };
  d.nodes = {node("cloud_controller", "cloud", "127.0.0.1"), node("cloud0", "cloud", "127.0.0.1"),
             node("edge0", "edge", "127.0.0.1"), node("endpoint0", "endpoint", "127.0.0.1"),
             node("endpoint1", "endpoint", "127.0.0.1")};
  return d;
}

std::filesystem::path temp_dir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() /
           ("continuum-bench-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

RemoteFactory local_factory(const std::filesystem::path& root,
                            const std::map<std::string, std::string>& env = {}) {
  return [root, env](const infra::DeployedNode& n) -> Expected<util::RemotePtr> {
    return util::RemotePtr(std::make_unique<bench_test::LocalShellRemote>(root / n.id, env, n.id));
  };
}

}  // namespace

TEST(WorkloadCommand, QuotesEveryValue) {
  config::SshWorkload w;
  w.name = "q";
  w.command = "echo 'hi' $HOME";
  w.env = {{"A", "x y"}, {"B", "it's"}};
  w.timeout = 30;
  auto c = render_workload_command(w);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(*c,
            "exec timeout --kill-after=5 30 env 'A=x y' 'B=it'\\''s' /bin/sh -c 'echo '\\''hi'\\'' "
            "$HOME'");
}

TEST(WorkloadCommand, ValuesArriveUnchangedThroughARealShell) {
  config::SshWorkload w;
  w.name = "q";
  w.command = "printf '%s|%s|%s' \"$A\" \"$B\" \"$C\"";
  w.env = {{"A", "x y"}, {"B", "it's \"$(rm -rf /)\" `id`"}, {"C", "a;b&&c|d\n"}};
  w.timeout = 10;
  auto c = render_workload_command(w);
  ASSERT_TRUE(c.ok());
  util::ProcessSpec spec;
  spec.argv = {"/bin/sh", "-c", *c};
  auto r = util::run_process(spec);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0) << r->err;
  EXPECT_EQ(r->out, "x y|it's \"$(rm -rf /)\" `id`|a;b&&c|d\n");
}

TEST(WorkloadCommand, RejectsBadVariableNames) {
  config::SshWorkload w;
  w.name = "q";
  w.command = "true";
  w.env = {{"A B", "1"}};
  w.where = {"x.cfg", 7};
  auto c = render_workload_command(w);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().exit_code, continuum::ExitCode::usage);
  EXPECT_NE(c.error().message.find("x.cfg:7"), std::string::npos);
  w.env = {{"1A", "1"}};
  EXPECT_FALSE(render_workload_command(w).ok());
}

TEST(WorkloadNodes, IdsTiersAllAndTypos) {
  auto d = deployment();
  auto ids = [](const std::vector<const infra::DeployedNode*>& v) {
    std::vector<std::string> r;
    for (auto* n : v) r.push_back(n->id);
    return r;
  };
  EXPECT_EQ(ids(*resolve_nodes({"endpoint"}, d)),
            (std::vector<std::string>{"endpoint0", "endpoint1"}));
  EXPECT_EQ(ids(*resolve_nodes({"endpoint1", "cloud"}, d)),
            (std::vector<std::string>{"cloud_controller", "cloud0", "endpoint1"}));
  EXPECT_EQ(ids(*resolve_nodes({"edge0_tester", "edge"}, d)), (std::vector<std::string>{"edge0"}));
  EXPECT_EQ(resolve_nodes({"all"}, d)->size(), 5u);
  auto bad = resolve_nodes({"endpiont0"}, d);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("did you mean 'endpoint0'"), std::string::npos)
      << bad.error().message;
}

TEST(FakeRemoteWorkload, WarmupsRepeatsFilesAndFailures) {
  auto root = temp_dir("wl");
  auto d = deployment();
  config::SshWorkload w;
  w.name = "query";
  w.nodes = {"endpoint"};
  w.warmup = 1;
  w.repeat = 3;
  w.timeout = 20;
  // Counts its own runs in the node's home; fails on endpoint1's third run.
  w.command =
      "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo \"run $n on "
      "$NODE_LABEL\"; "
      "echo warn >&2; [ \"$(pwd | grep -c endpoint1)\" = 1 ] && [ $n = 4 ] && exit 7; exit 0";
  w.env = {{"NODE_LABEL", "x"}};
  auto runs = run_workload(w, 2, d, root / "run", local_factory(root / "guests"), nullptr, nullptr);
  ASSERT_EQ(runs.size(), 8u);  // 2 nodes x (1 warm-up + 3)
  EXPECT_EQ(runs[0].node, "endpoint0");
  EXPECT_TRUE(runs[0].warmup);
  EXPECT_EQ(runs[1].index, 0);
  EXPECT_FALSE(runs[1].warmup);
  int failed = 0;
  for (const auto& r : runs) failed += !r.ok();
  EXPECT_EQ(failed, 1);
  const auto& bad = runs[7];
  EXPECT_EQ(bad.node, "endpoint1");
  EXPECT_EQ(bad.index, 2);
  EXPECT_EQ(bad.exit_code, 7);
  EXPECT_EQ(bad.out_file, "benchmark/workloads/query/endpoint1/2-2.out");
  EXPECT_EQ(*util::read_file(root / "run" / bad.out_file), "run 4 on x\n");
  EXPECT_EQ(*util::read_file(root / "run" / bad.err_file), "warn\n");
  EXPECT_EQ(*util::read_file(root / "run/benchmark/workloads/query/endpoint0/2-warmup0.out"),
            "run 1 on x\n");
  std::filesystem::remove_all(root);
}

TEST(FakeRemoteWorkload, TimeoutIsEnforcedInTheGuestAndReported) {
  auto root = temp_dir("wlt");
  auto d = deployment();
  config::SshWorkload w;
  w.name = "slow";
  w.nodes = {"cloud0", "edge0"};
  w.repeat = 1;
  w.timeout = 1;
  w.parallel = true;
  w.command = "sleep 30";
  const auto t0 = std::chrono::steady_clock::now();
  auto runs = run_workload(w, 0, d, root / "run", local_factory(root / "guests"), nullptr, nullptr);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(runs.size(), 2u);
  for (const auto& r : runs) {
    EXPECT_TRUE(r.timed_out);
    EXPECT_EQ(r.exit_code, 124);
    EXPECT_FALSE(r.ok());
  }
  EXPECT_LT(secs, 15.0);  // parallel, and killed after 1 s each, not 30
  std::filesystem::remove_all(root);
}

TEST(FakeRemoteWorkload, InterruptStopsFurtherRuns) {
  auto root = temp_dir("wli");
  auto d = deployment();
  config::SshWorkload w;
  w.name = "i";
  w.nodes = {"cloud0"};
  w.repeat = 5;
  w.command = "true";
  std::atomic<bool> stop{true};
  auto runs = run_workload(w, 0, d, root / "run", local_factory(root / "guests"), nullptr, &stop);
  EXPECT_TRUE(runs.empty());
  std::filesystem::remove_all(root);
}

namespace {
RepeatResult repeat_with(int k, double latency, double proc, double wl_seconds, bool wl_fail) {
  RepeatResult r;
  r.repeat = k;
  AppMetrics m;
  m.mode = "cloud";
  WorkerMetrics w;
  w.worker_id = 0;
  w.node = "cloud0";
  w.total_time_s = 10;
  w.delay_avg_ms = 1;
  w.delay_stdev_ms = 0.5;
  w.proc_avg_ms = proc;
  w.frames = 50;
  m.workers.push_back(w);
  EndpointMetrics e;
  e.endpoint_id = 0;
  e.connected_to = 0;
  e.node = "endpoint0";
  e.total_time_s = 11;
  e.proc_avg_ms = 0.5;
  e.data_avg_kb = 65;
  e.latency_avg_ms = latency;
  e.latency_stdev_ms = std::nan("");
  e.frames = 50;
  m.endpoints.push_back(e);
  r.app = m;
  WorkloadRun run;
  run.workload = "q";
  run.node = "endpoint0";
  run.repeat = k;
  run.exit_code = wl_fail ? 1 : 0;
  run.seconds = wl_seconds;
  r.workload_runs.push_back(run);
  return r;
}
const Aggregate* find(const std::vector<Aggregate>& a, const std::string& role,
                      const std::string& metric) {
  for (const auto& x : a)
    if (x.role == role && x.metric == metric) return &x;
  return nullptr;
}
}  // namespace

TEST(RepeatAggregation, MeanMinMaxOverRepeats) {
  std::vector<RepeatResult> reps{repeat_with(0, 100, 40, 1.0, false),
                                 repeat_with(1, 130, 44, 2.0, true),
                                 repeat_with(2, 160, 42, 4.0, false)};
  auto agg = aggregate(reps);
  auto* lat = find(agg, "endpoint", "latency_avg_ms");
  ASSERT_NE(lat, nullptr);
  EXPECT_DOUBLE_EQ(lat->mean, 130);
  EXPECT_DOUBLE_EQ(lat->min, 100);
  EXPECT_DOUBLE_EQ(lat->max, 160);
  EXPECT_EQ(lat->n, 3);
  auto* proc = find(agg, "worker", "proc_time_ms");
  EXPECT_DOUBLE_EQ(proc->mean, 42);
  EXPECT_DOUBLE_EQ(proc->min, 40);
  EXPECT_DOUBLE_EQ(proc->max, 44);
  auto* sd = find(agg, "endpoint", "latency_stdev_ms");  // NaN everywhere: no values
  EXPECT_EQ(sd->n, 0);
  EXPECT_TRUE(std::isnan(sd->mean));
  auto* wl = find(agg, "workload", "seconds");
  EXPECT_EQ(wl->subject, "q/endpoint0");
  EXPECT_NEAR(wl->mean, 7.0 / 3, 1e-4);
  EXPECT_DOUBLE_EQ(find(agg, "workload", "failures")->max, 1);
}

TEST(MetricsFiles, CsvAndJsonSchema) {
  BenchmarkResult r;
  r.application = "image_classification";
  r.repeats = {repeat_with(0, 100, 40, 1.0, false), repeat_with(1, 200, 50, 3.0, true)};
  r.aggregate = aggregate(r.repeats);
  r.failures = 1;
  std::string csv = metrics_csv(r);
  auto lines = util::split(csv, '\n');
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(
      lines[0],
      "repeat,stat,role,id,node,connected_to,total_time_s,delay_avg_ms,delay_stdev_ms,proc_time_ms,"
      "preproc_time_ms,data_size_avg_kb,latency_avg_ms,latency_stdev_ms,frames,runs,failures,"
      "seconds");
  EXPECT_EQ(lines[1], "0,value,worker,0,cloud0,,10,1,0.5,40,,,,,50,,,");
  EXPECT_EQ(lines[2], "0,value,endpoint,0,endpoint0,0,11,,,,0.5,65,100,,50,,,");
  EXPECT_EQ(lines[3], "0,value,workload,q,endpoint0,,,,,,,,,,,1,0,1");
  // 3 rows per repeat, then mean/min/max for worker, endpoint and workload
  EXPECT_EQ(lines.size(), 1u + 6 + 9 + 1);  // + trailing empty field after the last \n
  EXPECT_NE(csv.find("all,mean,endpoint,0,,,11,,,,0.5,65,150,,50,,,"), std::string::npos) << csv;
  EXPECT_NE(csv.find("all,max,workload,q,endpoint0,,,,,,,,,,,,1,3"), std::string::npos) << csv;

  auto j = metrics_json(r);
  EXPECT_EQ(j["schema"], "continuum.benchmark.metrics/1");
  EXPECT_EQ(j["application"], "image_classification");
  ASSERT_EQ(j["repeats"].size(), 2u);
  const auto& ep = j["repeats"][1]["app"]["endpoints"][0];
  EXPECT_EQ(ep["latency_avg_ms"], 200.0);
  EXPECT_TRUE(ep["latency_stdev_ms"].is_null());  // NaN -> null, never an invalid JSON number
  EXPECT_EQ(ep["connected_to"], 0);
  EXPECT_EQ(j["repeats"][1]["workloads"][0]["failures"], 1);
  bool found = false;
  for (const auto& a : j["aggregate"])
    if (a["role"] == "endpoint" && a["metric"] == "latency_avg_ms") {
      found = true;
      EXPECT_EQ(a["mean"], 150.0);
      EXPECT_EQ(a["min"], 100.0);
      EXPECT_EQ(a["max"], 200.0);
      EXPECT_EQ(a["n"], 2);
    }
  EXPECT_TRUE(found);
  EXPECT_EQ(j["failures"], 1);

  auto dir = temp_dir("files");
  ASSERT_TRUE(save_results(r, dir).ok());
  for (const char* f : {"metrics.csv", "metrics.json", "tables.txt", "workloads/results.csv",
                        "workloads/results.json"})
    EXPECT_TRUE(std::filesystem::exists(dir / f)) << f;
  auto reread = nlohmann::json::parse(*util::read_file(dir / "metrics.json"));
  EXPECT_EQ(reread, j);
  auto tables = render_tables(r);
  EXPECT_NE(tables.find("Mean over 2 repeats"), std::string::npos);
  EXPECT_NE(tables.find("FAILURES: 1"), std::string::npos);
  std::filesystem::remove_all(dir);
}

// image_classification deployment: who is a worker, endpoint -> worker blocks, the programs'
// environment, and the exact commands/YAML for resource managers none, kubernetes/kubeedge and
// mist (their commands are checked here as text, and mist's run against recording guests; the
// mist e2e test runs them for real).
#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "continuum/benchmark/image_classification.h"
#include "continuum/util/process.h"

using namespace continuum;
using namespace continuum::benchmark;

namespace {

infra::DeployedNode node(std::string id, std::string tier, std::string ip) {
  infra::DeployedNode n;
  n.id = std::move(id);
  n.tier = std::move(tier);
  n.ip = std::move(ip);
  return n;
}

config::Config cfg(const std::string& rm, int clouds, int edges, int endpoints) {
  config::Config c;
  c.infrastructure.cloud = {clouds, 4, 4, 1.0, 0, 0};
  c.infrastructure.edge = {edges, 2, 2, 1.0, 0, 0};
  c.infrastructure.endpoint = {endpoints, 1, 1, 0.5, 0, 0};
  config::Benchmark b;
  b.resource_manager = *config::resource_manager_named(rm);
  b.application = continuum::config::Application::image_classification;
  b.frequency = 5;
  b.duration = 60;
  c.benchmark = b;
  return c;
}

}  // namespace

TEST(Assign, CloudWorkersWithoutControllerAndContiguousBlocks) {
  infra::Deployment d;
  d.nodes = {node("cloud_controller", "cloud", "192.168.100.2"),
             node("cloud0", "cloud", "192.168.100.3"),
             node("cloud1", "cloud", "192.168.100.4"),
             node("endpoint0", "endpoint", "192.168.100.5"),
             node("endpoint1", "endpoint", "192.168.100.6"),
             node("endpoint2", "endpoint", "192.168.100.7"),
             node("endpoint3", "endpoint", "192.168.100.8")};
  auto a = assign(cfg("kubernetes", 3, 0, 4), d);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->mode, "cloud");
  ASSERT_EQ(a->workers.size(), 2u);
  EXPECT_EQ(a->workers[0]->id, "cloud0");
  EXPECT_EQ(a->endpoint_worker, (std::vector<int>{0, 0, 1, 1}));
  EXPECT_EQ(a->connected(1), 2);
  auto s = app_settings(cfg("kubernetes", 3, 0, 4), d, *a);
  EXPECT_DOUBLE_EQ(s.worker_cpu, 3.5);  // tier cores - 0.5, as the original's default
  EXPECT_EQ(s.worker_threads, 3);
  EXPECT_EQ(s.timeout_s, 60 * 3 + 600);
  auto we = worker_env(*a, 1, s);
  EXPECT_EQ(we["MQTT_LOCAL_IP"], "192.168.100.4");
  EXPECT_EQ(we["ENDPOINT_CONNECTED"], "2");
  EXPECT_EQ(we["CPU_THREADS"], "3");
  auto ee = endpoint_env(*a, 3, s);
  EXPECT_EQ(ee["MQTT_LOCAL_IP"], "192.168.100.8");
  EXPECT_EQ(ee["MQTT_REMOTE_IP"], "192.168.100.4");
  EXPECT_EQ(ee["FREQUENCY"], "5");
  EXPECT_EQ(ee["DURATION"], "60");
}

TEST(Assign, UnevenEndpointsStillAllServed) {
  infra::Deployment d;
  d.nodes = {node("edge0", "edge", "10.0.0.2"), node("edge1", "edge", "10.0.0.3"),
             node("endpoint0", "endpoint", "10.0.0.4"), node("endpoint1", "endpoint", "10.0.0.5"),
             node("endpoint2", "endpoint", "10.0.0.6")};
  auto a = assign(cfg("mist", 0, 2, 3), d);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->mode, "edge");
  EXPECT_EQ(a->endpoint_worker, (std::vector<int>{0, 0, 1}));
}

TEST(Assign, ResourceManagerNone) {
  infra::Deployment only_endpoints;
  only_endpoints.nodes = {node("endpoint0", "endpoint", "10.0.0.2")};
  auto a = assign(cfg("none", 0, 0, 1), only_endpoints);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->mode, "endpoint");  // the original's endpoint-only (combined) mode
  EXPECT_TRUE(a->workers.empty());
  EXPECT_EQ(a->endpoint_worker, (std::vector<int>{-1}));
  auto s = app_settings(cfg("none", 0, 0, 1), only_endpoints, *a);
  auto env = endpoint_env(*a, 0, s);
  EXPECT_EQ(env["COMBINED"], "True");
  EXPECT_EQ(env.count("MQTT_REMOTE_IP"), 0u);

  infra::Deployment lone_controller;
  lone_controller.nodes = {node("cloud_controller", "cloud", "10.0.0.2"),
                           node("endpoint0", "endpoint", "10.0.0.3")};
  // Without direct_offload a cloud node changes nothing: the original's endpoint-only mode.
  auto b = assign(cfg("none", 1, 0, 1), lone_controller);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->mode, "endpoint");
  EXPECT_TRUE(b->workers.empty());
  EXPECT_EQ(b->endpoint_worker, (std::vector<int>{-1}));
  // direct_offload: nothing else to offload to, so the controller (no control plane runs) works.
  auto offload = cfg("none", 1, 0, 1);
  offload.benchmark->direct_offload = true;
  auto c = assign(offload, lone_controller);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->mode, "cloud");
  ASSERT_EQ(c->workers.size(), 1u);
  EXPECT_EQ(c->workers[0]->id, "cloud_controller");
  EXPECT_EQ(c->endpoint_worker, (std::vector<int>{0}));
  auto so = app_settings(offload, lone_controller, *c);
  auto eo = endpoint_env(*c, 0, so);
  EXPECT_EQ(eo.count("COMBINED"), 0u);
  EXPECT_EQ(eo["MQTT_REMOTE_IP"], "10.0.0.2");
  EXPECT_EQ(worker_env(*c, 0, so)["ENDPOINT_CONNECTED"], "1");

  infra::Deployment none;
  none.nodes = {node("cloud0", "cloud", "10.0.0.2")};
  EXPECT_FALSE(assign(cfg("none", 1, 0, 0), none).ok());
}

TEST(Assign, ResourceManagerNoneWithCloudAndEdgeNodes) {
  infra::Deployment d;
  d.nodes = {node("cloud_controller", "cloud", "10.0.0.2"),
             node("cloud0", "cloud", "10.0.0.3"),
             node("edge0", "edge", "10.0.0.4"),
             node("edge1", "edge", "10.0.0.5"),
             node("endpoint0", "endpoint", "10.0.0.6"),
             node("endpoint1", "endpoint", "10.0.0.7"),
             node("endpoint2", "endpoint", "10.0.0.8"),
             node("endpoint3", "endpoint", "10.0.0.9")};
  // Endpoint-only: four combined endpoints, no worker anywhere.
  auto a = assign(cfg("none", 2, 2, 4), d);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->mode, "endpoint");
  EXPECT_TRUE(a->workers.empty());
  EXPECT_EQ(a->endpoint_worker, (std::vector<int>{-1, -1, -1, -1}));
  auto s = app_settings(cfg("none", 2, 2, 4), d, *a);
  for (size_t e = 0; e < 4; ++e) EXPECT_EQ(endpoint_env(*a, e, s)["COMBINED"], "True") << e;
  // direct_offload with edges: the edges work (the cloud nodes do not), two endpoints each.
  auto offload = cfg("none", 2, 2, 4);
  offload.benchmark->direct_offload = true;
  auto b = assign(offload, d);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->mode, "edge");
  ASSERT_EQ(b->workers.size(), 2u);
  EXPECT_EQ(b->workers[0]->id, "edge0");
  EXPECT_EQ(b->workers[1]->id, "edge1");
  EXPECT_EQ(b->endpoint_worker, (std::vector<int>{0, 0, 1, 1}));
}

TEST(Assign, WorkersWithoutEndpointsAreDropped) {
  infra::Deployment d;
  d.nodes = {
      node("cloud_controller", "cloud", "10.0.0.2"), node("cloud0", "cloud", "10.0.0.3"),
      node("cloud1", "cloud", "10.0.0.4"),           node("cloud2", "cloud", "10.0.0.5"),
      node("endpoint0", "endpoint", "10.0.0.6"),     node("endpoint1", "endpoint", "10.0.0.7")};
  auto c = cfg("none", 4, 0, 2);
  c.benchmark->direct_offload = true;
  auto a = assign(c, d);
  ASSERT_TRUE(a.ok());
  // The controller is not a worker while other cloud nodes exist, as in the original.
  ASSERT_EQ(a->workers.size(), 2u);
  EXPECT_EQ(a->workers[0]->id, "cloud0");
  EXPECT_EQ(a->workers[1]->id, "cloud1");
  EXPECT_EQ(a->endpoint_worker, (std::vector<int>{0, 1}));
  EXPECT_EQ(a->connected(0), 1);
  EXPECT_EQ(a->connected(1), 1);
}

TEST(DirectLaunch, QuotedCommandThatRecordsPidAndExitStatus) {
  auto cmd =
      direct_launch_command("continuum-bench/repeat-0/worker", "/opt/my bin/continuum-worker", {},
                            {{"MQTT_LOCAL_IP", "10.0.0.2"}, {"X", "it's"}});
  EXPECT_EQ(cmd,
            "mkdir -p continuum-bench/repeat-0/worker && cd continuum-bench/repeat-0/worker && "
            "rm -f out rc rc.tmp pid && { setsid nohup env MQTT_LOCAL_IP=10.0.0.2 'X=it'\\''s' "
            "/bin/sh -c "
            "''\\''/opt/my bin/continuum-worker'\\'' >out 2>&1; echo $? >rc.tmp; mv rc.tmp rc' "
            "</dev/null >/dev/null 2>&1 & echo $! >pid; cat pid; }");
  // And it does what it says, with a real shell.
  auto dir =
      std::filesystem::temp_directory_path() / ("continuum-dl-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  util::ProcessSpec spec;
  spec.cwd = dir;
  spec.argv = {"/bin/sh", "-c",
               direct_launch_command("job", "sh", {"-c", "echo \"$X\"; exit 5"}, {{"X", "it's"}})};
  auto r = util::run_process(spec);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_GT(std::stoi(r->out), 1);  // the pid
  std::string status;
  for (int i = 0; i < 100; ++i) {
    spec.argv = {"/bin/sh", "-c", direct_status_command("job")};
    status = util::run_process(spec)->out;
    if (status != "running\n") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(status, "5\n");
  spec.argv = {"cat", "job/out"};
  EXPECT_EQ(util::run_process(spec)->out, "it's\n");
  spec.argv = {"/bin/sh", "-c", direct_status_command("nowhere")};
  EXPECT_EQ(util::run_process(spec)->out, "gone\n");
  std::filesystem::remove_all(dir);
}

// The waits block in the (here: local) shell until the program gets where they wait for, so a
// result other than "running"/"no" proves they waited; a program that outlives the wait reads as
// running.
TEST(DirectLaunch, WaitCommandsBlockUntilTheProgramGetsThere) {
  auto dir =
      std::filesystem::temp_directory_path() / ("continuum-dw-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  util::ProcessSpec spec;
  spec.cwd = dir;
  auto sh = [&](const std::string& cmd) {
    spec.argv = {"/bin/sh", "-c", cmd};
    auto r = util::run_process(spec);
    return r.ok() ? r->out : "error: " + r.error().message;
  };
  ASSERT_GT(
      std::stoi(sh(direct_launch_command(
          "job", "sh", {"-c", "sleep 0.3; echo 'Subscribed to topic x'; sleep 0.3; exit 4"}, {}))),
      1);
  EXPECT_EQ(sh(direct_wait_output_command("job", "Subscribed to topic", 20)), "yes\n");
  EXPECT_EQ(sh(direct_wait_command("job", 20)), "4\n");
  // Ended without the text: "no", at once.
  EXPECT_EQ(sh(direct_wait_output_command("job", "never printed", 20)), "no\n");

  ASSERT_GT(std::stoi(sh(direct_launch_command("long", "sleep", {"30"}, {}))), 1);
  EXPECT_EQ(sh(direct_wait_command("long", 1)), "running\n");
  EXPECT_EQ(sh(direct_wait_output_command("long", "x", 1)), "no\n");
  sh(direct_stop_command("long"));
  EXPECT_EQ(sh(direct_wait_command("long", 20)), "gone\n");
  EXPECT_EQ(sh(direct_wait_command("nowhere", 20)), "gone\n");
  std::filesystem::remove_all(dir);
}

TEST(Containers, KubernetesJobAsTheOriginal) {
  AppSettings s;
  s.worker_cpu = 3.5;
  s.worker_memory_gb = 3.5;
  s.worker_threads = 3;
  auto y = kubernetes_job_yaml("image-classification", 1,
                               "192.168.1.10:5000/image_classification_subscriber", s, 2);
  EXPECT_NE(y.find("kind: Job\n"), std::string::npos);
  EXPECT_NE(y.find("  name: image-classification-1\n"), std::string::npos);
  EXPECT_NE(y.find("image: 192.168.1.10:5000/image_classification_subscriber\n"),
            std::string::npos);
  EXPECT_NE(y.find("- containerPort: 1883\n"), std::string::npos);
  EXPECT_NE(y.find("memory: \"3500Mi\"\n"), std::string::npos);
  EXPECT_NE(y.find("cpu: 3.5\n"), std::string::npos);
  EXPECT_NE(y.find("fieldPath: status.hostIP\n"), std::string::npos);
  EXPECT_NE(y.find("- name: ENDPOINT_CONNECTED\n          value: \"2\"\n"), std::string::npos);
  EXPECT_NE(y.find("- name: CPU_THREADS\n          value: \"3\"\n"), std::string::npos);
  EXPECT_NE(y.find("restartPolicy: Never\n"), std::string::npos);
}

TEST(Containers, DockerCommandsQuoteAndKeepFractionalLimits) {
  AppSettings s;
  s.endpoint_cpu = 0.5;  // the original turned this into --cpus=0 (no limit)
  s.endpoint_memory_gb = 1;
  auto c = docker_endpoint_command(
      "cloud0_endpoint1", "redplanet00/kubeedge-applications:image_classification_publisher",
      {{"FREQUENCY", "5"}, {"MQTT_LOCAL_IP", "192.168.100.4"}, {"ODD", "a b"}}, s);
  EXPECT_EQ(c,
            "docker container run --detach --cpus=0.5 --memory=1024m --network=host -e FREQUENCY=5 "
            "-e MQTT_LOCAL_IP=192.168.100.4 -e 'ODD=a b' --name cloud0_endpoint1 "
            "redplanet00/kubeedge-applications:image_classification_publisher");
  s.worker_cpu = 1.5;
  s.worker_memory_gb = 1.5;
  auto w = docker_worker_command("edge0_worker", "img", {{"ENDPOINT_CONNECTED", "1"}}, s);
  EXPECT_EQ(w,
            "docker container run --detach --cpus=1.5 --memory=1536m --network=host -e "
            "ENDPOINT_CONNECTED=1 "
            "--name edge0_worker img");
}

namespace {

// A guest whose docker accepts everything and records it; `docker container run` of an endpoint
// fails (exit 125, as when the image cannot be pulled) when fail_endpoint is set.
class RecordingDocker : public util::Remote {
 public:
  RecordingDocker(std::string node, std::vector<std::string>* log, bool fail_endpoint)
      : node_(std::move(node)), log_(log), fail_endpoint_(fail_endpoint) {}
  Expected<util::ExecResult> exec(const std::string& c, std::chrono::milliseconds) override {
    log_->push_back(node_ + ": " + c);
    util::ExecResult r;
    r.exit_code = 0;
    if (c.starts_with("docker container inspect")) r.out = "exited 0\n";  // ran to the end
    if (fail_endpoint_ && c.starts_with("docker container run") &&
        c.find("_endpoint") != std::string::npos) {
      r.exit_code = 125;
      r.err = "Unable to find image";
    }
    return r;
  }
  Status upload(const std::string&, const std::string&, int) override { return {}; }
  std::string describe() const override { return node_; }

 private:
  std::string node_;
  std::vector<std::string>* log_;
  bool fail_endpoint_;
};

struct MistRun {
  config::Config c = cfg("mist", 0, 1, 1);
  infra::Deployment d;
  std::vector<std::string> log;
  std::filesystem::path out =
      std::filesystem::temp_directory_path() / ("continuum-mist-" + std::to_string(::getpid()));
  ~MistRun() { std::filesystem::remove_all(out); }
  MistRun() {
    std::filesystem::create_directories(out);
    d.nodes = {node("edge0", "edge", "192.168.100.2"),
               node("endpoint0", "endpoint", "192.168.100.3")};
    d.registry = "192.168.100.1:5000";
    d.images = {{"subscriber", "192.168.100.1:5000/continuum/image_classification_subscriber:aa"},
                {"publisher", "192.168.100.1:5000/continuum/image_classification_publisher:bb"}};
  }
  Expected<AppMetrics> run(bool fail_endpoint, const std::atomic<bool>* interrupted) {
    auto a = assign(c, d);
    EXPECT_TRUE(a.ok());
    AppSettings s = app_settings(c, d, *a);
    RemoteFactory connect = [&](const infra::DeployedNode& n) -> Expected<util::RemotePtr> {
      return util::RemotePtr(new RecordingDocker(n.id, &log, fail_endpoint));
    };
    Hooks hooks;
    hooks.poll = std::chrono::milliseconds(1);
    std::vector<std::string> errors;
    return run_containers(c, *a, s, 0, d, out, hooks, connect, nullptr, interrupted, &errors);
  }
  // Index of the first (or last) log line containing all of `parts`, or -1.
  int find(std::initializer_list<const char*> parts, bool last = false) const {
    int found = -1;
    for (size_t i = 0; i < log.size(); ++i) {
      bool all = true;
      for (const char* p : parts) all = all && log[i].find(p) != std::string::npos;
      if (all && (found < 0 || last)) found = static_cast<int>(i);
    }
    return found;
  }
};

}  // namespace

TEST(Containers, MistPullsTheRunsOwnImagesFromItsRegistry) {
  MistRun m;
  auto r = m.run(false, nullptr);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_GE(m.find({"edge0: docker container run", "--name edge0_worker",
                    "192.168.100.1:5000/continuum/image_classification_subscriber:aa"}),
            0);
  EXPECT_GE(m.find({"endpoint0: docker container run", "--name edge0_endpoint0",
                    "MQTT_REMOTE_IP=192.168.100.2",
                    "192.168.100.1:5000/continuum/image_classification_publisher:bb"}),
            0);
  // After the logs are collected, nothing of the repeat is left running.
  const int logs = m.find({"endpoint0: docker logs -t edge0_endpoint0"});
  ASSERT_GE(logs, 0);
  // What docker made of each container is kept next to its log.
  EXPECT_TRUE(std::filesystem::exists(m.out / "edge0_worker.inspect.json"));
  EXPECT_TRUE(std::filesystem::exists(m.out / "edge0_endpoint0.inspect.json"));
  // (the first rm -f of each name clears a leftover before its run; the last one is the cleanup)
  EXPECT_GT(m.find({"endpoint0: docker rm -f edge0_endpoint0"}, true), logs);
  EXPECT_GT(m.find({"edge0: docker rm -f edge0_worker"}, true), logs);
  EXPECT_EQ(m.log.back(), "edge0: docker rm -f edge0_worker");
}

TEST(Containers, AFailedStartRemovesWhatTheRepeatAlreadyStarted) {
  MistRun m;
  auto r = m.run(true, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("Unable to find image"), std::string::npos) << r.error().message;
  const int failed = m.find({"endpoint0: docker container run"});
  ASSERT_GE(failed, 0);
  // The worker started before the failure, and the endpoint container the failed run may have
  // created, are both removed afterwards.
  bool worker_removed = false, endpoint_removed = false;
  for (size_t i = static_cast<size_t>(failed) + 1; i < m.log.size(); ++i) {
    worker_removed = worker_removed || m.log[i] == "edge0: docker rm -f edge0_worker";
    endpoint_removed = endpoint_removed || m.log[i] == "endpoint0: docker rm -f edge0_endpoint0";
  }
  EXPECT_TRUE(worker_removed) << testing::PrintToString(m.log);
  EXPECT_TRUE(endpoint_removed) << testing::PrintToString(m.log);
}

TEST(Containers, CtrlCBeforeTheEndpointsRemovesTheWorker) {
  MistRun m;
  std::atomic<bool> interrupted{true};
  auto r = m.run(false, &interrupted);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().exit_code, ExitCode::interrupted);
  EXPECT_EQ(m.find({"endpoint0: docker container run"}), -1);
  const int started = m.find({"edge0: docker container run"});
  ASSERT_GE(started, 0);
  EXPECT_EQ(m.log.back(), "edge0: docker rm -f edge0_worker") << testing::PrintToString(m.log);
}

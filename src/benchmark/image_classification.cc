#include "continuum/benchmark/image_classification.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <optional>
#include <thread>

#include "continuum/util/files.h"
#include "continuum/util/parallel.h"
#include "continuum/util/strings.h"
#include "internal.h"

namespace continuum::benchmark {

using util::shell_join;
using util::shell_quote;

namespace {

constexpr auto kExecTimeout = std::chrono::seconds(60);
const char* kImageRepo = "redplanet00/kubeedge-applications";

std::string image_name(const AppSettings& s, const std::string& tag) {
  // continuum's own images in the run's registry, by role: the original's tag's last word
  // (image_classification_subscriber -> subscriber).
  if (auto it = s.images.find(tag.substr(tag.rfind('_') + 1)); it != s.images.end())
    return it->second;
  // The original pushed its images to a registry on the host as <registry>/<tag>.
  return s.registry.empty() ? fmt::format("{}:{}", kImageRepo, tag)
                            : fmt::format("{}/{}", s.registry, tag);
}

std::string program(const AppSettings& s, const std::string& name) {
  return s.bin_dir.empty() ? name : s.bin_dir + "/" + name;
}

std::string env_flags(const std::map<std::string, std::string>& env) {
  std::string r;
  for (const auto& [k, v] : env) r += " -e " + shell_quote(k + "=" + v);
  return r;
}

std::string docker_limits(double cpu, double mem_gb) {
  // The original truncated to integers (--cpus=0 for 0.5 = no limit); keep fractions instead.
  std::string r;
  if (cpu > 0) r += " --cpus=" + util::format_number(cpu);
  if (mem_gb > 0)
    r += " --memory=" + std::to_string(static_cast<long long>(std::llround(mem_gb * 1024))) + "m";
  return r;
}

}  // namespace

int Assignment::connected(size_t w) const {
  return static_cast<int>(
      std::count(endpoint_worker.begin(), endpoint_worker.end(), static_cast<int>(w)));
}

Expected<Assignment> assign(const config::Config& cfg, const infra::Deployment& d) {
  Assignment a;
  a.mode = config::tier_name(cfg.mode());
  const infra::DeployedNode* controller = nullptr;
  std::vector<const infra::DeployedNode*> clouds, edges;
  for (const auto& n : d.nodes) {
    if (n.tier == "endpoint")
      a.endpoints.push_back(&n);
    else if (n.id == "cloud_controller")
      controller = &n;
    else if (n.tier == "cloud")
      clouds.push_back(&n);
    else if (n.tier == "edge")
      edges.push_back(&n);
  }
  if (a.endpoints.empty())
    return make_error("image_classification requires at least 1 endpoint node in the deployment");
  const auto rm = cfg.benchmark ? cfg.benchmark->resource_manager : config::ResourceManager::none;
  const bool offload =
      rm != config::ResourceManager::none || (cfg.benchmark && cfg.benchmark->direct_offload);
  if (!offload) {
    // The original's endpoint-only mode: every endpoint generates and classifies its own images.
    a.mode = "endpoint";
    a.endpoint_worker.assign(a.endpoints.size(), -1);
    return a;
  }
  // Workers as the original places them for the same node counts: the edges when there are any,
  // else the cloud nodes that are not the controller; direct_offload, which has no control plane,
  // uses the controller when it is the only cloud node.
  a.workers = !edges.empty() ? edges : clouds;
  if (a.workers.empty() && rm == config::ResourceManager::none && controller)
    a.workers.push_back(controller);
  if (a.workers.empty())
    return make_error(
        "image_classification with resource_manager = " + std::string(config::name(rm)) +
        " has no cloud or edge node to run its workers");
  a.mode = a.workers.front()->tier;
  const size_t per = (a.endpoints.size() + a.workers.size() - 1) / a.workers.size();
  for (size_t i = 0; i < a.endpoints.size(); ++i)
    a.endpoint_worker.push_back(static_cast<int>(i / per));
  // With more workers than endpoint blocks the last workers serve nobody; started, they would
  // wait for end markers that never come.
  a.workers.resize(static_cast<size_t>(a.endpoint_worker.back()) + 1);
  return a;
}

AppSettings app_settings(const config::Config& cfg, const infra::Deployment& d,
                         const Assignment& a) {
  AppSettings s;
  s.registry = d.registry;
  s.images = d.images;
  const auto& inf = cfg.infrastructure;
  const config::TierSpec& wt = a.mode == "edge" ? inf.edge : inf.cloud;
  if (cfg.benchmark) {
    const auto& b = *cfg.benchmark;
    s.frequency = b.frequency > 0 ? b.frequency : 5;
    s.duration = b.duration;
    s.worker_cpu =
        b.application_worker_cpu > 0 ? b.application_worker_cpu : std::max(0.5, wt.cores - 0.5);
    s.worker_memory_gb = b.application_worker_memory > 0 ? b.application_worker_memory
                                                         : std::max(0.5, wt.memory_gb - 0.5);
    s.endpoint_cpu =
        b.application_endpoint_cpu > 0 ? b.application_endpoint_cpu : inf.endpoint.cores;
    s.endpoint_memory_gb =
        b.application_endpoint_memory > 0 ? b.application_endpoint_memory : inf.endpoint.memory_gb;
    s.timeout_s = b.benchmark_timeout > 0 ? b.benchmark_timeout : b.duration * 3 + 600;
  } else {
    s.timeout_s = s.duration * 3 + 600;
  }
  s.worker_threads = std::max(1, static_cast<int>(s.worker_cpu));
  s.endpoint_threads = std::max(1, static_cast<int>(s.endpoint_cpu));
  return s;
}

std::map<std::string, std::string> worker_env(const Assignment& a, size_t w, const AppSettings& s) {
  return {{"MQTT_LOCAL_IP", a.workers[w]->ip},
          {"MQTT_LOGS", "True"},
          {"CPU_THREADS", std::to_string(s.worker_threads)},
          {"ENDPOINT_CONNECTED", std::to_string(a.connected(w))},
          {"TIMEOUT", std::to_string(s.timeout_s)}};
}

std::map<std::string, std::string> endpoint_env(const Assignment& a, size_t e,
                                                const AppSettings& s) {
  std::map<std::string, std::string> env{{"FREQUENCY", std::to_string(s.frequency)},
                                         {"DURATION", std::to_string(s.duration)}};
  const int w = a.endpoint_worker[e];
  if (w < 0) {
    env["CPU_THREADS"] = std::to_string(s.endpoint_threads);
    env["COMBINED"] = "True";
  } else {
    env["MQTT_LOCAL_IP"] = a.endpoints[e]->ip;
    env["MQTT_REMOTE_IP"] = a.workers[static_cast<size_t>(w)]->ip;
    env["MQTT_LOGS"] = "True";
    env["REPLY_TIMEOUT"] = std::to_string(std::max(60, s.timeout_s - s.duration));
  }
  return env;
}

std::string direct_launch_command(const std::string& dir, const std::string& prog,
                                  const std::vector<std::string>& args,
                                  const std::map<std::string, std::string>& env) {
  std::vector<std::string> argv{prog};
  argv.insert(argv.end(), args.begin(), args.end());
  // The inner script records the exit status atomically (rc appears complete or not at all).
  const std::string inner = shell_join(argv) + " >out 2>&1; echo $? >rc.tmp; mv rc.tmp rc";
  std::vector<std::string> env_argv{"env"};
  for (const auto& [k, v] : env) env_argv.push_back(k + "=" + v);
  const std::string d = shell_quote(dir);
  return fmt::format(
      "mkdir -p {d} && cd {d} && rm -f out rc rc.tmp pid && "
      "{{ setsid nohup {env} /bin/sh -c {inner} </dev/null >/dev/null 2>&1 & echo $! >pid; cat "
      "pid; }}",
      fmt::arg("d", d), fmt::arg("env", shell_join(env_argv)),
      fmt::arg("inner", shell_quote(inner)));
}

std::string direct_status_command(const std::string& dir) {
  // rc is read again after a failed kill -0: the program may have written rc and exited between
  // the first look and kill -0. Once kill -0 fails the wrapper has ended, and it writes rc before
  // it ends, so the second look is final: no rc then means it was killed ("gone").
  return fmt::format(
      "cd {} 2>/dev/null || {{ echo gone; exit 0; }}; if [ -f rc ]; then cat rc; "
      "elif [ -f pid ] && kill -0 \"$(cat pid)\" 2>/dev/null; then echo running; "
      "elif [ -f rc ]; then cat rc; else echo gone; fi",
      shell_quote(dir));
}

std::string direct_wait_command(const std::string& dir, int max_seconds) {
  // GNU tail --pid waits without a child process per look: it checks the PID every -s seconds
  // in one process. A shell loop of `sleep 0.1` forked 10 times a second in the guest and, under
  // TCG, took a quarter of a vCPU from the program being measured (the quickstart worker's
  // per-frame time went from 0.9 to 1.24 s). A subshell, so the status command starts from the
  // same directory as without the wait.
  return fmt::format(
      "(cd {d} 2>/dev/null && {{ read -r p <pid; }} 2>/dev/null && [ ! -f rc ] && "
      "timeout {t} tail --pid=\"$p\" -s 0.1 -f /dev/null >/dev/null 2>&1); {status}",
      fmt::arg("d", shell_quote(dir)), fmt::arg("t", std::max(1, max_seconds)),
      fmt::arg("status", direct_status_command(dir)));
}

std::string direct_wait_output_command(const std::string& dir, const std::string& text,
                                       int max_seconds) {
  return fmt::format(
      "cd {d} 2>/dev/null || {{ echo no; exit 0; }}; n=0; read -r p <pid 2>/dev/null; "
      "while [ $n -lt {t} ]; do grep -qF -- {x} out 2>/dev/null && {{ echo yes; exit 0; }}; "
      "[ -f rc ] && break; [ -n \"$p\" ] && kill -0 \"$p\" 2>/dev/null || break; "
      "sleep 0.25; n=$((n+1)); done; grep -qF -- {x} out 2>/dev/null && echo yes || echo no",
      fmt::arg("d", shell_quote(dir)), fmt::arg("t", std::max(0, max_seconds) * 4),
      fmt::arg("x", shell_quote(text)));
}

std::string direct_stop_command(const std::string& dir) {
  // setsid made the program's shell a process group leader: signal the whole group.
  return fmt::format(
      "cd {} 2>/dev/null && [ -f pid ] && p=$(cat pid) && kill -TERM -\"$p\" 2>/dev/null; "
      "i=0; while [ $i -lt 10 ] && kill -0 -\"$p\" 2>/dev/null; do sleep 0.5; i=$((i+1)); done; "
      "kill -KILL -\"$p\" 2>/dev/null; true",
      shell_quote(dir));
}

std::string kubernetes_job_yaml(const std::string& app_name, int index, const std::string& image,
                                const AppSettings& s, int endpoints_connected) {
  const std::string name = fmt::format("{}-{}", app_name, index);
  return fmt::format(R"(apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
  template:
    metadata:
      name: {name}
    spec:
      containers:
      - name: {name}
        image: {image}
        ports:
        - containerPort: 1883
        imagePullPolicy: Always
        resources:
          requests:
            memory: "{mem}Mi"
            cpu: {cpu}
        env:
        - name: MQTT_LOCAL_IP
          valueFrom:
            fieldRef:
              fieldPath: status.hostIP
        - name: MQTT_LOGS
          value: "True"
        - name: CPU_THREADS
          value: "{threads}"
        - name: ENDPOINT_CONNECTED
          value: "{connected}"
      restartPolicy: Never
)",
                     fmt::arg("name", name), fmt::arg("image", image),
                     fmt::arg("mem", static_cast<long long>(s.worker_memory_gb * 1000)),
                     fmt::arg("cpu", util::format_number(s.worker_cpu)),
                     fmt::arg("threads", s.worker_threads),
                     fmt::arg("connected", endpoints_connected));
}

std::string docker_endpoint_command(const std::string& name, const std::string& image,
                                    const std::map<std::string, std::string>& env,
                                    const AppSettings& s) {
  return "docker container run --detach" + docker_limits(s.endpoint_cpu, s.endpoint_memory_gb) +
         " --network=host" + env_flags(env) + " --name " + shell_quote(name) + " " +
         shell_quote(image);
}

std::string docker_worker_command(const std::string& name, const std::string& image,
                                  const std::map<std::string, std::string>& env,
                                  const AppSettings& s) {
  return "docker container run --detach" + docker_limits(s.worker_cpu, s.worker_memory_gb) +
         " --network=host" + env_flags(env) + " --name " + shell_quote(name) + " " +
         shell_quote(image);
}

AppMetrics metrics_from_outputs(const Assignment& a, const std::vector<std::string>& worker_out,
                                const std::vector<std::string>& endpoint_out) {
  AppMetrics m;
  m.mode = a.mode;
  for (size_t w = 0; w < worker_out.size() && w < a.workers.size(); ++w) {
    auto log = parse_worker_log(worker_out[w]);
    for (const auto& warn : log.warnings) spdlog::warn("worker {}: {}", a.workers[w]->id, warn);
    m.workers.push_back(worker_metrics(static_cast<int>(w), a.workers[w]->id, log));
  }
  for (size_t e = 0; e < endpoint_out.size() && e < a.endpoints.size(); ++e) {
    auto log = parse_endpoint_log(endpoint_out[e]);
    for (const auto& warn : log.warnings) spdlog::warn("endpoint {}: {}", a.endpoints[e]->id, warn);
    m.endpoints.push_back(
        endpoint_metrics(static_cast<int>(e), a.endpoint_worker[e], a.endpoints[e]->id, log));
  }
  return m;
}

// ---- RM none: programs started directly over SSH ---------------------------------------------

namespace {

struct Proc {
  const infra::DeployedNode* node;
  std::string role;  // worker | endpoint
  std::string dir;
  std::string status = "running";
  std::string output;
};

Expected<util::ExecResult> exec_ok(util::Remote& r, const std::string& cmd) {
  auto res = TRY(r.exec(cmd, kExecTimeout));
  if (res.exit_code != 0)
    return make_error(fmt::format("{}: command failed with exit {}: {}\n{}", r.describe(),
                                  res.exit_code, cmd, util::trim(res.err)));
  return res;
}

// One connection per node, opened on first use and kept for the whole run.
struct Remotes {
  const RemoteFactory& connect;
  std::map<std::string, util::RemotePtr> open;

  Expected<util::Remote*> get(const infra::DeployedNode* n) {
    auto& r = open[n->id];
    if (!r) r = TRY(connect(*n));
    return r.get();
  }
};

struct DirectRun {
  const Assignment& a;
  const AppSettings& s;
  int repeat;
  const std::filesystem::path& out_dir;
  const Hooks& hooks;
  record::EventLog* events;
  const std::atomic<bool>* interrupted;
  std::vector<std::string>* errors;
  Remotes remotes;
  std::vector<Proc> procs;
  const std::string app = "image_classification";
};

bool is_interrupted(const DirectRun& run) { return run.interrupted && run.interrupted->load(); }

Status launch(DirectRun& run, size_t i, const std::map<std::string, std::string>& env,
              const std::string& prog) {
  Proc& p = run.procs[i];
  auto* r = TRY(run.remotes.get(p.node));
  auto res = TRY(exec_ok(*r, direct_launch_command(p.dir, program(run.s, prog), {}, env)));
  spdlog::info("Started {} on {} (pid {})", p.role, p.node->id, std::string(util::trim(res.out)));
  if (run.events)
    run.events->emit("application", "launched", run.app, run.repeat, p.node->id,
                     {{"role", p.role}, {"pid", std::string(util::trim(res.out))}});
  return {};
}

void stop_all(DirectRun& run) {
  for (auto& p : run.procs) {
    if (p.status != "running") continue;
    if (auto r = run.remotes.get(p.node); r.ok()) {
      auto res = (*r)->exec(direct_stop_command(p.dir), kExecTimeout);
      (void)res;
    }
    p.status = "stopped";
  }
}

void collect(DirectRun& run) {
  for (auto& p : run.procs) {
    auto r = run.remotes.get(p.node);
    if (!r.ok()) {
      run.errors->push_back(r.error().message);
      continue;
    }
    auto res = (*r)->exec("cat " + shell_quote(p.dir + "/out"), kExecTimeout);
    if (res.ok()) p.output = res->out;
    auto st = util::write_file_atomic(run.out_dir / fmt::format("{}.{}.log", p.node->id, p.role),
                                      p.output);
    if (!st.ok()) run.errors->push_back(st.error().message);
    if (p.status != "0")
      run.errors->push_back(fmt::format("{} on {}: {}", p.role, p.node->id,
                                        p.status == "stopped" ? "stopped before it finished"
                                        : p.status == "gone"  ? "vanished without an exit status"
                                                              : "exit status " + p.status));
  }
}

Status poll_status(DirectRun& run, Proc& p) {
  auto* r = TRY(run.remotes.get(p.node));
  auto res = TRY(exec_ok(*r, direct_status_command(p.dir)));
  p.status = std::string(util::trim(res.out));
  return {};
}

Error fail(DirectRun& run, Error e) {
  stop_all(run);
  collect(run);
  return e;
}

Status start_workers(DirectRun& run) {
  for (size_t w = 0; w < run.a.workers.size(); ++w) {
    if (is_interrupted(run)) return make_error("interrupted", ExitCode::interrupted);
    TRY_STATUS(launch(run, w, worker_env(run.a, w, run.s), "continuum-worker"));
  }
  return {};
}

// Seconds one waiting command may block in the guest: how soon Ctrl-C or a deadline is seen.
constexpr int kWaitSlice = 2;

int slice_until(std::chrono::steady_clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::seconds>(deadline - std::chrono::steady_clock::now())
          .count();
  return static_cast<int>(std::clamp<long long>(left + 1, 1, kWaitSlice));
}

Status wait_subscribed(DirectRun& run) {
  const auto start_deadline = std::chrono::steady_clock::now() + run.hooks.start_timeout;
  for (size_t w = 0; w < run.a.workers.size(); ++w) {
    Proc& p = run.procs[w];
    for (;;) {
      auto* r = TRY(run.remotes.get(p.node));
      // Waits in the guest until the line is there (seen within 0.1 s), the worker ended, or the
      // slice is over.
      auto res = TRY(r->exec(
          direct_wait_output_command(p.dir, "Subscribed to topic", slice_until(start_deadline)),
          kExecTimeout));
      if (util::trim(res.out) == "yes") break;
      TRY_STATUS(poll_status(run, p));
      if (p.status != "running")
        return make_error(
            fmt::format("worker on {} ended before subscribing (status {})", p.node->id, p.status));
      if (std::chrono::steady_clock::now() > start_deadline)
        return make_error(fmt::format("worker on {} did not subscribe to its broker within {} s",
                                      p.node->id, run.hooks.start_timeout.count() / 1000));
      if (is_interrupted(run)) return make_error("interrupted", ExitCode::interrupted);
    }
  }
  return {};
}

Status start_endpoints(DirectRun& run) {
  for (size_t e = 0; e < run.a.endpoints.size(); ++e) {
    if (is_interrupted(run)) return make_error("interrupted", ExitCode::interrupted);
    TRY_STATUS(
        launch(run, run.a.workers.size() + e, endpoint_env(run.a, e, run.s), "continuum-endpoint"));
  }
  return {};
}

// Ends without an Error also on interrupt or benchmark_timeout: what ran so far is still
// collected. One thread per node, each blocking in its guest until its programs end (endpoints
// first: they finish first), so an end is seen within 0.1 s instead of a poll interval later,
// over the node's one session.
Status wait_finished(DirectRun& run) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(run.s.timeout_s);
  std::vector<const infra::DeployedNode*> nodes;
  for (const auto& p : run.procs)
    if (std::find(nodes.begin(), nodes.end(), p.node) == nodes.end()) nodes.push_back(p.node);
  std::vector<util::Remote*> remotes;
  for (const auto* n : nodes) remotes.push_back(TRY(run.remotes.get(n)));
  std::mutex mu;  // guards the Procs' status, run.errors and the first error
  std::optional<Error> error;
  bool timed_out = false, interrupted_seen = false;
  util::parallel_for(nodes.size(), util::kAllAtOnce, [&](size_t ni) {
    std::vector<Proc*> mine;
    for (auto& p : run.procs)
      if (p.node == nodes[ni] && p.role == "endpoint") mine.push_back(&p);
    for (auto& p : run.procs)
      if (p.node == nodes[ni] && p.role != "endpoint") mine.push_back(&p);
    for (Proc* p : mine) {
      for (;;) {
        {
          std::lock_guard lock(mu);
          if (p->status != "running" || error || timed_out || interrupted_seen) break;
        }
        auto res = exec_ok(*remotes[ni], direct_wait_command(p->dir, slice_until(deadline)));
        std::lock_guard lock(mu);
        if (!res) {
          if (!error) error = res.error();
          return;
        }
        p->status = std::string(util::trim(res->out));
        if (p->status != "running") {
          if (run.events)
            run.events->emit("application", "exited", run.app, run.repeat, p->node->id,
                             {{"role", p->role}, {"status", p->status}});
          break;
        }
        if (is_interrupted(run)) {
          if (!interrupted_seen) spdlog::warn("Interrupted: stopping the application");
          interrupted_seen = true;
          return;
        }
        if (std::chrono::steady_clock::now() > deadline) {
          if (!timed_out)
            run.errors->push_back(fmt::format(
                "application did not finish within {} s (benchmark_timeout)", run.s.timeout_s));
          timed_out = true;
          return;
        }
      }
    }
  });
  if (error) return *error;
  return {};
}

}  // namespace

Expected<AppMetrics> run_direct(const Assignment& a, const AppSettings& s, int repeat,
                                const infra::Deployment&, const std::filesystem::path& out_dir,
                                const Hooks& hooks, const RemoteFactory& connect,
                                record::EventLog* events, const std::atomic<bool>* interrupted,
                                std::vector<std::string>* errors) {
  DirectRun run{.a = a,
                .s = s,
                .repeat = repeat,
                .out_dir = out_dir,
                .hooks = hooks,
                .events = events,
                .interrupted = interrupted,
                .errors = errors,
                .remotes = Remotes{connect, {}},
                .procs = {}};
  const std::string base = fmt::format("{}/repeat-{}", hooks.guest_dir, repeat);
  for (auto* w : a.workers) run.procs.push_back(Proc{w, "worker", base + "/worker", "running", ""});
  for (auto* e : a.endpoints)
    run.procs.push_back(Proc{e, "endpoint", base + "/endpoint", "running", ""});

  // Workers first, each must be subscribed before any endpoint publishes (QoS 0 frames sent
  // earlier would be lost).
  if (auto st = start_workers(run); !st.ok()) return fail(run, st.error());
  if (auto st = wait_subscribed(run); !st.ok()) return fail(run, st.error());
  if (auto st = start_endpoints(run); !st.ok()) return fail(run, st.error());
  if (auto st = wait_finished(run); !st.ok()) return fail(run, st.error());
  stop_all(run);
  collect(run);
  std::vector<std::string> wout, eout;
  for (auto& p : run.procs) (p.role == "worker" ? wout : eout).push_back(p.output);
  return metrics_from_outputs(a, wout, eout);
}

// ---- kubernetes / kubeedge / mist: the original's containers --------------------------------

namespace {

struct ContainerRun {
  const Assignment& a;
  const AppSettings& s;
  const Hooks& hooks;
  const std::atomic<bool>* interrupted;
  std::vector<std::string>* errors;
  bool mist;
  const infra::DeployedNode* controller;
  std::chrono::steady_clock::time_point deadline;
  Remotes remotes;
  std::vector<std::string> worker_names;
  std::vector<std::string> endpoint_names;
};

bool is_interrupted(const ContainerRun& run) { return run.interrupted && run.interrupted->load(); }

bool expired(const ContainerRun& run) {
  return std::chrono::steady_clock::now() > run.deadline || is_interrupted(run);
}

Status start_mist_workers(ContainerRun& run) {
  const Assignment& a = run.a;
  for (size_t w = 0; w < a.workers.size(); ++w) {
    const std::string name = fmt::format("{}{}_worker", a.mode, w);
    auto* r = TRY(run.remotes.get(a.workers[w]));
    (void)r->exec("docker rm -f " + shell_quote(name) + " >/dev/null 2>&1", kExecTimeout);
    // Named before it runs: a docker run that fails after creating the container is cleaned up.
    run.worker_names.push_back(name);
    TRY(exec_ok(*r,
                docker_worker_command(name, image_name(run.s, "image_classification_subscriber"),
                                      worker_env(a, w, run.s), run.s)));
  }
  return {};
}

Status wait_pods_running(ContainerRun& run, util::Remote& r) {
  for (;;) {
    auto res = TRY(exec_ok(r,
                           "kubectl get pods --no-headers "
                           "-o=custom-columns=NAME:.metadata.name,STATUS:.status.phase "
                           "--sort-by=.spec.nodeName"));
    int up = 0;
    run.worker_names.clear();
    for (const auto& line : util::split(res.out, '\n')) {
      auto f = util::split(std::string(util::trim(line)), ' ');
      f.erase(std::remove(f.begin(), f.end(), ""), f.end());
      if (f.size() < 2) continue;
      run.worker_names.push_back(f[0]);
      if (f[1] == "Running" || f[1] == "Succeeded") ++up;
      if (f[1] == "Failed" || f[1] == "Unknown") return make_error("pod " + f[0] + " is " + f[1]);
    }
    if (up >= static_cast<int>(run.a.workers.size())) break;
    if (is_interrupted(run))
      return make_error("interrupted while the worker pods started", ExitCode::interrupted);
    if (expired(run)) return make_error("worker pods did not start in time");
    internal::sleep_interruptible(run.hooks.poll, run.interrupted);
  }
  return {};
}

Status start_job_workers(ContainerRun& run, config::ResourceManager rm) {
  if (!run.controller)
    return make_error("resource manager " + std::string(config::name(rm)) +
                      " needs a cloud_controller node");
  auto* r = TRY(run.remotes.get(run.controller));
  TRY(exec_ok(*r, "rm -rf jobs && mkdir -p jobs"));
  const std::string app_name = "image-classification";
  for (size_t w = 0; w < run.a.workers.size(); ++w) {
    TRY_STATUS(r->upload(kubernetes_job_yaml(app_name, static_cast<int>(w + 1),
                                             image_name(run.s, "image_classification_subscriber"),
                                             run.s, run.a.connected(w)),
                         fmt::format("jobs/job-{}.yaml", w + 1), 0644));
  }
  TRY(exec_ok(*r, "kubectl apply -f jobs/"));
  // Wait until every pod runs (the original busy-looped without a sleep or timeout).
  return wait_pods_running(run, *r);
}

Status start_container_endpoints(ContainerRun& run) {
  const Assignment& a = run.a;
  for (size_t e = 0; e < a.endpoints.size(); ++e) {
    if (is_interrupted(run))
      return make_error("interrupted before endpoint " + a.endpoints[e]->id + " started",
                        ExitCode::interrupted);
    const std::string name = fmt::format("{}{}_endpoint{}", a.mode, a.endpoint_worker[e], e);
    auto* r = TRY(run.remotes.get(a.endpoints[e]));
    (void)r->exec("docker rm -f " + shell_quote(name) + " >/dev/null 2>&1", kExecTimeout);
    run.endpoint_names.push_back(name);
    TRY(exec_ok(*r,
                docker_endpoint_command(name, image_name(run.s, "image_classification_publisher"),
                                        endpoint_env(a, e, run.s), run.s)));
  }
  return {};
}

Expected<bool> docker_done(ContainerRun& run, const infra::DeployedNode* n,
                           const std::string& name) {
  auto* r = TRY(run.remotes.get(n));
  auto res =
      TRY(exec_ok(*r, "docker container inspect -f '{{.State.Status}} {{.State.ExitCode}}' " +
                          shell_quote(name)));
  auto st = std::string(util::trim(res.out));
  if (st == "exited 0") return true;
  if (util::starts_with(st, "exited") || util::starts_with(st, "dead"))
    return make_error(fmt::format("container {} on {}: {}", name, n->id, st));
  return false;
}

void wait_endpoints_done(ContainerRun& run) {
  for (size_t e = 0; e < run.a.endpoints.size();) {
    auto done = docker_done(run, run.a.endpoints[e], run.endpoint_names[e]);
    if (!done.ok()) {
      run.errors->push_back(done.error().message);
      ++e;
    } else if (*done) {
      ++e;
    } else if (expired(run)) {
      if (!is_interrupted(run)) run.errors->push_back("endpoints did not finish in time");
      break;
    } else {
      internal::sleep_interruptible(run.hooks.poll, run.interrupted);
    }
  }
}

Status wait_workers_done(ContainerRun& run) {
  for (bool all_done = false; !all_done && !expired(run);) {
    all_done = true;
    if (run.mist) {
      for (size_t w = 0; w < run.worker_names.size(); ++w) {
        auto done = docker_done(run, run.a.workers[w], run.worker_names[w]);
        if (!done.ok())
          run.errors->push_back(done.error().message);
        else if (!*done)
          all_done = false;
      }
    } else {
      auto* r = TRY(run.remotes.get(run.controller));
      auto res =
          TRY(exec_ok(*r, "kubectl get pods --no-headers -o=custom-columns=STATUS:.status.phase"));
      for (const auto& line : util::split(res.out, '\n')) {
        auto st = std::string(util::trim(line));
        if (st.empty() || st == "Succeeded") continue;
        if (st == "Running" || st == "Pending")
          all_done = false;
        else
          run.errors->push_back("a worker pod ended as " + st);
      }
    }
    if (!all_done) internal::sleep_interruptible(run.hooks.poll, run.interrupted);
  }
  return {};
}

/// What docker made of the container (image digest, limits, exit status): <name>.inspect.json
/// next to its log, before the container is removed. Missing only costs that record.
void save_inspect(util::Remote& r, const std::string& name, const std::filesystem::path& out_dir) {
  auto res = r.exec("docker container inspect " + shell_quote(name), kExecTimeout);
  if (!res.ok() || res->exit_code != 0) {
    spdlog::warn("docker container inspect {} failed: {}", name,
                 res.ok() ? std::string(util::trim(res->err)) : res.error().message);
    return;
  }
  if (auto st = util::write_file_atomic(out_dir / (name + ".inspect.json"), res->out); !st)
    spdlog::warn("{}", st.error().message);
}

Expected<std::vector<std::string>> collect_worker_logs(ContainerRun& run,
                                                       const std::filesystem::path& out_dir) {
  std::vector<std::string> wout;
  for (size_t w = 0; w < run.worker_names.size(); ++w) {
    auto* r = TRY(run.remotes.get(run.mist ? run.a.workers[w] : run.controller));
    auto cmd = run.mist ? "docker logs -t " + shell_quote(run.worker_names[w])
                        : "kubectl logs --timestamps=true " + shell_quote(run.worker_names[w]);
    auto res = TRY(r->exec(cmd, kExecTimeout));
    wout.push_back(res.out);
    TRY_STATUS(util::write_file_atomic(out_dir / fmt::format("{}.worker.log", run.worker_names[w]),
                                       res.out));
    if (run.mist) save_inspect(*r, run.worker_names[w], out_dir);
  }
  return wout;
}

Expected<std::vector<std::string>> collect_endpoint_logs(ContainerRun& run,
                                                         const std::filesystem::path& out_dir) {
  std::vector<std::string> eout;
  for (size_t e = 0; e < run.endpoint_names.size(); ++e) {
    auto* r = TRY(run.remotes.get(run.a.endpoints[e]));
    auto res = TRY(r->exec("docker logs -t " + shell_quote(run.endpoint_names[e]), kExecTimeout));
    eout.push_back(res.out);
    TRY_STATUS(util::write_file_atomic(
        out_dir / fmt::format("{}.endpoint.log", run.a.endpoints[e]->id), res.out));
    save_inspect(*r, run.endpoint_names[e], out_dir);
  }
  return eout;
}

void remove_jobs(ContainerRun& run) {
  if (!run.mist && run.controller) {
    if (auto r = run.remotes.get(run.controller); r.ok())
      (void)(*r)->exec("kubectl delete -f jobs/ --wait=true", std::chrono::seconds(300));
  }
}

void remove_container(ContainerRun& run, const infra::DeployedNode* n, const std::string& name) {
  auto r = run.remotes.get(n);
  if (!r.ok()) {
    spdlog::warn("container {} on {} not removed: {}", name, n->id, r.error().message);
    return;
  }
  auto res = (*r)->exec("docker rm -f " + shell_quote(name), kExecTimeout);
  if (!res.ok() || res->exit_code != 0)
    spdlog::warn("container {} on {} not removed: {}", name, n->id,
                 res.ok() ? std::string(util::trim(res->err)) : res.error().message);
}

/// Removes what a repeat started, however it ends (success after the logs are collected, a
/// failed start, a timeout, Ctrl-C), so that no container outlives its repeat and the next repeat
/// can reuse the names.
struct StartedContainers {
  ContainerRun& run;
  explicit StartedContainers(ContainerRun& r) : run(r) {}
  StartedContainers(const StartedContainers&) = delete;
  StartedContainers& operator=(const StartedContainers&) = delete;
  ~StartedContainers() {
    for (size_t e = 0; e < run.endpoint_names.size(); ++e)
      remove_container(run, run.a.endpoints[e], run.endpoint_names[e]);
    if (run.mist)
      for (size_t w = 0; w < run.worker_names.size(); ++w)
        remove_container(run, run.a.workers[w], run.worker_names[w]);
    else
      remove_jobs(run);
  }
};

}  // namespace

Expected<AppMetrics> run_containers(const config::Config& cfg, const Assignment& a,
                                    const AppSettings& s, int repeat, const infra::Deployment& d,
                                    const std::filesystem::path& out_dir, const Hooks& hooks,
                                    const RemoteFactory& connect, record::EventLog* events,
                                    const std::atomic<bool>* interrupted,
                                    std::vector<std::string>* errors) {
  const auto rm = cfg.benchmark->resource_manager;
  const std::string app = "image_classification";
  ContainerRun run{.a = a,
                   .s = s,
                   .hooks = hooks,
                   .interrupted = interrupted,
                   .errors = errors,
                   .mist = rm == config::ResourceManager::mist,
                   .controller = d.find("cloud_controller"),
                   .deadline = std::chrono::steady_clock::now() + std::chrono::seconds(s.timeout_s),
                   .remotes = Remotes{connect, {}},
                   .worker_names = {},
                   .endpoint_names = {}};

  const StartedContainers cleanup{run};
  if (run.mist)
    TRY_STATUS(start_mist_workers(run));
  else
    TRY_STATUS(start_job_workers(run, rm));
  if (events)
    events->emit("application", "workers_running", app, repeat, "",
                 {{"workers", run.worker_names}});

  TRY_STATUS(start_container_endpoints(run));
  wait_endpoints_done(run);
  // The workers end after the end markers of their endpoints.
  TRY_STATUS(wait_workers_done(run));
  // Collect: docker logs -t / kubectl logs --timestamps.
  auto wout = TRY(collect_worker_logs(run, out_dir));
  auto eout = TRY(collect_endpoint_logs(run, out_dir));
  return metrics_from_outputs(a, wout, eout);
}

}  // namespace continuum::benchmark

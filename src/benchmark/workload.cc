// SSH workloads ([workload NAME]): a named command run on chosen nodes, with warm-ups, counted
// repeats, a timeout enforced in the guest, and every run's output kept.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <mutex>

#include "continuum/benchmark/benchmark.h"
#include "continuum/util/files.h"
#include "continuum/util/parallel.h"
#include "continuum/util/strings.h"

namespace continuum::benchmark {

namespace {

bool is_identifier(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

// A path component from a node id or workload name: never a '/' or "..".
std::string safe_component(const std::string& s) {
  std::string r;
  for (char c : s)
    r +=
        (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') ? c : '_';
  if (r.empty() || r == "." || r == "..") r = "_" + r;
  return r;
}

}  // namespace

Expected<std::vector<const infra::DeployedNode*>> resolve_nodes(
    const std::vector<std::string>& selectors, const infra::Deployment& d) {
  std::vector<const infra::DeployedNode*> out;
  auto add = [&](const infra::DeployedNode* n) {
    if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
  };
  for (const auto& sel : selectors) {
    bool found = false;
    for (const auto& n : d.nodes) {
      if (sel == "all" || n.tier == sel || n.id == sel || n.name == sel) {
        add(&n);
        found = true;
      }
    }
    if (!found) {
      std::vector<std::string> names{"all", "cloud", "edge", "endpoint"};
      for (const auto& n : d.nodes) names.push_back(n.id);
      std::string hint = util::closest_match(sel, names);
      return make_error(
          fmt::format("no node or tier '{}' in the deployment{} (nodes: {})", sel,
                      hint.empty() ? "" : "; did you mean '" + hint + "'?",
                      util::join(std::vector<std::string>(names.begin() + 4, names.end()), ", ")),
          ExitCode::usage);
    }
  }
  // Deployment order, whatever order the selectors came in.
  std::sort(out.begin(), out.end());
  return out;
}

Expected<std::string> render_workload_command(const config::SshWorkload& w) {
  std::vector<std::string> argv;
  if (w.timeout > 0) {
    // In the guest, so a hung command is killed there; exit 124 means "timed out".
    argv = {"timeout", "--kill-after=5", util::format_number(w.timeout)};
  }
  argv.push_back("env");
  for (const auto& [k, v] : w.env) {
    if (!is_identifier(k))
      return make_error(fmt::format("{}:{}: [workload {}] env: '{}' is not a valid variable name",
                                    w.where.file, w.where.line, w.name, k),
                        ExitCode::usage);
    argv.push_back(k + "=" + v);
  }
  argv.insert(argv.end(), {"/bin/sh", "-c", w.command});
  // exec: the SSH session's process becomes `timeout` (or env), so the session's process group
  // holds everything the command starts. sshd signals that group on Ctrl-C (Remote::set_cancel);
  // without exec, `timeout` would move itself and the command into a group of their own.
  return "exec " + util::shell_join(argv);
}

namespace {

bool is_interrupted(const std::atomic<bool>* interrupted) {
  return interrupted && interrupted->load();
}

// One workload in one repeat, as every node it runs on shares it.
struct WorkloadJob {
  const config::SshWorkload& w;
  int repeat;
  const std::filesystem::path& run_dir;
  const RemoteFactory& connect;
  record::EventLog* events;
  const std::atomic<bool>* interrupted;
  std::string phase;
  std::string command;
  std::chrono::milliseconds exec_timeout;
  std::filesystem::path rel_dir;
  std::mutex mu;  ///< guards runs
  std::vector<WorkloadRun> runs;

  WorkloadJob(const config::SshWorkload& w, int repeat, const std::filesystem::path& run_dir,
              const RemoteFactory& connect, record::EventLog* events,
              const std::atomic<bool>* interrupted, std::string phase, std::string command)
      : w(w),
        repeat(repeat),
        run_dir(run_dir),
        connect(connect),
        events(events),
        interrupted(interrupted),
        phase(std::move(phase)),
        command(std::move(command)),
        exec_timeout(std::chrono::milliseconds(
            static_cast<long long>((w.timeout > 0 ? w.timeout + 15 : 86400) * 1000))),
        rel_dir(std::filesystem::path("benchmark") / "workloads" / safe_component(w.name)) {}
};

// Run i on a node (warm-ups first), with where its output goes; no outcome yet.
WorkloadRun new_run(const WorkloadJob& job, const infra::DeployedNode& node, int i) {
  const auto& w = job.w;
  WorkloadRun r;
  r.workload = w.name;
  r.node = node.id;
  r.repeat = job.repeat;
  r.warmup = i < w.warmup;
  r.index = r.warmup ? i : i - w.warmup;
  // A setup workload runs outside the repeats (repeat -1): "setup-0.out", not "-1-0.out".
  const std::string rep = job.repeat < 0 ? std::string("setup") : std::to_string(job.repeat);
  const std::string stem =
      r.warmup ? fmt::format("{}-warmup{}", rep, r.index) : fmt::format("{}-{}", rep, r.index);
  const auto rel = job.rel_dir / safe_component(node.id);
  r.out_file = (rel / (stem + ".out")).string();
  r.err_file = (rel / (stem + ".err")).string();
  return r;
}

struct Output {
  std::string out, err;
};

// Runs the command once, filling in r's outcome and time; returns what it printed.
Output execute(const WorkloadJob& job, const Expected<util::RemotePtr>& remote, WorkloadRun& r) {
  Output o;
  const auto t0 = std::chrono::steady_clock::now();
  if (!remote.ok()) {
    r.error = remote.error().message;
  } else {
    auto res = (*remote)->exec(job.command, job.exec_timeout);
    if (!res.ok()) {
      r.error = res.error().message;
    } else if (res->cancelled) {
      r.error = "interrupted";
      o.out = std::move(res->out);
      o.err = std::move(res->err);
    } else {
      r.exit_code = res->exit_code;
      r.timed_out = res->timed_out || res->exit_code == 124;
      o.out = std::move(res->out);
      o.err = std::move(res->err);
    }
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return o;
}

void save_output(const WorkloadJob& job, const WorkloadRun& r, Output o) {
  if (!r.error.empty()) o.err += (o.err.empty() ? "" : "\n") + ("continuum: " + r.error + "\n");
  if (auto st = util::write_file_atomic(job.run_dir / r.out_file, o.out); !st.ok())
    spdlog::error("{}", st.error().message);
  if (auto st = util::write_file_atomic(job.run_dir / r.err_file, o.err); !st.ok())
    spdlog::error("{}", st.error().message);
}

void report_run(const WorkloadJob& job, const WorkloadRun& r) {
  const auto& w = job.w;
  if (!r.ok())
    spdlog::warn("workload {} on {} run {}{}: {}", w.name, r.node, r.warmup ? "warm-up " : "",
                 r.index,
                 !r.error.empty() ? r.error
                 : r.timed_out    ? fmt::format("timed out after {} s", w.timeout)
                                  : fmt::format("exit status {}", r.exit_code));
  if (job.events)
    job.events->emit(job.phase, "run", w.name, job.repeat, r.node,
                     {{"index", r.index},
                      {"warmup", r.warmup},
                      {"exit_code", r.exit_code},
                      {"timed_out", r.timed_out},
                      {"seconds", r.seconds}});
}

void run_on_node(WorkloadJob& job, const infra::DeployedNode* node) {
  if (is_interrupted(job.interrupted)) return;
  auto remote = job.connect(*node);
  // Ctrl-C stops the command running in the guest (its process group), not only the loop.
  if (remote.ok()) (*remote)->set_cancel(job.interrupted);
  const int total = job.w.warmup + job.w.repeat;
  for (int i = 0; i < total; ++i) {
    if (is_interrupted(job.interrupted)) break;
    WorkloadRun r = new_run(job, *node, i);
    Output o = execute(job, remote, r);
    save_output(job, r, std::move(o));
    report_run(job, r);
    std::lock_guard lock(job.mu);
    job.runs.push_back(std::move(r));
    if (!remote.ok()) {
      // Without a connection every further run fails the same way: record it once.
      break;
    }
  }
}

// Stable order in results whatever the interleaving of parallel nodes.
void sort_runs(std::vector<WorkloadRun>& runs, const infra::Deployment& d) {
  std::stable_sort(runs.begin(), runs.end(), [&](const WorkloadRun& a, const WorkloadRun& b) {
    auto ia = d.find(a.node), ib = d.find(b.node);
    if (ia != ib) return ia < ib;
    if (a.warmup != b.warmup) return a.warmup;
    return a.index < b.index;
  });
}

}  // namespace

std::vector<WorkloadRun> run_workload(const config::SshWorkload& w, int repeat,
                                      const infra::Deployment& d,
                                      const std::filesystem::path& run_dir,
                                      const RemoteFactory& connect, record::EventLog* events,
                                      const std::atomic<bool>* interrupted) {
  const std::string phase = (w.setup ? "setup:" : "workload:") + w.name;
  auto nodes = resolve_nodes(w.nodes, d);
  auto command = render_workload_command(w);
  if (!nodes.ok() || !command.ok()) {
    WorkloadRun r;
    r.workload = w.name;
    r.repeat = repeat;
    r.error = !nodes.ok() ? nodes.error().message : command.error().message;
    spdlog::error("workload {}: {}", w.name, r.error);
    return {r};
  }
  if (events)
    events->emit(phase, "start", w.name, repeat, "",
                 {{"nodes", w.nodes}, {"parallel", w.parallel}});
  WorkloadJob job(w, repeat, run_dir, connect, events, interrupted, phase, *command);
  util::parallel_for(nodes->size(), w.parallel ? util::kAllAtOnce : 1,
                     [&](size_t i) { run_on_node(job, (*nodes)[i]); });
  auto& runs = job.runs;
  sort_runs(runs, d);
  const auto failed = std::count_if(runs.begin(), runs.end(),
                                    [](const WorkloadRun& r) { return !r.warmup && !r.ok(); });
  if (events)
    events->emit(phase, "end", w.name, repeat, "", {{"runs", runs.size()}, {"failed", failed}});
  return std::move(runs);
}

}  // namespace continuum::benchmark

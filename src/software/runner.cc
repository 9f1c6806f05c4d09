#include "continuum/software/runner.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "continuum/record/events.h"
#include "continuum/util/process.h"
#include "continuum/util/strings.h"

namespace continuum::software {

bool PlaybookResult::ok() const {
  if (!started || timed_out || cancelled || exit_code != 0) return false;
  for (const auto& [host, s] : output.recap)
    if (s.failed > 0 || s.unreachable > 0) return false;
  return true;
}

std::vector<std::string> playbook_argv(const RunnerOptions& opt, const PlaybookRun& run) {
  std::vector<std::string> argv;
  if (!opt.netns.empty()) argv = {"ip", "netns", "exec", opt.netns};
  argv.push_back(opt.program);
  if (!run.extra_vars.empty()) {
    // One JSON document: values reach Ansible verbatim, never split or re-parsed as k=v words.
    nlohmann::json vars = nlohmann::json::object();
    for (const auto& [k, v] : run.extra_vars) vars[k] = v;
    argv.push_back("--extra-vars");
    argv.push_back(vars.dump());
  }
  argv.push_back(run.file.string());
  return argv;
}

Expected<PlaybookResult> run_playbook(const RunnerOptions& opt, const PlaybookRun& run) {
  PlaybookResult res;
  res.name = run.name;
  res.log = opt.software_dir / (run.name + ".log");
  std::error_code ec;
  std::filesystem::create_directories(opt.software_dir, ec);
  std::ofstream log(res.log, std::ios::trunc);
  if (!log) return make_error("cannot write " + res.log.string());

  util::ProcessSpec spec;
  spec.argv = playbook_argv(opt, run);
  spec.env = opt.env;
  spec.env["ANSIBLE_CONFIG"] = opt.ansible_cfg.string();
  spec.env["ANSIBLE_NOCOLOR"] = "1";
  spec.env["ANSIBLE_FORCE_COLOR"] = "0";
  spec.env["PYTHONUNBUFFERED"] = "1";  // lines arrive as tasks finish, not at exit
  spec.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(opt.timeout);
  spec.cancel = opt.cancel;
  log << "# " << util::shell_join(spec.argv) << "\n" << std::flush;

  OutputParser parser;
  std::mutex mu;
  std::string shown_task;
  int shown_hosts = -1;
  spec.on_line = [&](const std::string& line, bool is_stderr) {
    std::lock_guard lock(mu);
    log << (is_stderr ? "[stderr] " : "") << line << '\n';
    log.flush();
    parser.feed(line);
    const std::string& task = parser.current_task();
    if (!task.empty() && task != shown_task) {
      shown_task = task;
      shown_hosts = 0;
      spdlog::info("[{}] {} | {}", run.name, parser.current_play(), task);
    } else if (parser.hosts_done() != shown_hosts && !task.empty()) {
      shown_hosts = parser.hosts_done();
      spdlog::debug("[{}] {} | {}: {} host(s) done", run.name, parser.current_play(), task,
                    shown_hosts);
    }
  };

  auto t0 = std::chrono::steady_clock::now();
  auto pr = util::run_process(spec);
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!pr.ok()) {
    log << "# could not start: " << pr.error().message << "\n";
    return make_error("playbook " + run.name + ": cannot start " + opt.program + ": " +
                      pr.error().message);
  }
  parser.finish();
  res.started = true;
  res.exit_code = pr->exit_code;
  res.timed_out = pr->timed_out;
  res.cancelled = pr->cancelled;
  res.last_task = parser.current_task();
  res.output = parser.result();
  log << "# exit " << res.exit_code
      << (res.timed_out   ? " (timed out)"
          : res.cancelled ? " (interrupted)"
                          : "")
      << " after " << util::format_number(res.seconds) << " s\n";
  return res;
}

std::string describe_failure(const PlaybookResult& r) {
  std::string where = " (log: " + r.log.string() + ")";
  if (!r.started) return "playbook " + r.name + " did not start" + where;
  if (r.cancelled)
    return "playbook " + r.name + " stopped (interrupted) after " +
           util::format_number(std::round(r.seconds)) + " s" +
           (r.last_task.empty() ? "" : " in task '" + r.last_task + "'") + where;
  if (r.timed_out)
    return "playbook " + r.name + " timed out after " + util::format_number(std::round(r.seconds)) +
           " s" + (r.last_task.empty() ? "" : " in task '" + r.last_task + "'") + where;
  std::vector<std::string> lines;
  for (const TaskFailure& f : r.output.failures) {
    // A failure that a rescue block handled leaves failed=0 in the recap: not the cause.
    if (r.output.saw_recap) {
      auto it = r.output.recap.find(f.host);
      if (it != r.output.recap.end() && it->second.failed == 0 && it->second.unreachable == 0)
        continue;
    }
    lines.push_back("playbook " + r.name +
                    (f.unreachable ? ": host " + f.host + " unreachable" : " failed on " + f.host) +
                    " in task '" + f.task + "': " + f.message);
  }
  if (lines.empty())
    for (const std::string& e : r.output.errors) lines.push_back("playbook " + r.name + ": " + e);
  if (lines.empty())
    lines.push_back("playbook " + r.name + " exited with status " + std::to_string(r.exit_code));
  lines.back() += where;
  return util::join(lines, "\n");
}

namespace {

// Step name -> position in runs; errors on a name used twice or an unknown `after`.
Expected<std::map<std::string, size_t>> index_steps(const std::vector<PlaybookRun>& runs) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < runs.size(); ++i)
    if (!index.emplace(runs[i].name, i).second)
      return make_error("software: playbook step '" + runs[i].name + "' appears twice",
                        ExitCode::usage);
  for (const auto& r : runs)
    for (const auto& a : r.after)
      if (!index.count(a))
        return make_error("software: step '" + r.name + "' runs after unknown step '" + a + "'",
                          ExitCode::usage);
  return index;
}

Status check_no_cycle(const std::vector<PlaybookRun>& runs) {
  std::vector<int> indeg(runs.size());
  for (size_t i = 0; i < runs.size(); ++i) indeg[i] = static_cast<int>(runs[i].after.size());
  std::vector<size_t> ready;
  for (size_t i = 0; i < runs.size(); ++i)
    if (indeg[i] == 0) ready.push_back(i);
  size_t seen = 0;
  while (!ready.empty()) {
    size_t i = ready.back();
    ready.pop_back();
    ++seen;
    for (size_t j = 0; j < runs.size(); ++j)
      for (const auto& a : runs[j].after)
        if (a == runs[i].name && --indeg[j] == 0) ready.push_back(j);
  }
  if (seen != runs.size())
    return make_error("software: playbook steps depend on each other in a cycle", ExitCode::usage);
  return {};
}

enum class State { pending, running, ok, failed };

// Not util::parallel_for: a playbook starts when the ones it runs after have succeeded, so this
// is a dependency scheduler (a thread per started playbook, a condition variable between them).
struct Scheduler {
  const RunnerOptions& opt;
  const std::vector<PlaybookRun>& runs;
  const std::map<std::string, size_t>& index;
  record::EventLog* events;
  const int max_parallel;
  std::mutex mu;  ///< guards everything below
  std::condition_variable cv;
  std::vector<State> state;
  std::vector<PlaybookResult> results;
  std::vector<std::string> errors;
  int running = 0;
  std::vector<std::thread> threads;

  Scheduler(const RunnerOptions& opt, const std::vector<PlaybookRun>& runs,
            const std::map<std::string, size_t>& index, record::EventLog* events)
      : opt(opt),
        runs(runs),
        index(index),
        events(events),
        max_parallel(std::max(1, opt.max_parallel)),
        state(runs.size(), State::pending) {}
  bool cancelled() const { return opt.cancel && opt.cancel->load(); }
};

// Called with s.mu held, from the thread that ran playbook i.
void record_result(Scheduler& s, size_t i, Expected<PlaybookResult> r) {
  if (!r.ok()) {
    s.errors.push_back(r.error().message);
    s.state[i] = State::failed;
    return;
  }
  PlaybookResult& res = *r;
  s.state[i] = res.ok() ? State::ok : State::failed;
  spdlog::info("software: playbook {} {} in {} s", res.name,
               res.ok()        ? "done"
               : res.cancelled ? "stopped (interrupted)"
                               : "FAILED",
               util::format_number(std::round(res.seconds * 10) / 10));
  for (const auto& [host, st] : res.output.recap)
    spdlog::debug("[{}] {}: ok={} changed={} unreachable={} failed={} skipped={}", res.name, host,
                  st.ok, st.changed, st.unreachable, st.failed, st.skipped);
  if (!res.ok()) s.errors.push_back(describe_failure(res));
  if (s.events)
    s.events->emit("playbook:" + res.name, "end", "", -1, "",
                   {{"playbook", res.name},
                    {"seconds", res.seconds},
                    {"ok", res.ok()},
                    {"exit_code", res.exit_code}});
  s.results.push_back(std::move(res));
}

// Called with s.mu held.
void start_playbook(Scheduler& s, size_t i) {
  s.state[i] = State::running;
  ++s.running;
  spdlog::info("software: starting playbook {} ({})", s.runs[i].name, s.runs[i].file.string());
  if (s.events)
    s.events->emit("playbook:" + s.runs[i].name, "start", "", -1, "",
                   {{"playbook", s.runs[i].name}});
  s.threads.emplace_back([&s, i] {
    auto r = run_playbook(s.opt, s.runs[i]);
    std::lock_guard g(s.mu);
    record_result(s, i, std::move(r));
    --s.running;
    s.cv.notify_all();
  });
}

// Called with s.mu held; true if it started any playbook.
bool start_ready(Scheduler& s) {
  bool started = false;
  for (size_t i = 0; i < s.runs.size() && s.running < s.max_parallel; ++i) {
    if (s.state[i] != State::pending) continue;
    bool deps_ok =
        std::all_of(s.runs[i].after.begin(), s.runs[i].after.end(),
                    [&](const std::string& a) { return s.state[s.index.at(a)] == State::ok; });
    if (!deps_ok) continue;
    start_playbook(s, i);
    started = true;
  }
  return started;
}

// Returns once every started playbook has finished and no more will start.
void schedule(Scheduler& s) {
  std::unique_lock lock(s.mu);
  for (;;) {
    bool failed =
        std::any_of(s.state.begin(), s.state.end(), [](State st) { return st == State::failed; });
    bool started = false;
    if (!failed && !s.cancelled()) started = start_ready(s);
    if (s.running == 0 && !started) break;
    s.cv.wait(lock);
  }
  lock.unlock();
  for (auto& t : s.threads) t.join();
}

Expected<std::vector<PlaybookResult>> outcome(Scheduler& s) {
  std::vector<std::string> not_run;
  for (size_t i = 0; i < s.runs.size(); ++i)
    if (s.state[i] == State::pending) not_run.push_back(s.runs[i].name);
  if (s.cancelled()) {
    std::string msg = "interrupted";
    if (!s.errors.empty()) msg += ":\n" + util::join(s.errors, "\n");
    if (!not_run.empty()) msg += "\nnot started: " + util::join(not_run, ", ");
    return make_error(msg, ExitCode::interrupted);
  }
  for (const auto& name : not_run)
    spdlog::warn("software: playbook {} not run because an earlier one failed", name);
  if (!s.errors.empty()) return make_error(util::join(s.errors, "\n"));
  return std::move(s.results);
}

}  // namespace

Expected<std::vector<PlaybookResult>> run_all(const RunnerOptions& opt,
                                              const std::vector<PlaybookRun>& runs,
                                              record::EventLog* events) {
  // Validate the graph before anything runs: unique names, known dependencies, no cycle.
  const auto index = TRY(index_steps(runs));
  TRY_STATUS(check_no_cycle(runs));
  Scheduler s(opt, runs, index, events);
  schedule(s);
  return outcome(s);
}

}  // namespace continuum::software

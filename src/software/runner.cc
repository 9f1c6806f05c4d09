#include "continuum/software/runner.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "continuum/record/events.h"
#include "continuum/util/files.h"
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

namespace {

util::ProcessSpec playbook_spec(const RunnerOptions& opt, const PlaybookRun& run, size_t steps) {
  util::ProcessSpec spec;
  spec.argv = playbook_argv(opt, run);
  spec.env = opt.env;
  spec.env["ANSIBLE_CONFIG"] = opt.ansible_cfg.string();
  spec.env["ANSIBLE_NOCOLOR"] = "1";
  spec.env["ANSIBLE_FORCE_COLOR"] = "0";
  spec.env["PYTHONUNBUFFERED"] = "1";  // lines arrive as tasks finish, not at exit
  spec.timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(opt.timeout * static_cast<int>(steps));
  spec.cancel = opt.cancel;
  return spec;
}

/// Streams one step's lines to its log and its progress line.
struct StepOutput {
  std::string name;
  std::ofstream log;
  OutputParser parser;
  std::string shown_task;
  int shown_hosts = -1;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();

  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  /// The log's last line: the process's end, as the runner saw it.
  void note_exit(const PlaybookResult& r, bool stopped) {
    log << "# exit " << r.exit_code
        << (r.timed_out   ? " (timed out)"
            : r.cancelled ? " (interrupted)"
            : stopped     ? " (stopped after the failure above)"
                          : "")
        << " after " << util::format_number(r.seconds) << " s\n";
  }

  void feed(const std::string& line, bool is_stderr) {
    // Seconds since the step started before each play and task: where a slow step's time went,
    // without a profiling callback (Debian's ansible-core has none).
    if (!is_stderr && (util::starts_with(line, "TASK [") || util::starts_with(line, "PLAY ")))
      log << "# at " << util::format_fixed(seconds(), 2) << " s\n";
    log << (is_stderr ? "[stderr] " : "") << line << '\n';
    log.flush();
    parser.feed(line);
    const std::string& task = parser.current_task();
    if (!task.empty() && task != shown_task) {
      shown_task = task;
      shown_hosts = 0;
      spdlog::info("[{}] {} | {}", name, parser.current_play(), task);
    } else if (parser.hosts_done() != shown_hosts && !task.empty()) {
      shown_hosts = parser.hosts_done();
      spdlog::debug("[{}] {} | {}: {} host(s) done", name, parser.current_play(), task,
                    shown_hosts);
    }
  }
};

}  // namespace

Expected<PlaybookResult> run_playbook(const RunnerOptions& opt, const PlaybookRun& run) {
  PlaybookResult res;
  res.name = run.name;
  res.log = opt.software_dir / (run.name + ".log");
  std::error_code ec;
  std::filesystem::create_directories(opt.software_dir, ec);
  std::ofstream log(res.log, std::ios::trunc);
  if (!log) return make_error("cannot write " + res.log.string());

  util::ProcessSpec spec = playbook_spec(opt, run, 1);
  log << "# " << util::shell_join(spec.argv) << "\n" << std::flush;

  StepOutput step;
  step.name = run.name;
  step.log = std::move(log);
  std::mutex mu;
  spec.on_line = [&](const std::string& line, bool is_stderr) {
    std::lock_guard lock(mu);
    step.feed(line, is_stderr);
  };

  step.start = std::chrono::steady_clock::now();
  auto pr = util::run_process(spec);
  res.seconds = step.seconds();
  if (!pr.ok()) {
    step.log << "# could not start: " << pr.error().message << "\n";
    return make_error("playbook " + run.name + ": cannot start " + opt.program + ": " +
                      pr.error().message);
  }
  step.parser.finish();
  res.started = true;
  res.exit_code = pr->exit_code;
  res.timed_out = pr->timed_out;
  res.cancelled = pr->cancelled;
  res.last_task = step.parser.current_task();
  res.output = step.parser.result();
  step.note_exit(res, pr->stopped);
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

void announce_start(const PlaybookRun& run, record::EventLog* events) {
  spdlog::info("software: starting playbook {} ({})", run.name, run.file.string());
  if (events) events->emit("playbook:" + run.name, "start", "", -1, "", {{"playbook", run.name}});
}

void announce_end(const PlaybookResult& res, record::EventLog* events) {
  spdlog::info("software: playbook {} {} in {} s", res.name,
               res.ok()        ? "done"
               : res.cancelled ? "stopped (interrupted)"
                               : "FAILED",
               util::format_number(std::round(res.seconds * 10) / 10));
  for (const auto& [host, st] : res.output.recap)
    spdlog::debug("[{}] {}: ok={} changed={} unreachable={} failed={} skipped={}", res.name, host,
                  st.ok, st.changed, st.unreachable, st.failed, st.skipped);
  if (events)
    events->emit("playbook:" + res.name, "end", "", -1, "",
                 {{"playbook", res.name},
                  {"seconds", res.seconds},
                  {"ok", res.ok()},
                  {"exit_code", res.exit_code},
                  {"merged", res.merged}});
}

// Called with s.mu held, from the thread that ran playbook i.
void record_result(Scheduler& s, size_t i, Expected<PlaybookResult> r) {
  if (!r.ok()) {
    s.errors.push_back(r.error().message);
    s.state[i] = State::failed;
    return;
  }
  PlaybookResult& res = *r;
  s.state[i] = res.ok() ? State::ok : State::failed;
  announce_end(res, s.events);
  if (!res.ok()) s.errors.push_back(describe_failure(res));
  s.results.push_back(std::move(res));
}

// Called with s.mu held.
void start_playbook(Scheduler& s, size_t i) {
  s.state[i] = State::running;
  ++s.running;
  announce_start(s.runs[i], s.events);
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

// What run_all returns, scheduled or merged: on Ctrl-C an Error (130) naming what was stopped and
// what never started; otherwise the failures (1), or every result.
Expected<std::vector<PlaybookResult>> conclude(const RunnerOptions& opt,
                                               const std::vector<std::string>& errors,
                                               const std::vector<std::string>& not_run,
                                               std::vector<PlaybookResult> results) {
  if (opt.cancel && opt.cancel->load()) {
    std::string msg = "interrupted";
    if (!errors.empty()) msg += ":\n" + util::join(errors, "\n");
    if (!not_run.empty()) msg += "\nnot started: " + util::join(not_run, ", ");
    return make_error(msg, ExitCode::interrupted);
  }
  for (const auto& name : not_run)
    spdlog::warn("software: playbook {} not run because an earlier one failed", name);
  if (!errors.empty()) return make_error(util::join(errors, "\n"));
  return results;
}

Expected<std::vector<PlaybookResult>> outcome(Scheduler& s) {
  std::vector<std::string> not_run;
  for (size_t i = 0; i < s.runs.size(); ++i)
    if (s.state[i] == State::pending) not_run.push_back(s.runs[i].name);
  return conclude(s.opt, s.errors, not_run, std::move(s.results));
}

}  // namespace

std::string merge_marker(const std::string& name) { return "continuum playbook: " + name; }

namespace {

// Steps in dependency order; among the ready ones, the declared order.
std::vector<size_t> dependency_order(const std::vector<PlaybookRun>& runs) {
  std::vector<size_t> order;
  std::set<std::string> placed;
  std::vector<bool> done(runs.size());
  while (order.size() < runs.size()) {
    for (size_t i = 0; i < runs.size(); ++i) {
      if (done[i]) continue;
      if (!std::all_of(runs[i].after.begin(), runs[i].after.end(),
                       [&](const std::string& a) { return placed.count(a) > 0; }))
        continue;
      done[i] = true;
      order.push_back(i);
      placed.insert(runs[i].name);
      break;  // rescan from the first: declared order among the ready ones
    }
  }
  return order;
}

bool has_rescue(const std::filesystem::path& file) {
  auto text = util::read_file(file);
  return !text.ok() || text->find("rescue:") != std::string::npos;
}

// Consecutive steps of `order` that share one process: a step with a rescue block runs alone,
// and extra vars that two steps set differently start a new process.
std::vector<std::vector<size_t>> merge_groups(const std::vector<PlaybookRun>& runs,
                                              const std::vector<size_t>& order) {
  std::vector<std::vector<size_t>> groups;
  std::map<std::string, std::string> vars;
  bool last_alone = false;
  for (size_t i : order) {
    const bool alone = has_rescue(runs[i].file);
    bool conflict = false;
    for (const auto& [k, v] : runs[i].extra_vars)
      if (auto it = vars.find(k); it != vars.end() && it->second != v) conflict = true;
    if (groups.empty() || alone || last_alone || conflict) {
      groups.emplace_back();
      vars.clear();
    }
    groups.back().push_back(i);
    for (const auto& [k, v] : runs[i].extra_vars) vars[k] = v;
    last_alone = alone;
  }
  return groups;
}

// "PLAY [continuum playbook: NAME] ****" -> NAME.
std::optional<std::string> marker_step(const std::string& line) {
  const std::string head = "PLAY [" + merge_marker("");
  if (!util::starts_with(line, head)) return std::nullopt;
  const size_t close = line.rfind(']');
  if (close == std::string::npos || close < head.size()) return std::nullopt;
  return line.substr(head.size(), close - head.size());
}

struct GroupOutcome {
  std::vector<PlaybookResult> results;  ///< the steps that started, in order
  std::vector<std::string> not_run;     ///< the steps after a failure
  std::optional<Error> error;           ///< could not write or start
};

// One ansible-playbook process for the steps `group` (indices into runs), in that order.
GroupOutcome run_group(const RunnerOptions& opt, const std::vector<PlaybookRun>& runs,
                       const std::vector<size_t>& group, const std::string& file_name,
                       record::EventLog* events) {
  GroupOutcome out;
  // The playbook that imports the steps, each after its marker play (no hosts' work: a play
  // without tasks only prints its name). JSON is YAML: paths and names need no quoting rules.
  nlohmann::json plays = nlohmann::json::array();
  PlaybookRun whole;
  whole.name = file_name;
  whole.file = opt.software_dir / file_name;
  for (size_t i : group) {
    plays.push_back({{"name", merge_marker(runs[i].name)},
                     {"hosts", "all"},
                     {"gather_facts", false},
                     {"tasks", nlohmann::json::array()}});
    plays.push_back({{"import_playbook", std::filesystem::absolute(runs[i].file).string()}});
    for (const auto& [k, v] : runs[i].extra_vars) whole.extra_vars[k] = v;
  }
  if (auto st = util::write_file_atomic(whole.file, plays.dump(2) + "\n"); !st) {
    out.error = st.error();
    return out;
  }

  std::atomic<bool> stop{false};
  util::ProcessSpec spec = playbook_spec(opt, whole, group.size());
  spec.stop = &stop;
  std::mutex mu;   // guards everything below (on_line runs on the reader thread)
  size_t cur = 0;  // position in `group` of the step whose output arrives
  std::vector<StepOutput> steps(group.size());
  std::vector<PlaybookResult> res(group.size());
  auto open_step = [&](size_t k) {
    const PlaybookRun& run = runs[group[k]];
    res[k].name = run.name;
    res[k].merged = true;
    res[k].started = true;
    res[k].log = opt.software_dir / (run.name + ".log");
    steps[k].name = run.name;
    steps[k].log.open(res[k].log, std::ios::trunc);
    steps[k].start = std::chrono::steady_clock::now();
    steps[k].log << "# part of: " << util::shell_join(spec.argv) << "\n" << std::flush;
    announce_start(run, events);
  };
  auto close_step = [&](size_t k) {
    res[k].seconds = steps[k].seconds();
    steps[k].parser.finish();
    res[k].last_task = steps[k].parser.current_task();
    res[k].output = steps[k].parser.result();
  };
  // The first step's time includes ansible-playbook's start.
  open_step(0);
  spec.on_line = [&](const std::string& line, bool is_stderr) {
    std::lock_guard lock(mu);
    if (auto name = marker_step(line); name && !stop) {
      size_t k = cur;
      while (k < group.size() && runs[group[k]].name != *name) ++k;
      if (k < group.size() && k != cur) {
        if (!steps[cur].parser.result().failures.empty()) {
          // A task failed (no rescue blocks here): as without merging, nothing new starts.
          stop = true;
        } else {
          close_step(cur);
          res[cur].exit_code = 0;
          steps[cur].log << "# done after " << util::format_number(res[cur].seconds) << " s\n";
          announce_end(res[cur], events);
          out.results.push_back(res[cur]);
          cur = k;
          open_step(cur);
        }
      }
    }
    steps[cur].feed(line, is_stderr);
  };
  auto pr = util::run_process(spec);
  std::lock_guard lock(mu);
  if (!pr.ok()) {
    steps[cur].log << "# could not start: " << pr.error().message << "\n";
    out.error = make_error("playbook " + runs[group[cur]].name + ": cannot start " + opt.program +
                           ": " + pr.error().message);
    return out;
  }
  close_step(cur);
  res[cur].exit_code = pr->exit_code;
  res[cur].timed_out = pr->timed_out;
  res[cur].cancelled = pr->cancelled;
  // The step whose output came last carries the process's end: also a failure that no step's
  // output shows (a later step's syntax error is reported before any play runs).
  steps[cur].note_exit(res[cur], pr->stopped);
  announce_end(res[cur], events);
  out.results.push_back(res[cur]);
  for (size_t k = cur + 1; k < group.size(); ++k) out.not_run.push_back(runs[group[k]].name);
  return out;
}

// The merged runs, one process after another.
Expected<std::vector<PlaybookResult>> run_groups(const RunnerOptions& opt,
                                                 const std::vector<PlaybookRun>& runs,
                                                 const std::vector<std::vector<size_t>>& groups,
                                                 record::EventLog* events) {
  std::vector<PlaybookResult> results;
  std::vector<std::string> errors, not_run;
  for (size_t g = 0; g < groups.size(); ++g) {
    if (!errors.empty() || (opt.cancel && opt.cancel->load())) {
      for (size_t i : groups[g]) not_run.push_back(runs[i].name);
      continue;
    }
    const std::string file =
        groups.size() == 1 ? "playbooks.yml" : "playbooks-" + std::to_string(g + 1) + ".yml";
    GroupOutcome o = run_group(opt, runs, groups[g], file, events);
    if (o.error) errors.push_back(o.error->message);
    for (auto& r : o.results) {
      if (!r.ok()) errors.push_back(describe_failure(r));
      results.push_back(std::move(r));
    }
    not_run.insert(not_run.end(), o.not_run.begin(), o.not_run.end());
  }
  return conclude(opt, errors, not_run, std::move(results));
}

}  // namespace

Expected<std::vector<PlaybookResult>> run_all(const RunnerOptions& opt,
                                              const std::vector<PlaybookRun>& runs,
                                              record::EventLog* events) {
  // Validate the graph before anything runs: unique names, known dependencies, no cycle.
  const auto index = TRY(index_steps(runs));
  TRY_STATUS(check_no_cycle(runs));
  if (opt.merge) {
    const auto groups = merge_groups(runs, dependency_order(runs));
    // Nothing merged: the scheduler keeps independent steps side by side.
    if (groups.size() < runs.size()) return run_groups(opt, runs, groups, events);
  }
  Scheduler s(opt, runs, index, events);
  schedule(s);
  return outcome(s);
}

}  // namespace continuum::software

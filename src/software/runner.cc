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

#include "continuum/report/events.h"
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

Expected<std::vector<PlaybookResult>> run_all(const RunnerOptions& opt,
                                              const std::vector<PlaybookRun>& runs,
                                              report::EventLog* events) {
  // Validate the graph before anything runs: unique names, known dependencies, no cycle.
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < runs.size(); ++i)
    if (!index.emplace(runs[i].name, i).second)
      return make_error("software: playbook step '" + runs[i].name + "' appears twice", 2);
  for (const auto& r : runs)
    for (const auto& a : r.after)
      if (!index.count(a))
        return make_error("software: step '" + r.name + "' runs after unknown step '" + a + "'", 2);
  {
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
      return make_error("software: playbook steps depend on each other in a cycle", 2);
  }

  enum class State { pending, running, ok, failed };
  std::vector<State> state(runs.size(), State::pending);
  std::vector<PlaybookResult> results;
  std::vector<std::string> errors;
  std::mutex mu;
  std::condition_variable cv;
  int running = 0;
  std::vector<std::thread> threads;
  const int max_parallel = std::max(1, opt.max_parallel);

  auto cancelled = [&] { return opt.cancel && opt.cancel->load(); };
  std::unique_lock lock(mu);
  for (;;) {
    bool failed =
        std::any_of(state.begin(), state.end(), [](State s) { return s == State::failed; });
    bool started = false;
    if (!failed && !cancelled()) {
      for (size_t i = 0; i < runs.size() && running < max_parallel; ++i) {
        if (state[i] != State::pending) continue;
        bool deps_ok =
            std::all_of(runs[i].after.begin(), runs[i].after.end(),
                        [&](const std::string& a) { return state[index[a]] == State::ok; });
        if (!deps_ok) continue;
        state[i] = State::running;
        ++running;
        started = true;
        spdlog::info("software: starting playbook {} ({})", runs[i].name, runs[i].file.string());
        if (events)
          events->emit("software", "playbook_start", "", -1, "", {{"playbook", runs[i].name}});
        threads.emplace_back([&, i] {
          auto r = run_playbook(opt, runs[i]);
          std::lock_guard g(mu);
          if (!r.ok()) {
            errors.push_back(r.error().message);
            state[i] = State::failed;
          } else {
            PlaybookResult& res = *r;
            state[i] = res.ok() ? State::ok : State::failed;
            spdlog::info("software: playbook {} {} in {} s", res.name,
                         res.ok()        ? "done"
                         : res.cancelled ? "stopped (interrupted)"
                                         : "FAILED",
                         util::format_number(std::round(res.seconds * 10) / 10));
            for (const auto& [host, s] : res.output.recap)
              spdlog::debug("[{}] {}: ok={} changed={} unreachable={} failed={} skipped={}",
                            res.name, host, s.ok, s.changed, s.unreachable, s.failed, s.skipped);
            if (!res.ok()) errors.push_back(describe_failure(res));
            if (events)
              events->emit("software", "playbook_end", "", -1, "",
                           {{"playbook", res.name},
                            {"seconds", res.seconds},
                            {"ok", res.ok()},
                            {"exit_code", res.exit_code}});
            results.push_back(std::move(res));
          }
          --running;
          cv.notify_all();
        });
      }
    }
    if (running == 0 && !started) break;
    cv.wait(lock);
  }
  lock.unlock();
  for (auto& t : threads) t.join();

  std::vector<std::string> not_run;
  for (size_t i = 0; i < runs.size(); ++i)
    if (state[i] == State::pending) not_run.push_back(runs[i].name);
  if (cancelled()) {
    std::string msg = "interrupted";
    if (!errors.empty()) msg += ":\n" + util::join(errors, "\n");
    if (!not_run.empty()) msg += "\nnot started: " + util::join(not_run, ", ");
    return make_error(msg, 130);
  }
  for (const auto& name : not_run)
    spdlog::warn("software: playbook {} not run because an earlier one failed", name);
  if (!errors.empty()) return make_error(util::join(errors, "\n"), 1);
  return results;
}

}  // namespace continuum::software

#pragma once
// Runs real ansible-playbook processes (docs/design.md §6): no shell, output streamed to
// <run>/software/<name>.log and to a progress line, a timeout per playbook, the result parsed
// into per-host counters and failures. By default the steps run in one ansible-playbook process
// (a generated playbook that imports each step's playbook after a marker play of its own), one
// after another in dependency order: a process start, inventory parse and SSH ControlMaster per
// step cost 2-3 s each, more than running small playbooks side by side saves. The marker plays
// split the output back into per-step logs, timings, events and failures. Without merging,
// independent playbooks run concurrently, dependent ones after what they depend on.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "continuum/software/ansible_output.h"
#include "continuum/util/expected.h"

namespace continuum::record {
class EventLog;
}

namespace continuum::software {

/// One ansible-playbook invocation.
struct PlaybookRun {
  std::string name;                               ///< unique step name, also the log file name
  std::filesystem::path file;                     ///< the playbook
  std::vector<std::string> after;                 ///< names of steps that must succeed first
  std::map<std::string, std::string> extra_vars;  ///< passed as one JSON -e argument
};

struct RunnerOptions {
  std::filesystem::path software_dir;  ///< <run>/software: logs go here
  std::filesystem::path ansible_cfg;   ///< exported as ANSIBLE_CONFIG
  std::string netns;                   ///< run inside `ip netns exec <netns>` when set
  std::chrono::seconds timeout{3600};  ///< per playbook (config playbook_timeout)
  int max_parallel = 4;                ///< concurrent ansible-playbook processes
  std::string program = "ansible-playbook";
  std::map<std::string, std::string> env;  ///< extra environment
  /// One ansible-playbook process for consecutive steps (see the top of this file). A step whose
  /// playbook has a `rescue:` block runs alone: whether a rescue handled a failure is only known
  /// from the recap, so a merged run could not stop at the right step boundary.
  bool merge = true;
  /// Once true (e.g. util::interrupt_flag() on Ctrl-C): running playbooks are stopped (their
  /// process group gets SIGTERM, SIGKILL 2 s later) and no further playbook starts. nullptr: never.
  const std::atomic<bool>* cancel = nullptr;
};

struct PlaybookResult {
  std::string name;
  /// Ran in one process with other steps (RunnerOptions::merge); then `output.recap` is the
  /// process's recap (all of its steps) on the last step only, and `seconds` of the first step
  /// includes ansible-playbook's start.
  bool merged = false;
  int exit_code = -1;
  bool timed_out = false;
  bool cancelled = false;  ///< stopped through RunnerOptions::cancel
  bool started = false;
  double seconds = 0;
  std::string last_task;  ///< task running when it ended (for timeouts)
  ParsedOutput output;
  std::filesystem::path log;
  /// Exit status 0, no failed or unreachable host in the recap, not timed out or cancelled.
  bool ok() const;
};

/// argv for one run (exposed for tests): [ip netns exec NS] ansible-playbook [-e JSON] FILE.
std::vector<std::string> playbook_argv(const RunnerOptions& opt, const PlaybookRun& run);

/// Runs one playbook to completion. An Error only if it could not be started or the log file
/// could not be written; a failing playbook is a result with ok() == false.
Expected<PlaybookResult> run_playbook(const RunnerOptions& opt, const PlaybookRun& run);

/// "playbook mosquitto failed on cloud0_u in task 'Start mosquitto': <msg> (log: ...)", one
/// line per failure, or the ERROR!/timeout reason.
std::string describe_failure(const PlaybookResult& r);

/// The marker play's name before step `name` in a merged run.
std::string merge_marker(const std::string& name);

/// Runs all steps respecting `after` (unknown names and cycles are errors, exit code 2), at most
/// opt.max_parallel at once. After a failure nothing new starts; running ones finish. Once
/// opt.cancel is set nothing new starts, running ones are stopped, and the Error (exit code 130)
/// names the playbooks stopped and those never started. Emits
/// per playbook phase "playbook:<name>" events "start"/"end" (node "", details playbook, seconds,
/// ok), an interval of its own in the energy attribution, when `events` is set. Returns every
/// result (in completion order), or an Error describing the failures (exit code 1).
Expected<std::vector<PlaybookResult>> run_all(const RunnerOptions& opt,
                                              const std::vector<PlaybookRun>& runs,
                                              record::EventLog* events);

}  // namespace continuum::software

#pragma once
// Reads ansible-playbook's default (human) output line by line. Debian's ansible-core 2.14 ships
// no machine-readable stdout callback (only default, minimal, oneline, junit, tree; json lives in
// the ansible.posix collection, which is not packaged with ansible-core), so the runner parses
// what the default callback prints with callback_result_format=json and nocolor:
//   PLAY [name] ****       TASK [name] ****       ok: [host]      changed: [host] => (item=x)
//   fatal: [host]: FAILED! => {"msg": ...}        fatal: [host]: UNREACHABLE! => {...}
//   failed: [host] (item=x) => {...}              ...ignoring
//   PLAY RECAP ****
//   host : ok=3 changed=1 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0
//   ERROR! <reason>                                (stderr: the playbook could not even start)
// The original judged success by grepping stderr for lines without WARNING; this keeps per-host
// counts and the failing task instead.
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace continuum::software {

/// PLAY RECAP counters of one host.
struct HostStats {
  int ok = 0, changed = 0, unreachable = 0, failed = 0, skipped = 0, rescued = 0, ignored = 0;
  bool operator==(const HostStats&) const = default;
};

/// One failed (not ignored) task result.
struct TaskFailure {
  std::string host;
  std::string play;
  std::string task;
  std::string message;  ///< Ansible's msg, plus stderr/stdout tails of command modules
  bool unreachable = false;
};

struct ParsedOutput {
  std::map<std::string, HostStats> recap;  ///< empty when the run never reached PLAY RECAP
  std::vector<TaskFailure> failures;
  std::vector<std::string> errors;    ///< "ERROR! ..." lines (bad playbook, bad inventory)
  std::vector<std::string> warnings;  ///< "[WARNING]: ..." lines
  bool saw_recap = false;
};

/// Incremental parser: feed() every line (stdout and stderr) as it arrives.
class OutputParser {
 public:
  void feed(std::string_view line);
  /// Call when the output has ended: completes a pending multi-line result.
  void finish();
  const ParsedOutput& result() const { return out_; }
  const std::string& current_play() const { return play_; }
  const std::string& current_task() const { return task_; }
  /// Hosts that reported a result for the current task (each host counted once).
  int hosts_done() const { return static_cast<int>(task_hosts_.size()); }

 private:
  void flush_pending();
  ParsedOutput out_;
  std::string play_, task_;
  std::vector<std::string> task_hosts_;
  bool in_recap_ = false;
  // A failure result whose JSON may continue on the following lines (yaml/indented output).
  std::optional<TaskFailure> pending_;
  std::string pending_json_;
  int pending_lines_ = 0;
};

/// Extracts the human message from a task result: msg (or reason), then the tail of stderr and
/// stdout when a command failed ("non-zero return code" alone says nothing). Falls back to the
/// raw text when it is not JSON.
std::string result_message(std::string_view json_text);

/// Parses one recap line ("host : ok=1 changed=0 ..."); nullopt if it is not one.
std::optional<std::pair<std::string, HostStats>> parse_recap_line(std::string_view line);

}  // namespace continuum::software

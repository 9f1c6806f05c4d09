#pragma once
// Child processes without a shell (posix_spawn): argv is passed as is, so no config value is ever
// interpreted by /bin/sh. Used for ansible-playbook, qemu-img, mmdebstrap, gnuplot, ping.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "continuum/util/expected.h"

namespace continuum::util {

struct ProcessSpec {
  std::vector<std::string> argv;           ///< argv[0] is looked up in PATH
  std::map<std::string, std::string> env;  ///< added to (or overriding) the current environment
  std::filesystem::path cwd;               ///< empty: inherit
  std::optional<std::string> stdin_data;   ///< written to the child's stdin, then closed
  std::chrono::milliseconds timeout{0};    ///< 0: none. On expiry: SIGTERM, 5 s, SIGKILL
  /// When it becomes true (e.g. util::interrupt_flag() on Ctrl-C), the child's process group gets
  /// SIGTERM, SIGKILL after cancel_grace, and the result has cancelled = true. Noticed within
  /// 100 ms; run_process returns once no process of the group runs any more (zombies waiting
  /// for init do not count), at most cancel_grace + 1 s later.
  /// nullptr: never.
  const std::atomic<bool>* cancel = nullptr;
  std::chrono::milliseconds cancel_grace{2000};
  /// As `cancel`, for the caller's own reason (e.g. a failure it saw in the output): the same
  /// SIGTERM and grace, and the result has stopped = true instead of cancelled.
  const std::atomic<bool>* stop = nullptr;
  /// Called with each complete output line as it arrives (stdout and stderr), e.g. to stream
  /// ansible output to a log file and a progress line.
  std::function<void(const std::string& line, bool is_stderr)> on_line;
};

struct ProcessResult {
  int exit_code = -1;  ///< exit status, or 128+signal when killed
  bool timed_out = false;
  std::string out;         ///< whole stdout
  std::string err;         ///< whole stderr
  bool cancelled = false;  ///< stopped because ProcessSpec::cancel became true
  bool stopped = false;    ///< stopped because ProcessSpec::stop became true
};

/// Runs to completion. An Error only when the process could not be started at all.
Expected<ProcessResult> run_process(const ProcessSpec& spec);

/// True if `name` is an executable in PATH (or an executable path).
bool have_program(const std::string& name);

}  // namespace continuum::util

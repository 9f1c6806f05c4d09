#pragma once
// SSH readiness (docs/design.md §5): a VM is ready when an SSH login with the run's key succeeds
// and its host key matches the one pinned in the run's known_hosts. All VMs are polled at once,
// each with its own deadline; a VM that misses it is named in the error together with the tail of
// its serial console log, the first place to look when a guest stays silent.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "continuum/util/expected.h"
#include "continuum/util/remote_pool.h"
#include "continuum/util/ssh.h"

namespace continuum::infra {

struct ReadyTarget {
  std::string name;  ///< VM name, for messages
  util::SshTarget ssh;
  std::filesystem::path console_log;  ///< <run>/infrastructure/<vm>.console.log ("" = none)
  /// Counted from here (usually the moment the domain was started); default: when polling starts.
  std::chrono::steady_clock::time_point started{};
};

struct ReadyOptions {
  std::chrono::seconds timeout{600};             ///< per VM, from its start (boot_timeout)
  std::chrono::milliseconds poll_interval{500};  ///< between attempts to one VM
  /// One attempt. Generous: a TCG guest on a busy host took over 10 s just to send its SSH banner,
  /// and a shorter limit restarts the handshake forever; an absent guest fails fast anyway.
  std::chrono::milliseconds connect_timeout{30000};
  /// The command that proves the login works; its exit status must be 0.
  std::string probe = "true";
  size_t console_tail_lines = 30;
  /// Once true (e.g. util::interrupt_flag() on Ctrl-C) the wait ends within 100 ms, also in the
  /// middle of an attempt's connect, and the VMs not ready by then are reported as such (error
  /// exit code 130). nullptr: never.
  const std::atomic<bool>* cancel = nullptr;
  /// Called from the polling threads when a VM becomes ready (name, seconds since its start).
  std::function<void(const std::string&, double)> on_ready;
  /// When set, each successful login's session is kept here for the later phases.
  util::RemotePool* pool = nullptr;
};

struct ReadyResult {
  std::string name;
  bool ready = false;
  double seconds = 0;  ///< from start to the successful login
  int attempts = 0;
  std::string last_error;  ///< the last failed attempt (when not ready)
};

/// Polls every target concurrently until each is ready or past its deadline. Returns one result per
/// target, in order, when all are ready; otherwise an Error that names each VM that was not ready,
/// its last SSH error, and the tail of its console log; when cancelled, an Error (exit code 130)
/// naming the VMs that were not ready yet.
Expected<std::vector<ReadyResult>> wait_ready(const std::vector<ReadyTarget>& targets,
                                              const ReadyOptions& options);

/// The last `lines` lines of a file ("" when it does not exist).
std::string tail_lines(const std::filesystem::path& file, size_t lines);

}  // namespace continuum::infra

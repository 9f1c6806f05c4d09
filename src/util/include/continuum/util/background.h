#pragma once
// A daemon that continuum owns for part of a run (the container image registry): started without
// a shell, its stdout and stderr in a log file, and stopped by PID. It is this process's child, so
// its PID cannot be reused by another process while the handle holds it (it stays a zombie until
// reaped here), and stop() ends exactly what start() began.
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "continuum/util/expected.h"
#include "continuum/util/process.h"

namespace continuum::util {

class Background {
 public:
  /// Starts spec.argv (PATH lookup, spec.env added to the environment, spec.cwd) with stdin from
  /// /dev/null and stdout + stderr appended to `log`. Its own process group, so that a Ctrl-C in
  /// the terminal reaches continuum, which then stops it in order.
  static Expected<std::unique_ptr<Background>> start(const ProcessSpec& spec,
                                                     const std::filesystem::path& log);
  ~Background();  ///< stop()
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

  pid_t pid() const { return pid_; }
  /// True while the process has not exited.
  bool running();
  /// The exit status (128 + signal when killed) once it has exited.
  std::optional<int> exit_status();
  /// SIGTERM, then SIGKILL after `grace`; returns once it has exited. Idempotent.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds(5));

 private:
  explicit Background(pid_t pid) : pid_(pid) {}
  bool reap(bool block);
  pid_t pid_ = -1;
  std::optional<int> status_;
};

/// A process as the ledger records it: PID plus its start time in clock ticks since boot
/// (/proc/PID/stat field 22), so that a PID reused by another program is never mistaken for it.
struct ProcessIdentity {
  pid_t pid = -1;
  unsigned long long start_ticks = 0;
  /// "PID:START" (the ledger's resource name for a process).
  std::string str() const;
  static std::optional<ProcessIdentity> parse(const std::string& s);
};

/// The identity of a live (not zombie) process; nullopt if there is none with that PID.
std::optional<ProcessIdentity> process_identity(pid_t pid);

/// Ends the process if it is still the one `id` names (SIGTERM, SIGKILL after `grace`). Returns
/// true once it is gone, or was already gone or replaced; false if it could not be ended (e.g.
/// EPERM).
bool stop_process(const ProcessIdentity& id,
                  std::chrono::milliseconds grace = std::chrono::seconds(5));

}  // namespace continuum::util

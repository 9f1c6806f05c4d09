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

}  // namespace continuum::util

#pragma once
// A live run is never touched by another (docs/run.md, "One live run per user and hypervisor").
//
// VM and network names are per user (cloud0_<user>, continuum-<user>), as in the original, so two
// runs of one user on one libvirtd always collide. A run therefore holds, for its whole life:
//  - the (user, hypervisor) lock: an exclusive flock(2) on
//    <lock dir>/<user>@<uri>-<hash>.lock, taken before the run directory is created; a second run
//    that cannot take it refuses at once, naming the live run's directory, PID and start time;
//  - <run dir>/run.lock, taken right after the directory is made. Whoever wants to remove a run's
//    resources (`continuum destroy`, a later run's leftover removal) must take it first: a run
//    whose run.lock is held is live and is not touched.
// Both files hold the owner as JSON (pid, started, run_dir, user, uri). The kernel drops a flock
// when its holder exits, however it exits (crash, SIGKILL), so a lock never outlives its run and
// no stale-lock clean-up is needed. test:/// URIs need no lock: the test driver's state is private
// to each process.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "continuum/plan/plan.h"
#include "continuum/util/expected.h"

namespace continuum::infra {

/// Who holds a lock, as its holder wrote it into the file.
struct LockOwner {
  long pid = 0;
  std::string started;  ///< UTC, ISO 8601
  std::string run_dir;  ///< "" until the run directory exists
  std::string user;     ///< the plan's user (suffix of the VM names)
  std::string uri;      ///< the hypervisor (hypervisor locks); "" in run.lock
};

/// JSON text of an owner, and back (fields missing in `text` stay empty/0).
std::string format_owner(const LockOwner& owner);
LockOwner parse_owner(const std::string& text);

struct LockAttempt;
Expected<LockAttempt> try_lock(const std::filesystem::path& file);

/// An exclusive flock(2) on one file, held until this object is destroyed or the process ends.
/// The descriptor is close-on-exec: programs the run starts (ansible-playbook, ssh) do not keep
/// the lock alive after continuum has ended.
class FileLock {
 public:
  FileLock(FileLock&& o) noexcept;
  FileLock& operator=(FileLock&& o) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

  const std::filesystem::path& path() const { return path_; }
  /// Replaces the file's content with the owner description others read when they are refused.
  Status write_owner(const LockOwner& owner);

 private:
  friend Expected<LockAttempt> try_lock(const std::filesystem::path& file);
  FileLock(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::filesystem::path path_;
};

/// What try_lock found: `lock` when it was free; otherwise `owner`, the live holder.
struct LockAttempt {
  std::optional<FileLock> lock;
  LockOwner owner;
};

/// Takes the exclusive lock on `file` without waiting; creates the file (0644) and its directory
/// when missing.
Expected<LockAttempt> try_lock(const std::filesystem::path& file);

/// Per-user hypervisor locks: $XDG_STATE_HOME/continuum/locks, by default
/// ~/.local/state/continuum/locks.
std::filesystem::path default_lock_dir();

/// False for test:/// URIs (private to each process); true for every other libvirt URI.
bool uri_needs_lock(const std::string& uri);

/// The lock file of (user, uri) in `dir`: readable name plus a hash of the exact URI.
std::filesystem::path hypervisor_lock_file(const std::filesystem::path& dir,
                                           const std::string& user, const std::string& uri);

/// The name of a run directory's own lock file.
inline constexpr const char* kRunLockName = "run.lock";

/// Takes <run_dir>/run.lock without waiting (see LockAttempt).
Expected<LockAttempt> try_lock_run_dir(const std::filesystem::path& run_dir);

/// One line naming a live owner: "run directory D, PID N, started T".
std::string describe_owner(const LockOwner& owner);

/// The locks of one run, held for its whole life.
class RunLock {
 public:
  /// Takes the (plan.user, uri) lock of every hypervisor of the plan that needs one, before
  /// anything is created. When one is held, releases what it took and fails with exit code 1,
  /// naming the live run (directory, PID, start time), the hypervisor and what to do.
  static Expected<RunLock> acquire(const plan::Plan& plan, const std::filesystem::path& lock_dir);

  /// Takes <run_dir>/run.lock and records run_dir in every lock file, so that a refused run names
  /// it. Called right after the run directory was created.
  Status attach_run_dir(const std::filesystem::path& run_dir);

 private:
  LockOwner owner_;
  std::vector<FileLock> locks_;  ///< hypervisor locks (uris_[i] each), then run.lock
  std::vector<std::string> uris_;
};

}  // namespace continuum::infra

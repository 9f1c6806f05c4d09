#pragma once
// The status race of resource_manager = none (benchmark::direct_status_command): the status
// command looks for `rc`, then asks `kill -0 <pid>`; a program that writes rc and exits between the
// two looks must still read as its exit status, never as "gone".
//
// The race is forced, not waited for: a stand-in for `cat` earlier in PATH intercepts the
// status command's `cat pid` (which runs after the rc check and before kill -0), lets the program
// finish (it writes rc and exits), waits until the wrapper process no longer exists, and only then
// prints the pid. So every iteration ends the program exactly at the racy moment.
//
// The wrapper is orphaned by design (setsid nohup ... &), and an orphan lingers as a zombie until
// its new parent reaps it (kill -0 succeeds on a zombie); this machine's init reaps seconds late.
// The test process therefore becomes a child subreaper and reaps each wrapper itself, by PID.
#include <sys/prctl.h>
#include <sys/wait.h>

#include <filesystem>
#include <string>
#include <thread>

#include "continuum/util/files.h"

namespace status_race {

/// Makes this process the reaper of orphans below it (the launched wrappers, also those started
/// by an sshd that this process started).
inline bool become_subreaper() { return ::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0; }

/// Writes the stand-in `cat` into dir/bin and returns that directory (to put first in PATH).
inline std::filesystem::path make_racing_cat(const std::filesystem::path& dir) {
  auto bin = dir / "bin";
  (void)continuum::util::write_file_atomic(
      bin / "cat",
      "#!/bin/sh\n"
      "# In the status command, `cat pid` runs after the rc check and before kill -0: end the\n"
      "# program right there (it writes rc and exits), wait until its wrapper is gone, then "
      "answer.\n"
      "if [ \"$1\" = pid ]; then\n"
      "  p=$(/bin/cat pid)\n"
      "  : > go\n"
      "  while kill -0 \"$p\" 2>/dev/null; do :; done\n"
      "fi\n"
      "exec /bin/cat \"$@\"\n",
      std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
          std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
          std::filesystem::perms::others_exec);
  return bin;
}

/// The program: waits for `go` in its directory, then exits 7.
inline const char* kProgramScript = "while [ ! -e go ]; do sleep 0.002; done; exit 7";

/// The status command as it was before the fix (rc looked at once, before kill -0), to show that
/// the forced race is real.
inline std::string old_status_command(const std::string& quoted_dir) {
  return "cd " + quoted_dir +
         " 2>/dev/null || { echo gone; exit 0; }; if [ -f rc ]; then cat rc; "
         "elif [ -f pid ] && kill -0 \"$(cat pid)\" 2>/dev/null; then echo running; else echo "
         "gone; fi";
}

/// Reaps wrapper `pid` (adopted by this subreaper) on a thread, so it disappears as soon as it
/// exits.
inline std::thread reap(pid_t pid) {
  return std::thread([pid] {
    int st;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
  });
}

}  // namespace status_race

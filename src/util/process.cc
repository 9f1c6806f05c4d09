#include "continuum/util/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "continuum/util/strings.h"

extern char** environ;

namespace continuum::util {
namespace {

using Clock = std::chrono::steady_clock;

void emit_lines(std::string& pending, const ProcessSpec& spec, bool is_stderr, bool flush) {
  if (!spec.on_line) {
    pending.clear();
    return;
  }
  size_t start = 0;
  for (;;) {
    size_t nl = pending.find('\n', start);
    if (nl == std::string::npos) break;
    spec.on_line(pending.substr(start, nl - start), is_stderr);
    start = nl + 1;
  }
  pending.erase(0, start);
  if (flush && !pending.empty()) {
    spec.on_line(pending, is_stderr);
    pending.clear();
  }
}

// True while a process of group `pgid` runs. Zombies do not count: they run nothing and wait
// only for their new parent (init) to reap them, which some inits do seconds later.
bool group_running(pid_t pgid) {
  if (::kill(-pgid, 0) != 0 && errno != EPERM) return false;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream f(e.path() / "stat");
    std::string stat;
    if (!std::getline(f, stat)) continue;
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so parse after the
    // last ')'.
    auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 1));
    char state = 0;
    long ppid = 0, pgrp = 0;
    if (!(rest >> state >> ppid >> pgrp)) continue;
    if (pgrp == pgid && state != 'Z' && state != 'X') return true;
  }
  return false;
}

// The child's environment: ours, with spec.env added or overriding.
std::vector<std::string> child_env(const ProcessSpec& spec) {
  std::vector<std::string> env_store;
  for (char** e = environ; *e; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string_view::npos && spec.env.count(std::string(kv.substr(0, eq)))) continue;
    env_store.emplace_back(kv);
  }
  for (const auto& [k, v] : spec.env) env_store.push_back(k + "=" + v);
  return env_store;
}

// Pointers into `store` (which must outlive them), ending with nullptr, as exec wants them.
std::vector<char*> c_strings(std::vector<std::string>& store) {
  std::vector<char*> ptrs;
  for (auto& s : store) ptrs.push_back(s.data());
  ptrs.push_back(nullptr);
  return ptrs;
}

// Returns posix_spawnp's result; *pid is set only when it is 0.
int spawn_child(const ProcessSpec& spec, int stdin_fd, int stdout_fd, int stderr_fd, pid_t* pid) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, stdin_fd, 0);
  posix_spawn_file_actions_adddup2(&fa, stdout_fd, 1);
  posix_spawn_file_actions_adddup2(&fa, stderr_fd, 2);
  if (!spec.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, spec.cwd.c_str());

  // Own process group, so a timeout can end the child and everything it started.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr, &empty);

  std::vector<std::string> env_store = child_env(spec);
  std::vector<char*> envp = c_strings(env_store);
  std::vector<std::string> argv_store = spec.argv;
  std::vector<char*> argv = c_strings(argv_store);

  int rc = posix_spawnp(pid, argv[0], &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  return rc;
}

void write_stdin(const ProcessSpec& spec, int fd) {
  if (!spec.stdin_data) return;
  // Small inputs only (configs, scripts): written before reading output.
  const char* p = spec.stdin_data->data();
  size_t left = spec.stdin_data->size();
  signal(SIGPIPE, SIG_IGN);
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

// Timeout and cancel: SIGTERM to the group, SIGKILL after the grace.
struct Enforcer {
  const ProcessSpec& spec;
  pid_t pid;
  ProcessResult& res;
  Clock::time_point deadline;
  bool term_sent = false;
  Clock::time_point kill_at = Clock::time_point::max();
  // After SIGKILL, output is read for one more second at most: a process that left the group
  // (setsid) may still hold the pipes, and a stopped child must not keep its caller waiting.
  Clock::time_point give_up_at = Clock::time_point::max();

  void enforce(Clock::time_point now) {
    const bool stop = spec.stop && spec.stop->load();
    if (!term_sent && (now >= deadline || (spec.cancel && spec.cancel->load()) || stop)) {
      if (now >= deadline)
        res.timed_out = true;
      else if (spec.cancel && spec.cancel->load())
        res.cancelled = true;
      else
        res.stopped = true;
      ::kill(-pid, SIGTERM);
      term_sent = true;
      kill_at = now + (res.timed_out ? std::chrono::milliseconds(5000) : spec.cancel_grace);
    }
    if (term_sent && now >= kill_at) {
      ::kill(-pid, SIGKILL);
      kill_at = Clock::time_point::max();
      give_up_at = now + std::chrono::seconds(1);
    }
  }
};

// Reads both pipes into res.out/res.err until both close (or the SIGKILL grace ends), passing
// lines to spec.on_line; closes both fds.
void read_output(const ProcessSpec& spec, int out_fd, int err_fd, Enforcer& enf,
                 ProcessResult& res) {
  std::string pend_out, pend_err;
  // Short enough that a cancel (Ctrl-C) is seen within 100 ms.
  constexpr int kPollMs = 100;
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    auto now = Clock::now();
    enf.enforce(now);
    if (now >= enf.give_up_at) break;
    int pr = ::poll(fds, 2, kPollMs);
    if (pr < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        auto& whole = i == 0 ? res.out : res.err;
        auto& pend = i == 0 ? pend_out : pend_err;
        whole.append(buf, static_cast<size_t>(n));
        pend.append(buf, static_cast<size_t>(n));
        emit_lines(pend, spec, i == 1, false);
      } else if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) ::close(f.fd);
  emit_lines(pend_out, spec, false, true);
  emit_lines(pend_err, spec, true, true);
}

int wait_child(pid_t pid, Enforcer& enf) {
  int status = 0;
  for (int nap_ms = 1;; nap_ms = std::min(nap_ms * 2, 20)) {
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid || (w < 0 && errno != EINTR)) break;
    enf.enforce(Clock::now());
    ::poll(nullptr, 0, nap_ms);
  }
  return status;
}

void wait_group(pid_t pid, Enforcer& enf) {
  while (group_running(pid)) {
    auto now = Clock::now();
    enf.enforce(now);
    if (now >= enf.give_up_at) break;
    ::poll(nullptr, 0, 10);
  }
}

}  // namespace

bool have_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0;
  const char* path = std::getenv("PATH");
  for (const auto& dir : split(path ? path : "/usr/bin:/bin", ':')) {
    std::string p = (dir.empty() ? "." : dir) + "/" + name;
    struct stat st;
    if (::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0)
      return true;
  }
  return false;
}

Expected<ProcessResult> run_process(const ProcessSpec& spec) {
  if (spec.argv.empty()) return make_error("run_process: empty argv");
  int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1}, in_pipe[2] = {-1, -1};
  if (::pipe2(out_pipe, O_CLOEXEC) || ::pipe2(err_pipe, O_CLOEXEC) || ::pipe2(in_pipe, O_CLOEXEC)) {
    const int e = errno;
    // Out of descriptors: the pipes made before the failing one must not leak too.
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1], in_pipe[0], in_pipe[1]})
      if (fd >= 0) ::close(fd);
    return make_error(std::string("pipe: ") + std::strerror(e));
  }

  pid_t pid;
  int rc = spawn_child(spec, in_pipe[0], out_pipe[1], err_pipe[1], &pid);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ::close(in_pipe[0]);
  if (rc != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    ::close(in_pipe[1]);
    return make_error("cannot start " + spec.argv[0] + ": " + std::strerror(rc));
  }

  write_stdin(spec, in_pipe[1]);
  ::close(in_pipe[1]);

  ProcessResult res;
  auto deadline = spec.timeout.count() > 0 ? Clock::now() + spec.timeout : Clock::time_point::max();
  Enforcer enf{spec, pid, res, deadline};
  read_output(spec, out_pipe[0], err_pipe[0], enf, res);
  // A child that closed its output may still run: the timeout and cancel hold until it exits.
  int status = wait_child(pid, enf);
  // After a timeout or cancel the caller may rely on the child's whole group having stopped: wait
  // for its other members (signalled above) until the SIGKILL and one second more.
  if (enf.term_sent) wait_group(pid, enf);
  if (WIFEXITED(status))
    res.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    res.exit_code = 128 + WTERMSIG(status);
  return res;
}

}  // namespace continuum::util

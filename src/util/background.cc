#include "continuum/util/background.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace continuum::util {

Expected<std::unique_ptr<Background>> Background::start(const ProcessSpec& spec,
                                                        const std::filesystem::path& log) {
  if (spec.argv.empty()) return make_error("Background::start: empty argv");
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string s = *e;
    if (!spec.env.count(s.substr(0, s.find('=')))) env.push_back(std::move(s));
  }
  for (const auto& [k, v] : spec.env) env.push_back(k + "=" + v);
  std::vector<char*> argv, envp;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  if (!spec.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, spec.cwd.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return make_error("cannot start " + spec.argv[0] + ": " + std::strerror(rc));
  return std::unique_ptr<Background>(new Background(pid));
}

Background::~Background() { stop(); }

bool Background::reap(bool block) {
  if (pid_ <= 0) return true;
  int st = 0;
  const pid_t r = ::waitpid(pid_, &st, block ? 0 : WNOHANG);
  if (r == pid_) {
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    pid_ = -1;
    return true;
  }
  if (r < 0 && errno == ECHILD) {  // reaped elsewhere (a SIGCHLD handler): it is gone
    pid_ = -1;
    return true;
  }
  return false;
}

bool Background::running() { return !reap(false); }

std::optional<int> Background::exit_status() {
  reap(false);
  return status_;
}

void Background::stop(std::chrono::milliseconds grace) {
  if (reap(false)) return;
  ::kill(pid_, SIGTERM);
  const auto end = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < end) {
    if (reap(false)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid_, SIGKILL);
  reap(true);
}

std::string ProcessIdentity::str() const {
  return std::to_string(pid) + ":" + std::to_string(start_ticks);
}

std::optional<ProcessIdentity> ProcessIdentity::parse(const std::string& s) {
  ProcessIdentity id;
  long long pid = 0;
  char colon = 0;
  std::istringstream in(s);
  if (!(in >> pid >> colon >> id.start_ticks) || colon != ':' || pid <= 1 || !in.eof())
    return std::nullopt;
  id.pid = static_cast<pid_t>(pid);
  return id;
}

std::optional<ProcessIdentity> process_identity(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // The command name (field 2) is in parentheses and may hold spaces: fields count from the last
  // ')'. Then: 3 state, ... 22 starttime.
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream in(stat.substr(close + 1));
  std::string field;
  std::vector<std::string> fields;
  while (in >> field) fields.push_back(field);
  if (fields.size() < 20 || fields[0] == "Z" || fields[0] == "X") return std::nullopt;
  ProcessIdentity id;
  id.pid = pid;
  id.start_ticks = std::stoull(fields[19]);
  return id;
}

bool stop_process(const ProcessIdentity& id, std::chrono::milliseconds grace) {
  auto same = [&] {
    auto now = process_identity(id.pid);
    return now && now->start_ticks == id.start_ticks;
  };
  if (!same()) return true;
  if (::kill(id.pid, SIGTERM) != 0 && errno != ESRCH) return false;
  const auto end = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < end) {
    if (!same()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (same()) ::kill(id.pid, SIGKILL);
  for (int i = 0; i < 100 && same(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return !same();
}

}  // namespace continuum::util

#pragma once
// Test support for the benchmark integration tests: a private mosquitto on loopback (own config,
// PID recorded, killed by PID), background processes, and a Remote that runs commands with the
// local /bin/sh (the "Fake" in the tests' names: no SSH, the rest is real).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "continuum/util/process.h"
#include "continuum/util/ssh.h"

extern char** environ;

namespace bench_test {

inline int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    a.sin_port = 0;  // port 0: the caller's connect or listen fails and says so
  int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

inline bool can_connect(const std::string& ip, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  a.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

/// A child process with stdout+stderr to a file; killed by PID (SIGTERM, then SIGKILL) when
/// destroyed if still running.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::filesystem::path& log,
        const std::map<std::string, std::string>& env = {}) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    std::vector<std::string> envs;
    for (char** e = environ; *e; ++e) {
      std::string s = *e;
      if (!env.count(s.substr(0, s.find('=')))) envs.push_back(s);
    }
    for (const auto& [k, v] : env) envs.push_back(k + "=" + v);
    std::vector<char*> args, envp;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    for (auto& e : envs) envp.push_back(e.data());
    envp.push_back(nullptr);
    if (posix_spawnp(&pid_, argv[0].c_str(), &fa, nullptr, args.data(), envp.data()) != 0)
      pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
  }
  ~Child() { kill(); }
  pid_t pid() const { return pid_; }
  /// Waits up to `timeout` for the exit; returns the exit code, or -1 on timeout.
  int wait(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return status_;
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return status_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    if (wait(std::chrono::seconds(5)) == -1 && pid_ > 0) {
      ::kill(pid_, SIGKILL);
      wait(std::chrono::seconds(5));
    }
  }

 private:
  pid_t pid_ = -1;
  int status_ = -1;
};

/// mosquitto listening on `port` at each of `ips` (loopback addresses only).
class Broker {
 public:
  Broker(const std::filesystem::path& dir, int port,
         const std::vector<std::string>& ips = {"127.0.0.1"})
      : port_(port) {
    std::filesystem::create_directories(dir);
    const auto conf = dir / "mosquitto.conf";
    std::ofstream f(conf);
    for (const auto& ip : ips) f << "listener " << port << " " << ip << "\n";
    f << "allow_anonymous true\npersistence false\n";
    f.close();
    child_ = std::make_unique<Child>(std::vector<std::string>{"mosquitto", "-c", conf.string()},
                                     dir / "mosquitto.log");
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < end) {
      bool all = true;
      for (const auto& ip : ips) all &= can_connect(ip, port);
      if (all) {
        ready_ = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  bool ready() const { return ready_; }
  int port() const { return port_; }
  pid_t pid() const { return child_->pid(); }

 private:
  int port_;
  bool ready_ = false;
  std::unique_ptr<Child> child_;
};

/// Runs each command with the local /bin/sh in `home` (as if it were the guest's home directory),
/// with extra environment variables. A fake of the SSH transport only.
class LocalShellRemote : public continuum::util::Remote {
 public:
  LocalShellRemote(std::filesystem::path home, std::map<std::string, std::string> env,
                   std::string name)
      : home_(std::move(home)), env_(std::move(env)), name_(std::move(name)) {
    std::filesystem::create_directories(home_);
  }
  continuum::Expected<continuum::util::ExecResult> exec(
      const std::string& command, std::chrono::milliseconds timeout) override {
    ++execs;
    continuum::util::ProcessSpec spec;
    spec.argv = {"/bin/sh", "-c", command};
    spec.cwd = home_;
    spec.env = env_;
    spec.timeout = timeout;
    const auto t0 = std::chrono::steady_clock::now();
    auto r = continuum::util::run_process(spec);
    if (!r.ok()) return r.error();
    continuum::util::ExecResult e;
    e.exit_code = r->exit_code;
    e.timed_out = r->timed_out;
    e.out = r->out;
    e.err = r->err;
    e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return e;
  }
  continuum::Status upload(const std::string& content, const std::string& path, int) override {
    std::filesystem::path p = home_ / path;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << content;
    return {};
  }
  std::string describe() const override { return "local:" + name_; }
  int execs = 0;

 private:
  std::filesystem::path home_;
  std::map<std::string, std::string> env_;
  std::string name_;
};

}  // namespace bench_test

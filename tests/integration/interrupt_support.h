#pragma once
// Shared by the interrupt-latency tests (Ctrl-C is prompt in every phase): processes found by
// their argv in /proc, polling for a condition (never a fixed sleep), and the measured times
// printed in one greppable form: "[measure] phase=<phase> <what>_ms=<n>".
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace interrupt_test {

/// argv of a running process ({} when it is gone or unreadable).
inline std::vector<std::string> proc_argv(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(f)), {});
  std::vector<std::string> argv;
  size_t start = 0;
  for (size_t i = 0; i < all.size(); ++i)
    if (all[i] == '\0') {
      argv.push_back(all.substr(start, i - start));
      start = i + 1;
    }
  return argv;
}

/// PIDs of the processes whose argv satisfies `match`.
inline std::vector<pid_t> pids_where(
    const std::function<bool(const std::vector<std::string>&)>& match) {
  std::vector<pid_t> out;
  // The error_code increment: the range-for's operator++ throws when readdir fails on /proc
  // while processes come and go, and an exception in the caller's watcher thread aborts the test.
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc", ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = static_cast<pid_t>(std::stol(name));
    auto argv = proc_argv(pid);
    if (!argv.empty() && match(argv)) out.push_back(pid);
  }
  return out;
}

/// True when some argument of argv contains `needle`.
inline bool argv_contains(const std::vector<std::string>& argv, const std::string& needle) {
  for (const auto& a : argv)
    if (a.find(needle) != std::string::npos) return true;
  return false;
}

/// Polls `cond` every 10 ms until it holds or `limit` passed; returns its last value.
inline bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() >= end) return cond();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

/// State letter and process group of a process from /proc/PID/stat ({0, 0} when gone).
inline std::pair<char, long> proc_state(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(f, stat)) return {0, 0};
  auto close = stat.rfind(')');  // comm may hold spaces and parentheses
  if (close == std::string::npos) return {0, 0};
  std::istringstream rest(stat.substr(close + 1));
  char state = 0;
  long ppid = 0, pgrp = 0;
  rest >> state >> ppid >> pgrp;
  return {state, pgrp};
}

/// True while the process runs (a zombie waiting for init to reap it does not).
inline bool running(pid_t pid) {
  char st = proc_state(pid).first;
  return st != 0 && st != 'Z' && st != 'X';
}

/// True while any process of group `pgid` runs (zombies do not count).
inline bool group_alive(pid_t pgid) {
  if (pgid <= 0 || (::kill(-pgid, 0) != 0 && errno != EPERM)) return false;
  // The error_code increment: the range-for's operator++ throws when readdir fails on /proc
  // while processes come and go, and an exception in the caller's watcher thread aborts the test.
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc", ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = static_cast<pid_t>(std::stol(name));
    auto [st, pgrp] = proc_state(pid);
    if (pgrp == pgid && st != 'Z' && st != 'X' && st != 0) return true;
  }
  return false;
}

inline double ms_between(std::chrono::steady_clock::time_point a,
                         std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

/// "[measure] phase=<phase> <what>_ms=<n>", flushed so ctest's log keeps it even on a crash.
inline void print_measure(const std::string& phase, const std::string& what, double ms) {
  std::printf("[measure] phase=%s %s_ms=%.0f\n", phase.c_str(), what.c_str(), ms);
  std::fflush(stdout);
}

}  // namespace interrupt_test

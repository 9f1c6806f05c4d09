#include "continuum/util/process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace continuum::util;

TEST(RunProcess, CapturesOutputAndExitCode) {
  ProcessSpec s;
  s.argv = {"sh", "-c", "echo out; echo err >&2; exit 3"};
  auto r = run_process(s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
}

TEST(RunProcess, PassesArgumentsWithoutAShell) {
  ProcessSpec s;
  s.argv = {"printf", "%s", "a; echo injected"};
  auto r = run_process(s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "a; echo injected");
}

TEST(RunProcess, StreamsLinesAndFeedsStdin) {
  ProcessSpec s;
  s.argv = {"cat"};
  s.stdin_data = "one\ntwo\nthree";
  std::vector<std::string> lines;
  s.on_line = [&](const std::string& l, bool) { lines.push_back(l); };
  auto r = run_process(s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(lines, (std::vector<std::string>{"one", "two", "three"}));
}

TEST(RunProcess, TimeoutKillsTheChild) {
  ProcessSpec s;
  s.argv = {"sleep", "30"};
  s.timeout = std::chrono::milliseconds(200);
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_process(s);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_NE(r->exit_code, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
}

TEST(RunProcess, MissingProgramIsAnErrorOrExit127) {
  ProcessSpec s;
  s.argv = {"/nonexistent/program"};
  auto r = run_process(s);
  EXPECT_TRUE(!r.ok() || r->exit_code == 127);
}

namespace {

// Reads a PID the child wrote to a file, polling (the child runs concurrently).
pid_t wait_for_pid_file(const std::string& path, std::chrono::seconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    FILE* f = std::fopen(path.c_str(), "r");
    if (f) {
      long pid = 0;
      int n = std::fscanf(f, "%ld", &pid);
      std::fclose(f);
      if (n == 1 && pid > 0) return static_cast<pid_t>(pid);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

}  // namespace

TEST(RunProcess, CancelStopsTheWholeGroupWithin100msPlusExit) {
  // The child starts a grandchild in its group; raising the flag must end both, promptly.
  char dir[] = "/tmp/cntm-proc-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string pidfile = std::string(dir) + "/grandchild.pid";
  std::atomic<bool> cancel{false};
  ProcessSpec s;
  s.argv = {"sh", "-c", "sleep 60 & echo $! > \"$1\"; wait", "sh", pidfile};
  s.cancel = &cancel;
  std::chrono::steady_clock::time_point raised;
  std::thread raiser([&] {
    pid_t gc = wait_for_pid_file(pidfile, std::chrono::seconds(10));
    (void)gc;
    raised = std::chrono::steady_clock::now();
    cancel = true;
  });
  auto r = run_process(s);
  auto returned = std::chrono::steady_clock::now();
  raiser.join();
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->cancelled);
  EXPECT_FALSE(r->timed_out);
  EXPECT_EQ(r->exit_code, 128 + SIGTERM);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(returned - raised).count();
  std::printf("[measure] run_process cancel_to_return_ms=%lld\n", static_cast<long long>(ms));
  EXPECT_LT(ms, 1000);
  pid_t gc = wait_for_pid_file(pidfile, std::chrono::seconds(1));
  ASSERT_GT(gc, 0);
  // The grandchild got SIGTERM with the group and no longer runs when run_process returns (it
  // may still be a zombie until init reaps it).
  std::ifstream stat("/proc/" + std::to_string(gc) + "/stat");
  std::string line;
  if (std::getline(stat, line)) {
    auto close = line.rfind(')');
    ASSERT_NE(close, std::string::npos);
    EXPECT_EQ(line.substr(close + 2, 1), "Z")
        << "grandchild " << gc << " survived the cancel: " << line;
  }
  std::filesystem::remove_all(dir);
}

TEST(RunProcess, CancelEscalatesToSigkillAfterTheGrace) {
  std::atomic<bool> cancel{false};
  ProcessSpec s;
  // Raised once the child ignores SIGTERM (it says so), so only SIGKILL can end it.
  s.argv = {"sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"};
  s.cancel = &cancel;
  s.on_line = [&](const std::string& line, bool) {
    if (line == "ready") cancel = true;
  };
  s.cancel_grace = std::chrono::milliseconds(300);
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_process(s);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->cancelled);
  EXPECT_EQ(r->exit_code, 128 + SIGKILL);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
}

TEST(RunProcess, TimeoutHoldsForAChildThatClosedItsOutput) {
  // Without its pipes open the child can only be waited for: the timeout still ends it.
  ProcessSpec s;
  s.argv = {"sh", "-c", "exec >&- 2>&-; sleep 30"};
  s.timeout = std::chrono::milliseconds(300);
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_process(s);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
}

#include <gtest/gtest.h>

#include <chrono>

#include "continuum/util/process.h"

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

// util::Background: a daemon started without a shell, its output in a log, stopped by PID.
#include "continuum/util/background.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "continuum/util/files.h"

namespace continuum::util {
namespace {
namespace fs = std::filesystem;

/// Waits for the process to exit, up to `limit` (a deadline, not a delay: it returns at once
/// when the process is gone).
bool exits_within(Background& b, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (b.running()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // poll interval, not a wait
  }
  return true;
}

class BackgroundTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("continuum-bg-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(BackgroundTest, StopEndsTheProcessByPidAndReportsTheSignal) {
  ProcessSpec s;
  s.argv = {"sleep", "60"};
  auto b = Background::start(s, dir_ / "log");
  ASSERT_TRUE(b.ok()) << b.error().message;
  const pid_t pid = (*b)->pid();
  ASSERT_GT(pid, 0);
  EXPECT_TRUE((*b)->running());
  EXPECT_EQ(::getpgid(pid), pid) << "its own process group";
  (*b)->stop();
  EXPECT_FALSE((*b)->running());
  EXPECT_EQ((*b)->exit_status(), 128 + SIGTERM);
  EXPECT_EQ(::kill(pid, 0), -1) << "reaped, no zombie left";
}

TEST_F(BackgroundTest, OutputGoesToTheLogAndTheExitStatusIsKept) {
  ProcessSpec s;
  s.argv = {"sh", "-c", "echo out; echo err >&2; exit 3"};
  auto b = Background::start(s, dir_ / "log");
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(exits_within(**b, std::chrono::seconds(10)));
  EXPECT_EQ((*b)->exit_status(), 3);
  EXPECT_EQ(*read_file(dir_ / "log"), "out\nerr\n");
}

TEST_F(BackgroundTest, AProgramThatDoesNotExistIsAnError) {
  ProcessSpec s;
  s.argv = {"continuum-no-such-program"};
  auto b = Background::start(s, dir_ / "log");
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().message.find("continuum-no-such-program"), std::string::npos);
}

TEST(ProcessIdentityTest, TextRoundTripAndRejectsGarbage) {
  ProcessIdentity id{1234, 987654321ULL};
  EXPECT_EQ(id.str(), "1234:987654321");
  auto back = ProcessIdentity::parse(id.str());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->pid, 1234);
  EXPECT_EQ(back->start_ticks, 987654321ULL);
  for (const char* bad : {"", "1234", "1234:", ":5", "1:5", "0:5", "-3:5", "12:5x", "12 5"})
    EXPECT_FALSE(ProcessIdentity::parse(bad).has_value()) << bad;
}

TEST(ProcessIdentityTest, OwnProcessHasAStableStartTime) {
  auto a = process_identity(::getpid());
  ASSERT_TRUE(a.has_value());
  EXPECT_GT(a->start_ticks, 0ULL);
  EXPECT_EQ(process_identity(::getpid())->start_ticks, a->start_ticks);
}

TEST_F(BackgroundTest, StopProcessEndsOnlyTheProcessItsIdentityNames) {
  ProcessSpec s;
  s.argv = {"sleep", "60"};
  auto b = Background::start(s, dir_ / "sleep.log");
  ASSERT_TRUE(b.ok()) << b.error().message;
  auto id = process_identity((*b)->pid());
  ASSERT_TRUE(id.has_value());
  // Same PID, another start time: a process that reused the PID. Left alone, reported gone.
  ProcessIdentity other = *id;
  other.start_ticks += 1;
  EXPECT_TRUE(stop_process(other));
  EXPECT_TRUE((*b)->running());
  // The real identity: ended by SIGTERM (it stays a zombie until Background reaps it, which
  // process_identity does not count as running).
  EXPECT_TRUE(stop_process(*id));
  EXPECT_FALSE(process_identity((*b)->pid()).has_value());
  EXPECT_TRUE(exits_within(**b, std::chrono::seconds(5)));
  EXPECT_EQ((*b)->exit_status(), 128 + SIGTERM);
}

}  // namespace
}  // namespace continuum::util

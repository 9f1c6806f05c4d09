#include "continuum/util/interrupt.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <thread>

using namespace continuum::util;

TEST(Interrupt, SigintAndSigtermSetTheFlagAndCheckInterruptSays130) {
  install_interrupt_handlers();
  for (int sig : {SIGINT, SIGTERM}) {
    clear_interrupt();
    EXPECT_FALSE(interrupt_requested());
    EXPECT_TRUE(check_interrupt().ok());
    // A real signal to this process: the handler, not a direct call, sets the flag.
    ASSERT_EQ(::raise(sig), 0);
    EXPECT_TRUE(interrupt_requested()) << "signal " << sig;
    EXPECT_TRUE(interrupt_flag()->load());
    auto st = check_interrupt();
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().exit_code, continuum::ExitCode::interrupted);
    EXPECT_EQ(st.error().message, "interrupted");
  }
  clear_interrupt();
}

TEST(Interrupt, RequestAndClearAreSeenThroughTheFlag) {
  clear_interrupt();
  const std::atomic<bool>* flag = interrupt_flag();
  EXPECT_FALSE(flag->load());
  request_interrupt();
  EXPECT_TRUE(flag->load());
  EXPECT_TRUE(interrupt_requested());
  clear_interrupt();
  EXPECT_FALSE(flag->load());
}

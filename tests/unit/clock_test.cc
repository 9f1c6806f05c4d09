// Guest clock alignment (include/continuum/infra/clock.h): the offset arithmetic, the step
// command, and the measure -> step -> measure sequence against a fake guest whose clock is off by
// a known amount (a real guest is in tests/e2e/quickstart_test.cc).
#include <gtest/gtest.h>

#include <cmath>
#include <regex>

#include "continuum/infra/clock.h"
#include "continuum/util/strings.h"

namespace continuum::infra {
namespace {

using SysClock = std::chrono::system_clock;

SysClock::time_point at_ms(int64_t ms) { return SysClock::time_point(std::chrono::milliseconds(ms)); }

TEST(ClockTest, OffsetIsGuestMinusMidpoint) {
  // Sent at 1000.000 s, answered at 1000.010 s, the guest said 1000.705 s: +700 ms, rtt 10 ms.
  auto e = offset_from_sample(at_ms(1000000), "1000.705000000\n", at_ms(1000010));
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_NEAR(e->offset_ms, 700.0, 1e-6);
  EXPECT_NEAR(e->rtt_ms, 10.0, 1e-6);
  // Nanoseconds are not lost at today's epoch, and a short fraction is read as a fraction.
  auto now = offset_from_sample(at_ms(1764430000000), "1764429999.999500001", at_ms(1764430000000));
  ASSERT_TRUE(now.ok());
  EXPECT_NEAR(now->offset_ms, -0.499999, 1e-5);
  auto short_frac = offset_from_sample(at_ms(5000), "5.5", at_ms(5000));
  ASSERT_TRUE(short_frac.ok());
  EXPECT_NEAR(short_frac->offset_ms, 500.0, 1e-9);
}

TEST(ClockTest, RejectsWhatIsNotATimestamp) {
  for (const char* bad : {"", "date: invalid option", "1764430000", "17644.30000.1", "-5.2", "%s.%N"}) {
    auto e = offset_from_sample(at_ms(0), bad, at_ms(1));
    EXPECT_FALSE(e.ok()) << bad;
    if (!e.ok()) {
      EXPECT_NE(e.error().message.find("not seconds.nanoseconds"), std::string::npos);
    }
  }
}

TEST(ClockTest, StepCommandIsRelativeAndQuoted) {
  EXPECT_EQ(clock_step_command(-714.25, true),
            "sudo -n python3 -c 'import sys, time; time.clock_settime(time.CLOCK_REALTIME, time.time() + "
            "float(sys.argv[1]) / 1000)' -714.250");
  EXPECT_EQ(clock_step_command(3, false).rfind("python3 -c ", 0), 0u);
}

/// A fake guest (the rules ask to say so): its clock is the host's plus `offset_ms`, every exec
/// takes `delay_ms` each way, and the step command really moves its clock.
class FakeGuest : public util::Remote {
 public:
  FakeGuest(double offset_ms, double delay_ms) : offset_ms_(offset_ms), delay_ms_(delay_ms) {}
  Expected<util::ExecResult> exec(const std::string& command, std::chrono::milliseconds) override {
    commands.push_back(command);
    util::ExecResult r;
    r.exit_code = 0;
    if (command == "date +%s.%N") {
      // Stamped halfway, as a real guest stamps between request and reply.
      wait(delay_ms_);
      double ms = std::chrono::duration<double, std::milli>(SysClock::now().time_since_epoch()).count() + offset_ms_;
      r.out = fmt_ts(ms) + "\n";
      wait(delay_ms_);
      return r;
    }
    static const std::regex step(R"(python3 -c .* (-?[0-9.]+)$)");
    std::smatch m;
    if (std::regex_search(command, m, step)) {
      if (refuse_step) {
        r.exit_code = 1;
        r.err = "sudo: a password is required";
        return r;
      }
      offset_ms_ += std::stod(m[1].str());
      return r;
    }
    r.exit_code = 127;
    return r;
  }
  Status upload(const std::string&, const std::string&, int) override { return {}; }
  std::string describe() const override { return "fake guest"; }

  std::vector<std::string> commands;
  bool refuse_step = false;
  double offset_ms() const { return offset_ms_; }

 private:
  static void wait(double ms) {
    auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(static_cast<int64_t>(ms * 1000));
    while (std::chrono::steady_clock::now() < until) {
    }
  }
  static std::string fmt_ts(double ms) {
    auto whole = static_cast<int64_t>(std::floor(ms / 1000));
    auto ns = static_cast<int64_t>(std::llround((ms - static_cast<double>(whole) * 1000) * 1e6));
    char buf[64];
    std::snprintf(buf, sizeof buf, "%lld.%09lld", static_cast<long long>(whole), static_cast<long long>(ns));
    return buf;
  }
  double offset_ms_, delay_ms_;
};

TEST(ClockTest, FakeGuestOffByARtcSecondIsSteppedToTheHostsClock) {
  FakeGuest g(714.0, 1.0);
  ClockResult r = sync_clock(g, "cloud0", true);
  EXPECT_TRUE(r.error.empty()) << r.error;
  EXPECT_NEAR(r.before.offset_ms, 714.0, 1.0);
  EXPECT_TRUE(r.stepped);
  ASSERT_TRUE(r.after.has_value());
  EXPECT_LT(std::fabs(r.after->offset_ms), 1.0);
  EXPECT_LT(std::fabs(g.offset_ms()), 1.0);
  // Five samples, one step, five samples.
  EXPECT_EQ(g.commands.size(), 11u);
  EXPECT_EQ(g.commands[5].rfind("sudo -n python3", 0), 0u) << g.commands[5];
}

TEST(ClockTest, FakeGuestAlreadyCloseIsLeftAlone) {
  FakeGuest g(0.5, 0.2);
  ClockResult r = sync_clock(g, "endpoint0", false);
  EXPECT_TRUE(r.error.empty());
  EXPECT_FALSE(r.stepped);
  EXPECT_FALSE(r.after.has_value());
  EXPECT_EQ(g.commands.size(), 5u);  // measured only
}

TEST(ClockTest, FakeGuestRefusingTheStepIsReportedNotFatal) {
  FakeGuest g(-950.0, 0.2);
  g.refuse_step = true;
  ClockResult r = sync_clock(g, "edge0", true);
  EXPECT_FALSE(r.stepped);
  EXPECT_NE(r.error.find("cannot step the clock: sudo: a password is required"), std::string::npos) << r.error;
  EXPECT_NEAR(r.before.offset_ms, -950.0, 1.0);
  auto csv = format_clocks_csv({r});
  EXPECT_NE(csv.find("edge0,"), std::string::npos);
  EXPECT_NE(csv.find(",false,,,cannot step the clock: sudo: a password is required\n"), std::string::npos) << csv;
}

}  // namespace
}  // namespace continuum::infra

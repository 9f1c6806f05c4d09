// Guest clock alignment (src/infra/include/continuum/infra/clock.h): the offset arithmetic, the
// step command, and the measure -> step -> measure sequence against a fake guest whose clock is off
// by a known amount (a real guest is in tests/e2e/quickstart_test.cc).
#include "continuum/infra/clock.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <regex>

#include "continuum/util/strings.h"

namespace continuum::infra {
namespace {

using SysClock = std::chrono::system_clock;

SysClock::time_point at_ms(int64_t ms) {
  return SysClock::time_point(std::chrono::milliseconds(ms));
}

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
  for (const char* bad :
       {"", "date: invalid option", "1764430000", "17644.30000.1", "-5.2", "%s.%N"}) {
    auto e = offset_from_sample(at_ms(0), bad, at_ms(1));
    EXPECT_FALSE(e.ok()) << bad;
    if (!e.ok()) {
      EXPECT_NE(e.error().message.find("not seconds.nanoseconds"), std::string::npos);
    }
  }
}

TEST(ClockTest, StepCommandIsAnAtomicKernelOffsetAndQuoted) {
  std::string c = clock_step_command(-714.25, true);
  EXPECT_EQ(c.rfind("sudo -n python3 -c 'import ctypes, sys", 0), 0u) << c;
  EXPECT_NE(c.find("adjtimex"), std::string::npos);
  EXPECT_NE(c.find("0x0100 | 0x2000"), std::string::npos);  // ADJ_SETOFFSET | ADJ_NANO
  EXPECT_EQ(c.substr(c.size() - 10), "' -714.250") << c;
  EXPECT_EQ(clock_step_command(3, false).rfind("python3 -c ", 0), 0u);
}

TEST(ClockTest, StepScriptRunsAndReachesAdjtimex) {
  // The script runs under this machine's python3 and gets as far as adjtimex(ADJ_SETOFFSET),
  // which refuses an unprivileged caller with EPERM (a Python error would show instead). That the
  // step really lands is checked on real guests: tests/e2e/quickstart_test.cc, clocks.csv.
  // As root (CI) it runs as nobody, so the step cannot really move this machine's clock.
  std::string cmd =
      (::geteuid() == 0 ? "runuser -u nobody -- " : "") + clock_step_command(0.5, false) + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[512];
  std::string out;
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  int rc = ::pclose(p);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("adjtimex(ADJ_SETOFFSET): Operation not permitted"), std::string::npos) << out;
}

/// A fake guest (the rules ask to say so; stepping a real clock here would move the host's): its
/// clock is the host's plus `offset_ms`, every exchange turn takes `delay_ms` each way, and the
/// step command really moves its clock.
class FakeGuest : public util::Remote {
 public:
  FakeGuest(double offset_ms, double delay_ms) : offset_ms_(offset_ms), delay_ms_(delay_ms) {}
  Expected<util::ExecResult> exec(const std::string& command, std::chrono::milliseconds) override {
    commands.push_back(command);
    util::ExecResult r;
    r.exit_code = 0;
    static const std::regex step(R"(python3 -c [\s\S]* (-?[0-9.]+)$)");
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
  Expected<std::vector<Turn>> exchange_lines(const std::string& command, int turns,
                                             std::chrono::milliseconds timeout) override {
    if (!line_exchanges) return Remote::exchange_lines(command, turns, timeout);
    commands.push_back(command);
    std::vector<Turn> out;
    for (int i = 0; i < turns; ++i) {
      Turn t;
      t.sent = SysClock::now();
      // Stamped halfway, as a real guest stamps between request and reply; the first turn also
      // waits for python to start.
      wait(i == 0 ? 20 * delay_ms_ : delay_ms_);
      t.answer = fmt_ts(
          std::chrono::duration<double, std::milli>(SysClock::now().time_since_epoch()).count() +
          offset_ms_);
      wait(delay_ms_);
      t.received = SysClock::now();
      out.push_back(t);
    }
    return out;
  }
  Status upload(const std::string&, const std::string&, int) override { return {}; }
  std::string describe() const override { return "fake guest"; }

  std::vector<std::string> commands;
  bool refuse_step = false;
  bool line_exchanges = true;  ///< false: "not supported", as util::Remote's default
  double offset_ms() const { return offset_ms_; }

 private:
  static void wait(double ms) {
    auto until = std::chrono::steady_clock::now() +
                 std::chrono::microseconds(static_cast<int64_t>(ms * 1000));
    while (std::chrono::steady_clock::now() < until) {
    }
  }
  static std::string fmt_ts(double ms) {
    auto whole = static_cast<int64_t>(std::floor(ms / 1000));
    auto ns = static_cast<int64_t>(std::llround((ms - static_cast<double>(whole) * 1000) * 1e6));
    char buf[64];
    std::snprintf(buf, sizeof buf, "%lld.%09lld", static_cast<long long>(whole),
                  static_cast<long long>(ns));
    return buf;
  }
  double offset_ms_, delay_ms_;
};

TEST(ClockTest, FakeGuestOffByARtcSecondIsSteppedToTheHostsClock) {
  FakeGuest g(714.0, 0.5);
  ClockResult r = sync_clock(g, "cloud0", true);
  EXPECT_TRUE(r.error.empty()) << r.error;
  EXPECT_NEAR(r.before.offset_ms, 714.0, 0.5);
  EXPECT_LT(r.before.rtt_ms, 5.0);  // not the first, slow turn
  EXPECT_TRUE(r.stepped);
  ASSERT_TRUE(r.after.has_value());
  EXPECT_LT(std::fabs(r.after->offset_ms), 0.5);
  EXPECT_LT(std::fabs(g.offset_ms()), 0.5);
  // One exchange, one step, one exchange; nothing else.
  ASSERT_EQ(g.commands.size(), 3u);
  EXPECT_EQ(g.commands[0], clock_echo_command());
  EXPECT_EQ(g.commands[1].rfind("sudo -n python3", 0), 0u) << g.commands[1];
  EXPECT_EQ(g.commands[2], clock_echo_command());
}

TEST(ClockTest, FakeGuestWithoutLineExchangesIsAnErrorNotAGuess) {
  FakeGuest g(-300.0, 0.2);
  g.line_exchanges = false;
  ClockResult r = sync_clock(g, "endpoint0", false);
  EXPECT_FALSE(r.stepped);
  EXPECT_NE(r.error.find("cannot read the clock: fake guest: line exchanges are not supported"),
            std::string::npos)
      << r.error;
  EXPECT_TRUE(g.commands.empty());  // nothing was run, least of all a step
}

TEST(ClockTest, EchoCommandAnswersEachLineWithTheClock) {
  // The guest program, run here by a real python3: two lines in, two timestamps out.
  std::string cmd = "printf '\\n\\n' | " + clock_echo_command();
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[256];
  std::string out;
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  ASSERT_EQ(::pclose(p), 0) << out;
  auto lines = util::split(std::string(util::trim(out)), '\n');
  ASSERT_EQ(lines.size(), 2u) << out;
  auto now = SysClock::now();
  for (const auto& l : lines) {
    auto e = offset_from_sample(now, l, now);
    ASSERT_TRUE(e.ok()) << l;
    EXPECT_LT(std::fabs(e->offset_ms), 5000.0) << l;
  }
}

TEST(ClockTest, FakeGuestAlreadyCloseIsLeftAlone) {
  FakeGuest g(0.5, 0.2);
  ClockResult r = sync_clock(g, "endpoint0", false);
  EXPECT_TRUE(r.error.empty());
  EXPECT_FALSE(r.stepped);
  EXPECT_FALSE(r.after.has_value());
  EXPECT_EQ(g.commands.size(), 1u);  // measured only
}

TEST(ClockTest, FakeGuestRefusingTheStepIsReportedNotFatal) {
  FakeGuest g(-950.0, 0.2);
  g.refuse_step = true;
  ClockResult r = sync_clock(g, "edge0", true);
  EXPECT_FALSE(r.stepped);
  EXPECT_NE(r.error.find("cannot step the clock: sudo: a password is required"), std::string::npos)
      << r.error;
  EXPECT_NEAR(r.before.offset_ms, -950.0, 1.0);
  auto csv = format_clocks_csv({r});
  EXPECT_NE(csv.find("edge0,"), std::string::npos);
  EXPECT_NE(csv.find(",false,,,cannot step the clock: sudo: a password is required\n"),
            std::string::npos)
      << csv;
}

}  // namespace
}  // namespace continuum::infra

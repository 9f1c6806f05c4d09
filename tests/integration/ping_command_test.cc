// The loss the RTT verification judges comes from ping_command's output: run here for real
// (iputils' ping) inside a network namespace of the test's own, whose firewall drops every
// fourth echo request, so the true loss is known.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "continuum/infra/netem.h"
#include "continuum/util/process.h"

namespace continuum::infra {
namespace {

util::ProcessResult run(const std::vector<std::string>& argv) {
  util::ProcessSpec spec;
  spec.argv = argv;
  spec.timeout = std::chrono::seconds(60);
  auto r = util::run_process(spec);
  if (!r) return util::ProcessResult{127, false, "", r.error().message};
  return *r;
}

class PingCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespace)";
    for (const char* p : {"ip", "iptables", "ping"})
      if (!util::have_program(p) && !util::have_program(std::string("/usr/sbin/") + p))
        GTEST_SKIP() << p << " is not installed (scripts/bootstrap --deps)";
    ns_ = "cnt-ping-" + std::to_string(::getpid());
    ASSERT_EQ(run({"ip", "netns", "add", ns_}).exit_code, 0);
    ASSERT_EQ(run({"ip", "-n", ns_, "link", "set", "lo", "up"}).exit_code, 0);
  }
  void TearDown() override {
    if (!ns_.empty()) run({"ip", "netns", "del", ns_});
  }
  std::string ns_;
};

TEST_F(PingCommand, SendsExactlyTheCountSoLostRepliesAreTheOnlyLoss) {
  auto fw = run({"ip",           "netns", "exec",      ns_,      "iptables",
                 "-A",           "INPUT", "-p",        "icmp",   "--icmp-type",
                 "echo-request", "-m",    "statistic", "--mode", "nth",
                 "--every",      "4",     "--packet",  "0",      "-j",
                 "DROP"});
  if (fw.exit_code != 0) GTEST_SKIP() << "iptables' statistic match is unavailable: " << fw.err;
  auto r = run({"ip", "netns", "exec", ns_, "sh", "-c", ping_command("127.0.0.1", 20, 20)});
  auto s = parse_ping(r.out + "\n" + r.err);
  ASSERT_TRUE(s) << r.out << r.err;
  // With a deadline (-w), iputils sends on until it has 20 replies: 27 sent, "26 % loss".
  EXPECT_EQ(s->transmitted, 20) << r.out;
  EXPECT_EQ(s->received, 15) << r.out;
  EXPECT_DOUBLE_EQ(s->loss_pct, 25.0);
}

TEST_F(PingCommand, LosslessPathReportsNoLoss) {
  auto r = run({"ip", "netns", "exec", ns_, "sh", "-c", ping_command("127.0.0.1", 20, 20)});
  auto s = parse_ping(r.out + "\n" + r.err);
  ASSERT_TRUE(s) << r.out << r.err;
  EXPECT_EQ(s->transmitted, 20);
  EXPECT_EQ(s->received, 20);
  EXPECT_EQ(s->loss_pct, 0.0);
  ASSERT_TRUE(s->rtt_ms());
  EXPECT_EQ(s->samples_ms.size(), 20u);
}

}  // namespace
}  // namespace continuum::infra

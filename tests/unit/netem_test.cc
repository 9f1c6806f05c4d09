// tc command generation (exact lists), ping parsing, and the verification logic of infra/netem.
#include "continuum/infra/netem.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "continuum/util/files.h"
#include "continuum/util/process.h"
#include "continuum/util/strings.h"
#include "support/plan_builders.h"

namespace continuum::infra {
namespace {

/// One netem qdisc line as generate() writes it.
std::string tc_netem(const std::string& parent, int handle, const std::string& params) {
  return "tc qdisc add dev ens2 parent " + parent + " handle " + std::to_string(handle) +
         ": netem " + params;
}

/// One u32 filter line as generate() writes it (one call instead of a literal split over two
/// lines, which reads like a missing comma in a list of commands).
std::string tc_filter(int prio, const std::string& flow, const std::string& dst) {
  return "tc filter add dev ens2 parent 1: protocol ip prio " + std::to_string(prio) +
         " u32 flowid " + flow + " match ip dst " + dst;
}

using config::Tier;

using test_support::link;
using test_support::node;

/// What plan::make gives for configuration/bench_cloud.cfg (2 cloud incl. controller, 1
/// endpoint, network_emulation = True, 4g): docs/original.md §8.3.
plan::Plan bench_cloud() {
  plan::Plan p;
  p.config_name = "bench_cloud";
  p.user = "alice";
  p.network_emulation = true;
  p.nodes = {node("cloud_controller", Tier::cloud, "192.168.100.2"),
             node("cloud0", Tier::cloud, "192.168.100.3"),
             node("endpoint0", Tier::endpoint, "192.168.100.4")};
  p.nodes[0].controller = true;
  p.tier_links = {link("cloud", "cloud", 0, 0, 1000), link("cloud", "endpoint", 45, 5, 7.21)};
  return p;
}

/// 1 cloud, 2 edges, 2 endpoints, 5g (as bench_edge with more nodes).
plan::Plan edge_5g() {
  plan::Plan p;
  p.network_emulation = true;
  p.nodes = {node("cloud_controller", Tier::cloud, "192.168.100.2"),
             node("edge0", Tier::edge, "192.168.100.3"), node("edge1", Tier::edge, "192.168.100.4"),
             node("endpoint0", Tier::endpoint, "192.168.100.5"),
             node("endpoint1", Tier::endpoint, "192.168.100.6")};
  p.tier_links = {link("edge", "edge", 7.5, 2.5, 1000), link("cloud", "edge", 7.5, 2.5, 1000),
                  link("cloud", "endpoint", 45, 5, 29.66),
                  link("edge", "endpoint", 7.5, 2.5, 29.66),
                  link("endpoint", "endpoint", 0, 0, 1000, 0, false)};
  return p;
}

std::vector<std::string> rendered(const plan::Plan& p, const std::string& id,
                                  const std::string& dev = "ens2", bool sudo = false) {
  auto cmds = tc_commands(p, *p.find(id), dev, sudo);
  EXPECT_TRUE(cmds.ok()) << (cmds ? "" : cmds.error().message);
  std::vector<std::string> out;
  if (cmds)
    for (const auto& c : *cmds) out.push_back(util::shell_join(c));
  return out;
}

TEST(NetemTest, BenchCloud4gExactCommands) {
  plan::Plan p = bench_cloud();
  EXPECT_EQ(
      rendered(p, "cloud_controller"),
      (std::vector<std::string>{
          "tc qdisc add dev ens2 root handle 1: htb default 999",
          "tc class add dev ens2 parent 1: classid 1:999 htb rate 1000mbit",
          "tc class add dev ens2 parent 1: classid 1:1 htb rate 1000mbit",
          tc_filter(1, "1:1", "192.168.100.3"),
          "tc class add dev ens2 parent 1: classid 1:2 htb rate 7.21mbit",
          tc_filter(2, "1:2", "192.168.100.4"),
          "tc qdisc add dev ens2 parent 1:2 handle 20: netem delay 45ms 5ms distribution normal",
      }));
  EXPECT_EQ(
      rendered(p, "endpoint0"),
      (std::vector<std::string>{
          "tc qdisc add dev ens2 root handle 1: htb default 999",
          "tc class add dev ens2 parent 1: classid 1:999 htb rate 1000mbit",
          "tc class add dev ens2 parent 1: classid 1:1 htb rate 7.21mbit",
          tc_filter(1, "1:1", "192.168.100.2"),
          tc_filter(1, "1:1", "192.168.100.3"),
          "tc qdisc add dev ens2 parent 1:1 handle 10: netem delay 45ms 5ms distribution normal",
      }));
}

TEST(NetemTest, SudoPrefixWhenNotRoot) {
  auto cmds = rendered(bench_cloud(), "cloud0", "eth0", true);
  ASSERT_FALSE(cmds.empty());
  for (const auto& c : cmds) EXPECT_TRUE(c.starts_with("sudo -n tc ")) << c;
  EXPECT_EQ(cmds[2], "sudo -n tc class add dev eth0 parent 1: classid 1:1 htb rate 1000mbit");
}

TEST(NetemTest, Edge5gGroupsInUpstreamOrder) {
  plan::Plan p = edge_5g();
  EXPECT_EQ(
      rendered(p, "edge0"),
      (std::vector<std::string>{
          "tc qdisc add dev ens2 root handle 1: htb default 999",
          "tc class add dev ens2 parent 1: classid 1:999 htb rate 1000mbit",
          // other edges
          "tc class add dev ens2 parent 1: classid 1:1 htb rate 1000mbit",
          tc_filter(1, "1:1", "192.168.100.4"),
          "tc qdisc add dev ens2 parent 1:1 handle 10: netem delay 7.5ms 2.5ms distribution normal",
          // clouds
          "tc class add dev ens2 parent 1: classid 1:2 htb rate 1000mbit",
          tc_filter(2, "1:2", "192.168.100.2"),
          "tc qdisc add dev ens2 parent 1:2 handle 20: netem delay 7.5ms 2.5ms distribution normal",
          // endpoints
          "tc class add dev ens2 parent 1: classid 1:3 htb rate 29.66mbit",
          tc_filter(3, "1:3", "192.168.100.5"),
          tc_filter(3, "1:3", "192.168.100.6"),
          "tc qdisc add dev ens2 parent 1:3 handle 30: netem delay 7.5ms 2.5ms distribution normal",
      }));
  // Endpoint: clouds, then edges; endpoint<->endpoint unshaped as upstream (default class).
  EXPECT_EQ(
      rendered(p, "endpoint1"),
      (std::vector<std::string>{
          "tc qdisc add dev ens2 root handle 1: htb default 999",
          "tc class add dev ens2 parent 1: classid 1:999 htb rate 1000mbit",
          "tc class add dev ens2 parent 1: classid 1:1 htb rate 29.66mbit",
          tc_filter(1, "1:1", "192.168.100.2"),
          "tc qdisc add dev ens2 parent 1:1 handle 10: netem delay 45ms 5ms distribution normal",
          "tc class add dev ens2 parent 1: classid 1:2 htb rate 29.66mbit",
          tc_filter(2, "1:2", "192.168.100.3"),
          tc_filter(2, "1:2", "192.168.100.4"),
          "tc qdisc add dev ens2 parent 1:2 handle 20: netem delay 7.5ms 2.5ms distribution normal",
      }));
  auto nn = node_netem(p, *p.find("endpoint1"));
  ASSERT_TRUE(nn.ok());
  EXPECT_EQ(nn->class_for("endpoint0"), nullptr);
  ASSERT_NE(nn->class_for("edge1"), nullptr);
  EXPECT_EQ(nn->class_for("edge1")->number, 2);
}

TEST(NetemTest, OverridesAndEndpointLinkOptIn) {
  // cloud_endpoint_latency_avg = 20, cloud_endpoint_latency_var = 0 (tc refuses a distribution
  // without jitter: the original would have failed), endpoint_latency_avg = 2 (new key).
  plan::Plan p = edge_5g();
  p.tier_links[2] = link("cloud", "endpoint", 20, 0, 29.66);
  p.tier_links[3] = link("edge", "endpoint", 12.5, 2.5, 50);
  p.tier_links[4] = link("endpoint", "endpoint", 2, 0.5, 100);
  auto cmds = rendered(p, "endpoint0");
  EXPECT_EQ(
      cmds,
      (std::vector<std::string>{
          "tc qdisc add dev ens2 root handle 1: htb default 999",
          "tc class add dev ens2 parent 1: classid 1:999 htb rate 1000mbit",
          "tc class add dev ens2 parent 1: classid 1:1 htb rate 29.66mbit",
          tc_filter(1, "1:1", "192.168.100.2"),
          "tc qdisc add dev ens2 parent 1:1 handle 10: netem delay 20ms",
          "tc class add dev ens2 parent 1: classid 1:2 htb rate 50mbit",
          tc_filter(2, "1:2", "192.168.100.3"),
          tc_filter(2, "1:2", "192.168.100.4"),
          tc_netem("1:2", 20, "delay 12.5ms 2.5ms distribution normal"),
          "tc class add dev ens2 parent 1: classid 1:3 htb rate 100mbit",
          tc_filter(3, "1:3", "192.168.100.6"),
          "tc qdisc add dev ens2 parent 1:3 handle 30: netem delay 2ms 0.5ms distribution normal",
      }));
}

TEST(NetemTest, LossWithAndWithoutDelay) {
  plan::Plan p = bench_cloud();
  p.tier_links[0] = link("cloud", "cloud", 0, 0, 1000, 2);        // loss only
  p.tier_links[1] = link("cloud", "endpoint", 45, 5, 7.21, 0.5);  // delay + loss
  auto cmds = rendered(p, "cloud0");
  ASSERT_EQ(cmds.size(), 8u);
  EXPECT_EQ(cmds[4], "tc qdisc add dev ens2 parent 1:1 handle 10: netem loss 2%");
  EXPECT_EQ(cmds[7], tc_netem("1:2", 20, "delay 45ms 5ms distribution normal loss 0.5%"));
}

TEST(NetemTest, PairOverrideGetsItsOwnClass) {
  plan::Plan p = bench_cloud();
  p.pair_links = {link("cloud0", "endpoint0", 100, 10, 5, 1)};
  // cloud0: the endpoint group became empty (its only peer has a pair class), so it is skipped.
  EXPECT_EQ(rendered(p, "cloud0"),
            (std::vector<std::string>{
                "tc qdisc add dev ens2 root handle 1: htb default 999",
                "tc class add dev ens2 parent 1: classid 1:999 htb rate 1000mbit",
                "tc class add dev ens2 parent 1: classid 1:1 htb rate 1000mbit",
                tc_filter(1, "1:1", "192.168.100.2"),
                "tc class add dev ens2 parent 1: classid 1:2 htb rate 5mbit",
                tc_filter(2, "1:2", "192.168.100.4"),
                tc_netem("1:2", 20, "delay 100ms 10ms distribution normal loss 1%"),
            }));
  auto e = rendered(p, "endpoint0");
  ASSERT_EQ(e.size(), 8u);
  EXPECT_EQ(e[3], tc_filter(1, "1:1", "192.168.100.2"));
  EXPECT_EQ(e[5], "tc class add dev ens2 parent 1: classid 1:2 htb rate 5mbit");
  EXPECT_EQ(e[6], tc_filter(2, "1:2", "192.168.100.3"));
  // The controller is unaffected.
  EXPECT_EQ(rendered(p, "cloud_controller"), rendered(bench_cloud(), "cloud_controller"));
}

TEST(NetemTest, ClassNumbersAreHexForTc) {
  plan::Plan p = bench_cloud();
  for (int i = 0; i < 12; ++i) {
    p.nodes.push_back(node("endpoint" + std::to_string(i + 1), Tier::endpoint,
                           "192.168.100." + std::to_string(10 + i)));
    p.pair_links.push_back(link("cloud0", "endpoint" + std::to_string(i + 1), i + 1, 0, 10));
  }
  auto nn = node_netem(p, *p.find("cloud0"));
  ASSERT_TRUE(nn.ok());
  ASSERT_EQ(nn->classes.size(), 14u);  // cloud, endpoint (endpoint0), 12 pairs
  auto cmds = rendered(p, "cloud0");
  // Class 10 is 1:a with netem handle a0: (tc parses both as hex).
  EXPECT_NE(std::find(cmds.begin(), cmds.end(),
                      "tc class add dev ens2 parent 1: classid 1:a htb rate 10mbit"),
            cmds.end());
  EXPECT_NE(std::find(cmds.begin(), cmds.end(),
                      "tc qdisc add dev ens2 parent 1:a handle a0: netem delay 8ms"),
            cmds.end());
}

TEST(NetemTest, LatencyIsRttHalvesDelayAndScalesJitter) {
  plan::Plan p = bench_cloud();
  p.latency_is_rtt = true;
  auto cmds = rendered(p, "endpoint0");
  ASSERT_EQ(cmds.size(), 6u);
  // 45 / 2 and 5 / sqrt(2) rounded to tc's microseconds.
  EXPECT_EQ(
      cmds[5],
      "tc qdisc add dev ens2 parent 1:1 handle 10: netem delay 22.5ms 3.536ms distribution normal");
  auto nn = node_netem(p, *p.find("endpoint0"));
  ASSERT_TRUE(nn.ok());
  EXPECT_DOUBLE_EQ(nn->classes[0].delay_ms, 22.5);
  // Both ends together: mean 45, jitter sqrt(2 * (5/sqrt2)^2) = 5.
  EXPECT_NEAR(std::sqrt(2) * nn->classes[0].jitter_ms, 5.0, 1e-9);
}

TEST(NetemTest, NothingWithoutEmulationOrPeers) {
  plan::Plan p = bench_cloud();
  p.network_emulation = false;
  EXPECT_TRUE(rendered(p, "cloud0").empty());
  plan::Plan one;
  one.network_emulation = true;
  one.nodes = {node("endpoint0", Tier::endpoint, "192.168.100.2")};
  EXPECT_TRUE(rendered(one, "endpoint0").empty());
}

TEST(NetemTest, RejectsBadValuesBeforeRendering) {
  plan::Plan p = bench_cloud();
  p.tier_links[1].latency_avg_ms = std::nan("");
  auto r = tc_commands(p, *p.find("cloud0"), "ens2");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("link cloud <-> endpoint: latency_avg (ms)"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(r.error().exit_code, continuum::ExitCode::usage);

  p = bench_cloud();
  p.tier_links[1].throughput_mbit = 0;
  EXPECT_FALSE(tc_commands(p, *p.find("cloud0"), "ens2").ok());
  p = bench_cloud();
  p.tier_links[1].loss_pct = 101;
  EXPECT_FALSE(tc_commands(p, *p.find("cloud0"), "ens2").ok());
  p = bench_cloud();
  p.tier_links[1].latency_var_ms = -1;
  EXPECT_FALSE(tc_commands(p, *p.find("cloud0"), "ens2").ok());
  p = bench_cloud();
  p.nodes[2].ip = "192.168.100.4; reboot";
  r = tc_commands(p, *p.find("cloud0"), "ens2");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("endpoint0"), std::string::npos);

  p = bench_cloud();
  for (std::string bad : {"", "eth0; reboot", "a very long interface", "$(id)", "ens'2", "x/y"})
    EXPECT_FALSE(tc_commands(p, *p.find("cloud0"), bad).ok()) << bad;
  EXPECT_TRUE(tc_commands(p, *p.find("cloud0"), "enp0s3.100").ok());
}

/// Runs the generated script with /bin/sh and a recording `tc` first in PATH: what tc receives
/// is exactly the argv we generated, whatever characters it holds.
TEST(NetemTest, ApplyScriptPassesArgvThroughTheShellIntact) {
  auto dir = std::filesystem::temp_directory_path() / ("netem-unit-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(util::write_file_atomic(
      dir / "tc",
      "#!/bin/sh\n"
      "for a in \"$@\"; do printf '%s|' \"$a\" >> \"$LOG\"; done\n"
      "echo >> \"$LOG\"\n"
      "case \"$*\" in *FAILME*) echo 'Error: no such thing' >&2; exit 2;; esac\n",
      std::filesystem::perms::owner_all));
  std::vector<Argv> cmds = {{"tc", "qdisc", "add", "dev", "ens2", "root"},
                            {"tc", "odd value", "it's", "$(touch pwned)", "a;b", "*"},
                            {"tc", "FAILME"},
                            {"tc", "never"}};
  std::string script = apply_script("ens2", cmds, false);
  util::ProcessSpec spec;
  spec.argv = {"sh", "-c", script};
  spec.env = {{"PATH", dir.string() + ":/usr/bin:/bin"}, {"LOG", (dir / "log").string()}};
  spec.cwd = dir;
  auto r = util::run_process(spec);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 2);
  EXPECT_NE(r->err.find("continuum-netem: command 2 failed (exit 2)"), std::string::npos) << r->err;
  EXPECT_NE(r->err.find("Error: no such thing"), std::string::npos);
  auto log = util::read_file(dir / "log");
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(*log,
            "qdisc|del|dev|ens2|root|\n"
            "qdisc|add|dev|ens2|root|\n"
            "odd value|it's|$(touch pwned)|a;b|*|\n"
            "FAILME|\n");
  EXPECT_FALSE(std::filesystem::exists(dir / "pwned"));
  std::filesystem::remove_all(dir);
}

TEST(NetemTest, SummaryAndJsonForPlan) {
  plan::Plan p = bench_cloud();
  std::string s = netem_summary(p);
  EXPECT_NE(s.find("RTT = 2 x latency"), std::string::npos) << s;
  EXPECT_NE(s.find("  endpoint0 (192.168.100.4):\n    tc qdisc add dev NIC root handle 1: htb "
                   "default 999\n"),
            std::string::npos)
      << s;
  auto j = netem_json(p);
  ASSERT_TRUE(j.contains("cloud0"));
  EXPECT_EQ(j["cloud0"].size(), 7u);
  EXPECT_EQ(j["cloud0"][6],
            "tc qdisc add dev NIC parent 1:2 handle 20: netem delay 45ms 5ms distribution normal");
  p.network_emulation = false;
  EXPECT_EQ(netem_summary(p), "Network emulation: off\n");
}

// ---------------------------------------------------------------------------------------------

TEST(NetemPingTest, ParsesIputils) {
  auto s = parse_ping(
      "PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.\n\n--- 10.0.0.2 ping statistics ---\n"
      "10 packets transmitted, 10 received, 0% packet loss, time 1811ms\n"
      "rtt min/avg/max/mdev = 81.023/90.512/101.930/6.118 ms\n");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->transmitted, 10);
  EXPECT_EQ(s->received, 10);
  EXPECT_DOUBLE_EQ(s->loss_pct, 0);
  EXPECT_DOUBLE_EQ(*s->min_ms, 81.023);
  EXPECT_DOUBLE_EQ(*s->avg_ms, 90.512);
  EXPECT_DOUBLE_EQ(*s->max_ms, 101.930);
  EXPECT_DOUBLE_EQ(*s->mdev_ms, 6.118);
}

TEST(NetemPingTest, MedianOfRepliesIsTheMeasuredRtt) {
  auto s = parse_ping(
      "PING 10.213.7.4 (10.213.7.4) 56(84) bytes of data.\n"
      "64 bytes from 10.213.7.4: icmp_seq=1 ttl=64 time=91.2 ms\n"
      "64 bytes from 10.213.7.4: icmp_seq=2 ttl=64 time=88.0 ms\n"
      "64 bytes from 10.213.7.4: icmp_seq=3 ttl=64 time=190 ms\n"
      "64 bytes from 10.213.7.4: icmp_seq=4 ttl=64 time=90.4 ms\n\n"
      "--- 10.213.7.4 ping statistics ---\n"
      "4 packets transmitted, 4 received, 0% packet loss, time 603ms\n"
      "rtt min/avg/max/mdev = 88.000/114.900/190.000/43.500 ms\n");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->samples_ms, (std::vector<double>{91.2, 88.0, 190, 90.4}));
  EXPECT_DOUBLE_EQ(*s->rtt_ms(), 90.8);  // one outlier moves the mean (114.9), not the median
  EXPECT_DOUBLE_EQ(*s->avg_ms, 114.9);
  auto b = parse_ping(
      "64 bytes from 10.0.0.2: seq=0 ttl=64 time=0.071 ms\n64 bytes from 10.0.0.2: seq=1 ttl=64 "
      "time=0.093 ms\n"
      "64 bytes from 10.0.0.2: seq=2 ttl=64 time=0.080 ms\n"
      "3 packets transmitted, 3 packets received, 0% packet loss\n");
  ASSERT_TRUE(b.ok());
  EXPECT_DOUBLE_EQ(*b->rtt_ms(), 0.080);
}

TEST(NetemPingTest, ParsesErrorsAndPartialLoss) {
  auto s = parse_ping(
      "--- x ping statistics ---\n"
      "12 packets transmitted, 8 received, +4 errors, 33.3333% packet loss, time 2203ms\n"
      "rtt min/avg/max/mdev = 0.041/0.052/0.070/0.009 ms, pipe 2\n");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->received, 8);
  EXPECT_NEAR(s->loss_pct, 33.3333, 1e-9);
  EXPECT_DOUBLE_EQ(*s->avg_ms, 0.052);
}

TEST(NetemPingTest, ParsesTotalLoss) {
  auto s = parse_ping(
      "--- 10.0.0.9 ping statistics ---\n5 packets transmitted, 0 received, 100% packet loss, time "
      "4089ms\n");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->received, 0);
  EXPECT_DOUBLE_EQ(s->loss_pct, 100);
  EXPECT_FALSE(s->avg_ms.has_value());
}

TEST(NetemPingTest, ParsesBusybox) {
  auto s = parse_ping(
      "PING 10.0.0.2 (10.0.0.2): 56 data bytes\n\n--- 10.0.0.2 ping statistics ---\n"
      "5 packets transmitted, 4 packets received, 20% packet loss\n"
      "round-trip min/avg/max = 14.101/15.220/17.950 ms\n");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->received, 4);
  EXPECT_DOUBLE_EQ(s->loss_pct, 20);
  EXPECT_DOUBLE_EQ(*s->avg_ms, 15.22);
  EXPECT_FALSE(s->mdev_ms.has_value());
}

TEST(NetemPingTest, RejectsNoSummary) {
  auto s = parse_ping("ping: connect: Network is unreachable\n");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("Network is unreachable"), std::string::npos);
}

TEST(NetemPingTest, InterfaceForIp) {
  std::string out =
      "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n"
      "2: ens2    inet 192.168.100.2/16 brd 192.168.255.255 scope global ens2\\       valid_lft "
      "forever\n"
      "5: veth-c0@if4    inet 10.213.0.2/24 scope global veth-c0\\       valid_lft forever\n";
  EXPECT_EQ(interface_for_ip(out, "192.168.100.2"), "ens2");
  EXPECT_EQ(interface_for_ip(out, "10.213.0.2"), "veth-c0");
  EXPECT_EQ(interface_for_ip(out, "192.168.100.20"), "");
}

TEST(NetemVerifyTest, ToleranceIsMax2msOr20Percent) {
  EXPECT_DOUBLE_EQ(rtt_tolerance_ms(0), 2);
  EXPECT_DOUBLE_EQ(rtt_tolerance_ms(10), 2);
  EXPECT_DOUBLE_EQ(rtt_tolerance_ms(90), 18);
}

TEST(NetemVerifyTest, MeasuredPairsAreTierRepresentativesAndPairs) {
  plan::Plan p = edge_5g();
  p.pair_links = {link("edge1", "endpoint1", 1, 0, 10)};
  auto pairs = measured_pairs(p);
  std::vector<std::pair<std::string, std::string>> want = {
      {"edge0", "edge1"},     {"cloud_controller", "edge0"}, {"cloud_controller", "endpoint0"},
      {"edge0", "endpoint0"}, {"endpoint0", "endpoint1"},    {"edge1", "endpoint1"}};
  EXPECT_EQ(pairs, want);
}

/// A fake executor: answers interface discovery and ping with canned outputs (real guests are
/// in the integration and e2e tests). Named Fake as the rules ask. Before a node's tc script
/// ran, its pings show a 0.3 ms bare path (the baseline).
class FakeExecutor : public NetemExecutor {
 public:
  FakeExecutor(const plan::Plan& p, std::map<std::string, double> rtt)
      : p_(p), rtt_(std::move(rtt)) {}
  Expected<util::ExecResult> run(const std::string& node_id, const std::string& script,
                                 std::chrono::milliseconds) override {
    std::lock_guard<std::mutex> lock(mu_);
    util::ExecResult r;
    r.exit_code = 0;
    const plan::Node* n = p_.find(node_id);
    if (script == "ip -o -4 addr show") {
      r.out = "2: eth7    inet " + n->ip + "/24 scope global eth7\\ valid_lft forever\n";
    } else if (script.find("ping") != std::string::npos) {
      for (const auto& peer : p_.nodes) {
        if (script.find(" " + peer.ip + ";") == std::string::npos) continue;
        double v = applied.count(node_id) ? rtt_.at(node_id + ">" + peer.id) : 0.3;
        r.out =
            "10 packets transmitted, 10 received, 0% packet loss, time 1800ms\nrtt "
            "min/avg/max/mdev = " +
            std::to_string(v - 0.25) + "/" + std::to_string(v) + "/" + std::to_string(v + 1) +
            "/0.5 ms\n";
      }
    } else if (script.find("continuum_run") != std::string::npos) {
      applied[node_id] = script;
    } else {
      EXPECT_NE(script.find("tc qdisc del dev eth7 root"), std::string::npos) << script;
    }
    return r;
  }
  bool needs_sudo(const std::string&) const override { return true; }
  std::string describe(const std::string& id) const override { return id; }
  std::map<std::string, std::string> applied;

 private:
  const plan::Plan& p_;
  std::map<std::string, double> rtt_;
  std::mutex mu_;
};

// A ping that cannot run (Debian 13's unprivileged ping without capabilities printed
// "socktype: SOCK_RAW" and no summary) measured nothing: a failure for the caller to fail the run
// on, not one more warning that a run could end "success" with.
TEST(NetemVerifyTest, LinkThatCouldNotBeMeasuredIsAFailureNotAWarning) {
  plan::Plan p = bench_cloud();
  class NoPing : public FakeExecutor {
   public:
    using FakeExecutor::FakeExecutor;
    Expected<util::ExecResult> run(const std::string& id, const std::string& script,
                                   std::chrono::milliseconds t) override {
      if (script.find("ping") == std::string::npos) return FakeExecutor::run(id, script, t);
      util::ExecResult r;
      r.exit_code = 2;
      r.err = "ping: socktype: SOCK_RAW\nping: socket: Operation not permitted\n";
      return r;
    }
  } exec(p, {{"cloud_controller>cloud0", 0.4}, {"cloud_controller>endpoint0", 91.3}});
  auto rep = apply_and_verify(p, exec, "", nullptr);
  ASSERT_TRUE(rep.ok()) << rep.error().message;
  ASSERT_EQ(rep->links.size(), 2u);
  EXPECT_EQ(rep->links[0].status, "error");
  EXPECT_TRUE(rep->warnings.empty()) << util::join(rep->warnings, "\n");
  ASSERT_EQ(rep->failures.size(), 2u);
  EXPECT_NE(rep->failures[0].find("SOCK_RAW"), std::string::npos) << rep->failures[0];
}

TEST(NetemVerifyTest, FakeExecutorReportsTableCsvAndWarnings) {
  plan::Plan p = bench_cloud();
  auto dir = std::filesystem::temp_directory_path() / ("netem-run-" + std::to_string(::getpid()));
  FakeExecutor ok(p, {{"cloud_controller>cloud0", 0.4}, {"cloud_controller>endpoint0", 91.3}});
  auto rep = apply_and_verify(p, ok, dir, nullptr);
  ASSERT_TRUE(rep.ok()) << rep.error().message;
  ASSERT_EQ(ok.applied.size(), 3u);
  EXPECT_NE(
      ok.applied["cloud0"].find("sudo -n tc qdisc add dev eth7 root handle 1: htb default 999"),
      std::string::npos);
  ASSERT_EQ(rep->links.size(), 2u);
  EXPECT_DOUBLE_EQ(rep->links[1].configured_rtt_ms, 90);  // both ends delay 45 ms
  EXPECT_NEAR(rep->links[1].configured_jitter_ms, std::sqrt(50.0), 1e-9);
  EXPECT_EQ(rep->links[1].status, "ok");
  ASSERT_TRUE(rep->links[1].baseline_rtt_ms.has_value());
  EXPECT_DOUBLE_EQ(*rep->links[1].baseline_rtt_ms, 0.3);
  EXPECT_DOUBLE_EQ(rep->links[1].expected_rtt_ms(), 90.3);
  EXPECT_TRUE(rep->warnings.empty()) << util::join(rep->warnings, "\n");
  auto csv = util::read_file(dir / "infrastructure" / "network.csv");
  ASSERT_TRUE(csv.ok());
  EXPECT_NE(
      csv->find("cloud_controller,endpoint0,192.168.100.2,192.168.100.4,90.000,7.071,0.000,0.300,"
                "90.300,91.300,91.300,91.050,92.300,0.500,0.000,1.000,1.11,ok,0.000,0.000,10.000,0."
                "000,,,,\n"),
      std::string::npos)
      << *csv;
  EXPECT_TRUE(std::filesystem::exists(dir / "infrastructure" / "tc" / "endpoint0.sh"));

  FakeExecutor slow(p, {{"cloud_controller>cloud0", 0.4}, {"cloud_controller>endpoint0", 130}});
  rep = apply_and_verify(p, slow, dir, nullptr);
  ASSERT_TRUE(rep.ok());
  ASSERT_EQ(rep->warnings.size(), 1u);
  EXPECT_NE(rep->warnings[0].find(
                "link cloud_controller -> endpoint0: measured RTT 130.00 ms vs configured 90.00 ms "
                "+ baseline 0.30 ms (+39.70 ms"),
            std::string::npos)
      << rep->warnings[0];
  p.network_strict = true;
  rep = apply_and_verify(p, slow, dir, nullptr);
  ASSERT_FALSE(rep.ok());
  EXPECT_NE(rep.error().message.find("cloud_controller -> endpoint0"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(NetemVerifyTest, DryRunRecordsScriptsAndMeasuresNothing) {
  plan::Plan p = bench_cloud();
  DryRunNetemExecutor dry;
  auto rep = apply_and_verify(p, dry, "", nullptr);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->links.empty());
  auto s = dry.scripts();
  ASSERT_EQ(s.size(), 3u);
  EXPECT_NE(s["endpoint0"][0].find(
                "continuum_run 5 tc qdisc add dev NIC parent 1:1 handle 10: netem delay 45ms"),
            std::string::npos)
      << s["endpoint0"][0];
}

}  // namespace
}  // namespace continuum::infra

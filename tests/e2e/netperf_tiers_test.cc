// End to end, every tier booted and every emulated limit measured (issue 14):
// configuration/network_benchmark.cfg, unmodified, on TCG VMs of the `energy` image (Debian 13,
// which packages netperf) in a network namespace of its own with its own libvirtd
// (tests/e2e/harness.h). One cloud, one edge (2 vCPUs, 20 MB/s write limit) and one endpoint
// (quota 0.5) with the 5g preset.
//
// Asserted on the run directory:
//  - network.csv: the three tier links' RTT and loss judged ok, with the throughput of their
//    direction from the netperf matrix;
//  - netperf.csv: the original's six ordered pairs (edge included), each with a TCP_RR latency near
//    the configured RTT and a TCP_STREAM throughput within the tolerance of the 5g rate where the
//    platform can push it, or "platform-limited" (what the platform pushes, bare or through netem
//    without the rate limit, below the configured rate) where it cannot;
//  - resources.csv: vCPUs and memory of every VM, the endpoint's quota of 0.5 as about half a
//    core, the edge's write limit as about 20 MB/s, no pinning asked and none found;
//  - summary.md has both tables, and nothing is left in libvirt (delete = True).
// The matrix and the checks are printed (the closing note of issue 14 quotes them).
#include <gtest/gtest.h>
#include <libvirt/libvirt.h>

#include <map>

#include "continuum/infra/netperf.h"
#include "e2e/harness.h"
#include "support/csv.h"

using namespace continuum;
using namespace continuum::e2e;

namespace {

class NetperfTiers : public LibvirtNetnsTest {};

using test_support::csv_maps;

double num(const std::map<std::string, std::string>& m, const std::string& k) {
  auto it = m.find(k);
  if (it == m.end() || it->second.empty()) {
    ADD_FAILURE() << "no value for " << k;
    return -1;
  }
  return std::stod(it->second);
}

TEST_F(NetperfTiers, EveryPairAndEveryLimitMeasuredAndJudged) {
  ::setenv("HOME", kWorkRoot.c_str(), 1);  // the image cache persists across runs, like a home
  ::unsetenv("CONTINUUM_GUEST_APP_DIR");
  auto img = build_image("energy");
  ASSERT_EQ(img.exit_code, 0) << img.err;

  const fs::path cfg = fs::path(CONTINUUM_SOURCE_DIR) / "configuration" / "network_benchmark.cfg";
  const fs::path runs = work_ / "runs";
  auto t0 = Clock::now();
  auto r =
      run({"ip", "netns", "exec", ns_, CONTINUUM_BINARY, "--output", runs.string(), cfg.string()},
          3000s, [](const std::string& l, bool) {
            std::printf("  [run] %s\n", l.c_str());
            std::fflush(stdout);
          });
  timing("network_benchmark_total", secs(Clock::now() - t0));
  if (fs::exists(runs))
    for (const auto& e : fs::directory_iterator(runs)) run_dir_ = e.path();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_FALSE(run_dir_.empty());
  const fs::path infra = run_dir_ / "infrastructure";

  // 1. The RTT and loss of the three tier links, with their direction's throughput.
  auto links = csv_maps(infra / "network.csv");
  ASSERT_EQ(links.size(), 3u);
  for (const auto& l : links) {
    SCOPED_TRACE(l.at("from") + " -> " + l.at("to"));
    EXPECT_EQ(l.at("status"), "ok");
    EXPECT_LE(num(l, "loss_pct"), num(l, "loss_accepted_high_pct"));
    EXPECT_FALSE(l.at("measured_mbit").empty());
    EXPECT_TRUE(l.at("throughput_status") == "ok" ||
                l.at("throughput_status") == "platform-limited")
        << l.at("throughput_status");
  }

  // 2. The netperf matrix: six ordered pairs, edge in four of them.
  auto perf = csv_maps(infra / "netperf.csv");
  std::printf("%s", util::read_file(infra / "netperf.csv")->c_str());
  ASSERT_EQ(perf.size(), 6u);
  int with_edge = 0;
  for (const auto& p : perf) {
    SCOPED_TRACE(p.at("from") + " -> " + p.at("to"));
    with_edge += p.at("from_tier") == "edge" || p.at("to_tier") == "edge";
    const double cfg_rtt = num(p, "configured_rtt_ms"), rate = num(p, "configured_mbit");
    const double rr_ms = num(p, "rr_mean_us") / 1000, mbit = num(p, "stream_mbit");
    const double bare = num(p, "baseline_mbit");
    // One TCP_RR transaction is one round trip: the configured RTT plus the bare path and both
    // guests' netperf under TCG, 3-4.5 ms at 15 ms when the host is idle, more beside other work
    // (CI). The bound still tells the delay applied once from the delay applied twice (30 ms).
    EXPECT_GE(rr_ms, cfg_rtt * 0.9);
    EXPECT_LE(rr_ms, cfg_rtt + std::max(10.0, 0.25 * cfg_rtt));
    EXPECT_GT(num(p, "rr_transactions_per_s"), 0);
    if (p.at("status") == "platform-limited") {
      // What the platform pushes: the bare path, or the emulated path with the rate lifted
      // (measured only for pairs that fell short), whichever is lower.
      double ceiling = bare;
      if (!p.at("unlimited_mbit").empty()) ceiling = std::min(bare, num(p, "unlimited_mbit"));
      EXPECT_LT(ceiling, rate / 0.8);
      EXPECT_LE(mbit, 1.1 * rate);
    } else {
      EXPECT_EQ(p.at("status"), "ok");
      EXPECT_GE(mbit, 0.75 * infra::kPayloadFraction * rate);
      EXPECT_LE(mbit, 1.1 * rate);
    }
  }
  EXPECT_EQ(with_edge, 4);
  EXPECT_TRUE(fs::exists(infra / "netperf" / "cloud0_to_edge0_TCP_RR.txt"));

  // 3. What each VM got.
  auto res = csv_maps(infra / "resources.csv");
  std::printf("%s", util::read_file(infra / "resources.csv")->c_str());
  std::map<std::string, std::map<std::string, std::string>> by;
  for (const auto& row : res) by[row.at("vm") + "." + row.at("check")] = row;
  for (const char* vm : {"cloud0", "edge0", "endpoint0"}) {
    SCOPED_TRACE(vm);
    EXPECT_EQ(by[std::string(vm) + ".vcpus"]["status"], "ok");
    EXPECT_EQ(by[std::string(vm) + ".memory"]["status"], "ok");
    EXPECT_EQ(by[std::string(vm) + ".pinning"]["status"], "not-limited");
  }
  EXPECT_EQ(num(by["edge0.vcpus"], "value"), 2);
  const auto& quota = by["endpoint0.cpu_quota"];
  EXPECT_EQ(quota.at("status"), "ok") << quota.at("message");
  EXPECT_NEAR(num(quota, "value"), 0.5, 0.1);  // half a core
  const auto& write = by["edge0.disk_write"];
  EXPECT_EQ(write.at("status"), "ok") << write.at("message");
  EXPECT_NEAR(num(write, "value"), 20, 4);  // 20 MB/s
  EXPECT_EQ(by["edge0.disk_read"]["status"], "not-limited");
  EXPECT_FALSE(by.count("cloud0.cpu_quota"));  // no quota, nothing to measure

  auto summary = util::read_file(run_dir_ / "summary.md");
  ASSERT_TRUE(summary.ok());
  EXPECT_NE(summary->find("netperf matrix (TCP_RR, TCP_STREAM; 5 s per test)"), std::string::npos);
  EXPECT_NE(summary->find("## VM resources"), std::string::npos);

  // 4. delete = True: nothing left in libvirt.
  virConnectPtr c = virConnectOpen("qemu:///system");
  ASSERT_NE(c, nullptr);
  virDomainPtr* doms = nullptr;
  int n = virConnectListAllDomains(c, &doms, 0);
  for (int i = 0; i < n; ++i) virDomainFree(doms[i]);
  free(doms);  // NOLINT: allocated by libvirt
  virConnectClose(c);
  EXPECT_EQ(n, 0);
  destroyed_ = true;
}

}  // namespace

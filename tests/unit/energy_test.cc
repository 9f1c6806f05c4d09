// Energy math: trapezoid integration, counter differencing with resets/wraps/torn reads, the
// one-sample spike rule (Scaphandre #442), attribution to phases, and the CSV files.
#include "continuum/energy/energy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "continuum/energy/scraper.h"
#include "continuum/util/files.h"

using namespace continuum;
using namespace continuum::energy;

namespace {
Series make(std::vector<double> t, std::vector<double> v) {
  return Series{std::move(t), std::move(v)};
}
}  // namespace

TEST(Energy, TrapezoidIsExactForLinearPower) {
  // P(t) = 10 + 2t sampled every 0.5 s; ∫_1^3.25 = [10t + t²]_1^3.25 = 32.5+10.5625-11 = 32.0625
  Series w;
  for (int i = 0; i <= 10; ++i) {
    w.t.push_back(i * 0.5);
    w.v.push_back(10 + 2 * i * 0.5);
  }
  double cov = 0;
  EXPECT_NEAR(integrate(w, 1.0, 3.25, &cov), 32.0625, 1e-9);
  EXPECT_DOUBLE_EQ(cov, 2.25);
  // Outside the samples nothing is invented: coverage says how much was measured.
  EXPECT_NEAR(integrate(w, -2, 1, &cov), 10 + 1, 1e-9);
  EXPECT_DOUBLE_EQ(cov, 1);
  EXPECT_EQ(integrate(w, 6, 8, &cov), 0);
  EXPECT_EQ(cov, 0);
}

TEST(Energy, CounterDifferencedAndInterpolated) {
  auto j = counter_to_joules(make({0, 1, 2, 3}, {5e6, 15e6, 25e6, 35e6}));  // 10 W
  ASSERT_EQ(j.size(), 4u);
  EXPECT_DOUBLE_EQ(j.v[3], 30);
  EXPECT_NEAR(difference(j, 0.5, 2.5), 20, 1e-9);
}

TEST(Energy, CounterResetCountsValueSinceRestart) {
  CounterStats st;
  // 10 W, then the exporter restarts at 0 (between t=2 and t=3 it counted 4e6 µJ from 0).
  auto j = counter_to_joules(make({0, 1, 2, 3, 4}, {100e6, 110e6, 120e6, 4e6, 14e6}), {}, &st);
  EXPECT_EQ(st.resets, 1u);
  EXPECT_EQ(st.wraps, 0u);
  EXPECT_DOUBLE_EQ(j.v.back(), 10 + 10 + 4 + 10);
}

TEST(Energy, CounterWrapAtRaplRange) {
  CounterStats st;
  double R = 262143328850.0;
  auto j = counter_to_joules(make({0, 1, 2}, {R - 15e6, R - 5e6, 5e6}), {}, &st);
  EXPECT_EQ(st.wraps, 1u);
  EXPECT_EQ(st.resets, 0u);
  EXPECT_DOUBLE_EQ(j.v.back(), 20);
}

TEST(Energy, CounterTornReadsDropped) {
  CounterStats st;
  // #442: the file is read while being rewritten: once as 0, once as a cut number ("1" of "130e6"
  // read as a short prefix), once too large; each time the next sample continues the old line.
  auto j = counter_to_joules(
      make({0, 1, 2, 3, 4, 5, 6, 7}, {100e6, 110e6, 0, 130e6, 13e3, 150e6, 9e12, 170e6}), {}, &st);
  EXPECT_EQ(st.torn_reads, 3u);
  EXPECT_EQ(st.resets, 0u);
  EXPECT_DOUBLE_EQ(j.v.back(), 70);
  EXPECT_EQ(j.size(), 5u);
}

TEST(Energy, GaugeSpikeRejected) {
  auto w = make({0, 1, 2, 3, 4, 5}, {40, 41, 3000, 42, 41, 40});
  EXPECT_EQ(reject_spikes(w), 1u);
  ASSERT_EQ(w.size(), 5u);
  EXPECT_DOUBLE_EQ(w.t[2], 3);
  // A real step up (stays high) is not a spike, nor is modest noise.
  auto step = make({0, 1, 2, 3}, {10, 10, 200, 200});
  EXPECT_EQ(reject_spikes(step), 0u);
  auto noise = make({0, 1, 2}, {1, 4, 1});  // 4x but only 3 W: below min_jump_watts
  EXPECT_EQ(reject_spikes(noise), 0u);
}

TEST(Energy, PowerFromJoules) {
  auto p = power_from_joules(make({0, 2, 4}, {0, 20, 60}));
  ASSERT_EQ(p.size(), 2u);
  EXPECT_DOUBLE_EQ(p.t[0], 1);
  EXPECT_DOUBLE_EQ(p.v[0], 10);
  EXPECT_DOUBLE_EQ(p.v[1], 20);
}

TEST(Energy, BuildSeriesAndAttributePerPhaseAndRepeat) {
  std::vector<SampleRow> rows;
  for (int i = 0; i <= 20; ++i) {
    double t = i * 0.5;
    // vm a: 10 W constant, with both gauge and counter; vm b: gauge only, 20 W, one torn spike.
    rows.push_back({"", t, "a", "u", kPowerMetric, "{value_source=\"powercap_rapl_psys\"}", 10e6});
    rows.push_back({"", t, "a", "u", kPowerMetric, "{value_source=\"other\"}", 99e6});  // ignored
    rows.push_back({"", t, "a", "u", kEnergyMetric, "", 1e6 + t * 10e6});
    rows.push_back({"", t, "b", "u", kPowerMetric, "", i == 7 ? 5e9 : 20e6});
    rows.push_back({"", t, "b", "u", "scaph_self_version", "", 1});
  }
  auto vms = build_series(rows);
  ASSERT_EQ(vms.size(), 2u);
  EXPECT_EQ(vms[0].vm, "a");
  EXPECT_EQ(vms[1].spikes_rejected, 1u);
  std::vector<record::PhaseInterval> ph = {
      {"benchmark", "app", "", 0, 1.0, 5.0},
      {"workload:x", "app", "", 0, 1.0, 3.0},
      {"benchmark", "app", "", 1, 5.0, 9.0},
      {"infrastructure", "", "", -1, -10, -5},  // no samples: no row
  };
  auto out = attribute(vms, ph);
  auto find = [&](const std::string& phase, int rep, const std::string& vm) -> const EnergyRow* {
    for (const auto& r : out)
      if (r.phase == phase && r.repeat == rep && r.vm == vm) return &r;
    return nullptr;
  };
  const auto* a0 = find("benchmark", 0, "a");
  ASSERT_TRUE(a0);
  EXPECT_EQ(a0->source, "counter");
  EXPECT_NEAR(a0->joules, 40, 1e-6);
  EXPECT_NEAR(a0->joules_power, 40, 1e-6);
  EXPECT_DOUBLE_EQ(a0->coverage, 1);
  const auto* b0 = find("workload:x", 0, "b");
  ASSERT_TRUE(b0);
  EXPECT_EQ(b0->source, "power");
  EXPECT_NEAR(b0->joules, 40, 1e-6);  // the spike did not count
  EXPECT_NEAR(b0->mean_watts(), 20, 1e-6);
  const auto* t1 = find("total", 1, "b");
  ASSERT_TRUE(t1);
  EXPECT_NEAR(t1->joules, 80, 1e-6);
  EXPECT_FALSE(find("infrastructure", -1, "a"));
}

TEST(Energy, CsvRoundTrips) {
  auto dir = std::filesystem::temp_directory_path() / ("energy_csv_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  SampleRow r{"2026-11-29T10:00:00.000000001Z",
              1.25,
              "cloud0_u",
              "http://127.0.0.1:8081/metrics",
              "scaph_host_power_microwatts",
              "{a=\"x,\\\"y\\\"\"}",
              12.5e6};
  std::string text = samples_csv_header() + "\n" + samples_csv_line(r) + samples_csv_line(r);
  ASSERT_TRUE(util::write_file_atomic(dir / "samples.csv", text).ok());
  auto rows = read_samples(dir / "samples.csv");
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].labels, r.labels);
  EXPECT_DOUBLE_EQ((*rows)[0].value, 12.5e6);
  EXPECT_DOUBLE_EQ((*rows)[0].t, 1.25);

  ASSERT_TRUE(util::write_file_atomic(dir / "bad.csv",
                                      samples_csv_header() + "\nx,y\n" + samples_csv_line(r))
                  .ok());
  auto bad = read_samples(dir / "bad.csv");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("bad.csv:2"), std::string::npos) << bad.error().message;

  EnergyRow e;
  e.app = "image_classification";
  e.phase = "benchmark";
  e.vm = "cloud0_u";
  e.repeat = 2;
  e.start = 1;
  e.end = 3;
  e.joules = 42;
  e.source = "power";
  e.joules_power = 42;
  e.coverage = 1;
  e.samples = 9;
  ASSERT_TRUE(util::write_file_atomic(dir / "energy.csv", energy_csv({e})).ok());
  auto back = read_energy_csv(dir / "energy.csv");
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_EQ(back->size(), 1u);
  EXPECT_EQ((*back)[0].repeat, 2);
  EXPECT_DOUBLE_EQ((*back)[0].joules, 42);
  EXPECT_TRUE(std::isnan((*back)[0].joules_counter));
  std::filesystem::remove_all(dir);
}

TEST(Energy, TargetsHostPortsInPlanOrderOrGuestAddresses) {
  plan::Plan p;
  p.nodes.resize(3);
  p.nodes[0].id = "cloud_controller";
  p.nodes[0].name = "cloud_controller_u";
  p.nodes[0].ip = "192.168.100.2";
  p.nodes[1].id = "cloud0";
  p.nodes[1].name = "cloud0_u";
  p.nodes[1].ip = "192.168.100.3";
  p.nodes[2].id = "endpoint0";
  p.nodes[2].name = "endpoint0_u";
  p.nodes[2].ip = "192.168.100.4";
  config::Energy e;
  auto host = make_targets(e, p);
  ASSERT_EQ(host.size(), 3u);
  EXPECT_EQ(host[0].url, "http://127.0.0.1:8080/metrics");
  EXPECT_EQ(host[2].url, "http://127.0.0.1:8082/metrics");
  EXPECT_EQ(host[1].vm, "cloud0_u");
  e.exporter = continuum::config::Exporter::guest;
  e.guest_port = 9100;
  e.path = "m";
  infra::Deployment d;
  d.nodes.push_back({"cloud0", "cloud0_u", "cloud", "10.9.9.9", "u", 22, "", 0});
  auto guest = make_targets(e, p, &d);
  EXPECT_EQ(guest[0].url, "http://192.168.100.2:9100/m");
  EXPECT_EQ(guest[1].url, "http://10.9.9.9:9100/m");
  e.exporter = continuum::config::Exporter::host;
  e.host_address = "::1";
  EXPECT_EQ(make_targets(e, p)[0].url, "http://[::1]:8080/m");
}

TEST(Energy, KeepMetricFilter) {
  EXPECT_TRUE(keep_metric("scaph_host_power_microwatts", false));
  EXPECT_TRUE(keep_metric("scaph_domain_energy_microjoules", false));
  EXPECT_TRUE(keep_metric("scaph_self_cpu_usage_percent", false));
  EXPECT_TRUE(keep_metric("scaph_process_power_consumption_microwatts", true));
  EXPECT_TRUE(keep_metric("scaph_process_power_consumption_microwats", true));
  EXPECT_FALSE(keep_metric("scaph_process_power_consumption_microwatts", false));
  EXPECT_FALSE(keep_metric("go_goroutines", false));
  EXPECT_FALSE(keep_metric("node_textfile_scrape_error", false));
}

TEST(Energy, CoverageBelowMinimumFailsNamingExporterAndReason) {
  // 10 s window at 1 s: 10 scrapes expected. 9 is fine at 0.5, 4 is not, 0 names the last error.
  std::vector<TargetStats> stats(4);
  stats[0] = {"cloud0_u", "http://127.0.0.1:8080/metrics", 10, 0, 30, 0, 9, ""};
  stats[1] = {"edge0_u", "http://127.0.0.1:8081/metrics",           4, 6, 12, 0,
              4,         "Failed to connect to 127.0.0.1 port 8081"};
  stats[2] = {"endpoint0_u",
              "http://127.0.0.1:8082/metrics",
              0,
              10,
              0,
              0,
              0,
              "Failed to connect to 127.0.0.1 port 8082 after 0 ms: Couldn't connect to server"};
  // Answers every time, but never with power or energy: no energy data either.
  stats[3] = {"endpoint1_u",
              "http://127.0.0.1:8083/metrics",
              10,
              0,
              0,
              0,
              0,
              "answered without scaph_host_power_microwatts or scaph_host_energy_microjoules"};
  auto v = judge_coverage(stats, 10.2, 1.0, 0.5);
  ASSERT_EQ(v.size(), 4u);
  EXPECT_DOUBLE_EQ(v[0].expected, 10);
  EXPECT_DOUBLE_EQ(v[0].coverage, 0.9);
  EXPECT_TRUE(v[0].ok);
  EXPECT_FALSE(v[1].ok);
  EXPECT_DOUBLE_EQ(v[1].coverage, 0.4);
  EXPECT_FALSE(v[2].ok);
  EXPECT_FALSE(v[3].ok);
  EXPECT_NE(v[3].reason.find("answered without"), std::string::npos);

  std::string m = coverage_failure(v, 0.5);
  EXPECT_NE(m.find("3 of 4 VM(s) below [energy] min_coverage = 0.5"), std::string::npos) << m;
  EXPECT_EQ(m.find("cloud0_u"), std::string::npos) << m;
  EXPECT_NE(m.find("edge0_u: http://127.0.0.1:8081/metrics gave 4 of 10 expected samples (40 %): "
                   "Failed to connect"),
            std::string::npos)
      << m;
  EXPECT_NE(
      m.find("endpoint0_u: http://127.0.0.1:8082/metrics gave 0 of 10 expected samples (0 %)"),
      std::string::npos)
      << m;

  // Exactly at the threshold passes; a 0 threshold never fails; a window shorter than one
  // interval expects one scrape.
  EXPECT_TRUE(judge_coverage({stats[0]}, 18.0, 1.0, 0.5)[0].ok);  // 9 of 18
  EXPECT_TRUE(judge_coverage({stats[2]}, 10.0, 1.0, 0.0)[0].ok);
  auto short_window = judge_coverage({stats[0]}, 0.3, 1.0, 0.5);
  EXPECT_DOUBLE_EQ(short_window[0].expected, 1);
  EXPECT_TRUE(short_window[0].ok);
  EXPECT_EQ(coverage_failure(judge_coverage({stats[0]}, 10, 1, 0.5), 0.5), "");
  // No scrape at all and no error recorded (the window ended before the first answer).
  TargetStats none{"x", "http://127.0.0.1:1/m", 0, 0, 0, 0, 0, ""};
  EXPECT_EQ(judge_coverage({none}, 5, 1, 0.5)[0].reason, "no scrape completed in the window");
}

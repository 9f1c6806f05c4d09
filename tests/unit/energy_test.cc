// Energy math: trapezoid integration, counter differencing with resets/wraps/torn reads, the
// one-sample spike rule (Scaphandre #442), attribution to phases, and the CSV files.
#include "continuum/energy/energy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "continuum/energy/scraper.h"
#include "continuum/util/files.h"
#include "continuum/util/strings.h"

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

// ---------------------------------------------------------------- exporter kinds (issue 13)

namespace {

// Runs `texts` through the scraper's conversion as scrapes 1 s apart (t = 0, 1, 2, ...).
std::vector<SampleRow> scrape_texts(const Target& target, const std::vector<std::string>& texts,
                                    std::vector<bool>* energy = nullptr) {
  std::vector<SampleRow> rows;
  for (size_t i = 0; i < texts.size(); ++i) {
    auto got = rows_from_exposition(target, texts[i], static_cast<double>(i),
                                    "2026-12-02T00:00:0" + std::to_string(i) + ".000000000Z");
    EXPECT_EQ(got.parse_errors, 0u) << texts[i];
    if (energy) energy->push_back(got.energy_sample);
    rows.insert(rows.end(), got.rows.begin(), got.rows.end());
  }
  return rows;
}

double total_joules(const std::vector<SampleRow>& rows, double a, double b) {
  auto vms = build_series(rows);
  if (vms.size() != 1) return NAN;
  auto out = attribute(vms, {{"benchmark", "app", "", 0, a, b}});
  for (const auto& r : out)
    if (r.phase == "benchmark") return r.joules;
  return NAN;
}

// What Scaphandre 1.0 serves (random label order, per-process rows of every process).
std::string scaphandre_text(double power_uw, double energy_uj) {
  return "# HELP scaph_host_power_microwatts Power measurement on the whole host, in microwatts\n"
         "# TYPE scaph_host_power_microwatts gauge\n"
         "scaph_host_power_microwatts{value_source=\"powercap_rapl_psys\"} " +
         util::format_fixed(power_uw, 0) +
         "\n# HELP scaph_host_energy_microjoules Raw extracted energy consumption, in "
         "microjoules\n# TYPE scaph_host_energy_microjoules counter\n"
         "scaph_host_energy_microjoules{value_source=\"powercap_rapl_psys\"} " +
         util::format_fixed(energy_uj, 0) +
         "\n# HELP scaph_process_power_consumption_microwatts Power consumption of the process\n"
         "# TYPE scaph_process_power_consumption_microwatts gauge\n"
         "scaph_process_power_consumption_microwatts{exe=\"sshd\",pid=\"812\",cmdline=\"sshd: "
         "/usr/sbin/sshd -D\"} 1200\n"
         "scaph_process_power_consumption_microwatts{pid=\"4411\",vmname=\"cloud0_u\",exe=\"qemu-"
         "system-x86_64\",cmdline=\"qemu-system-x86_64 -name guest=cloud0_u\"} 9100000\n"
         "# HELP scaph_self_cpu_usage_percent CPU % consumed by scaphandre\n"
         "# TYPE scaph_self_cpu_usage_percent gauge\nscaph_self_cpu_usage_percent 0.7\n";
}

// What Debian's prometheus-node-exporter 1.5 serves with its rapl collector on a two-socket host
// (names from the zone `name` file, `-N` stripped into `index`), plus its own metrics.
std::string node_exporter_text(double pkg0, double pkg1, double dram0, double dram1, double core0,
                               double psys) {
  auto n = [](double j) { return util::format_fixed(j, 6); };
  return "# HELP go_goroutines Number of goroutines that currently exist.\n"
         "# TYPE go_goroutines gauge\ngo_goroutines 8\n"
         "# HELP node_rapl_core_joules_total Current RAPL core value in joules\n"
         "# TYPE node_rapl_core_joules_total counter\n"
         "node_rapl_core_joules_total{index=\"0\",path=\"/sys/class/powercap/intel-rapl:0:0\"} " +
         n(core0) +
         "\n# HELP node_rapl_dram_joules_total Current RAPL dram value in joules\n"
         "# TYPE node_rapl_dram_joules_total counter\n"
         "node_rapl_dram_joules_total{index=\"0\",path=\"/sys/class/powercap/intel-rapl:0:1\"} " +
         n(dram0) +
         "\nnode_rapl_dram_joules_total{index=\"1\",path=\"/sys/class/powercap/intel-rapl:1:1\"} " +
         n(dram1) +
         "\n# HELP node_rapl_package_joules_total Current RAPL package value in joules\n"
         "# TYPE node_rapl_package_joules_total counter\n"
         "node_rapl_package_joules_total{index=\"0\",path=\"/sys/class/powercap/intel-rapl:0\"} " +
         n(pkg0) +
         "\nnode_rapl_package_joules_total{index=\"1\",path=\"/sys/class/powercap/"
         "intel-rapl:1\"} " +
         n(pkg1) +
         "\n# HELP node_rapl_psys_joules_total Current RAPL psys value in joules\n"
         "# TYPE node_rapl_psys_joules_total counter\n"
         "node_rapl_psys_joules_total{index=\"0\",path=\"/sys/class/powercap/intel-rapl:2\"} " +
         n(psys) +
         "\n# HELP node_scrape_collector_success node_exporter: Whether a collector succeeded.\n"
         "# TYPE node_scrape_collector_success gauge\n"
         "node_scrape_collector_success{collector=\"rapl\"} 1\n";
}

// What Kepler (0.10+) serves for two VMs on one host: per-VM counters and gauges per RAPL zone,
// node-level counters, build info.
std::string kepler_text(double cloud_pkg, double cloud_dram, double cloud_core, double edge_pkg,
                        double cloud_watts) {
  auto vm = [](const char* name, const char* zone, double v, const char* metric) {
    return std::string(metric) +
           "{hypervisor=\"kvm\",node_name=\"host1\",state=\"running\","
           "vm_id=\"5c0e7a2e-0b1d-4a53-9f0a-" +
           std::string(name).substr(0, 4) + "00000000\",vm_name=\"" + name + "\",zone=\"" + zone +
           "\"} " + util::format_fixed(v, 6) + "\n";
  };
  return "# HELP kepler_build_info A metric with a constant '1' value labeled with version\n"
         "# TYPE kepler_build_info gauge\n"
         "kepler_build_info{arch=\"amd64\",branch=\"\",goversion=\"go1.23\",revision=\"\","
         "version=\"v0.11.0\"} 1\n"
         "# HELP kepler_node_cpu_joules_total Energy consumption of cpu at node level in joules\n"
         "# TYPE kepler_node_cpu_joules_total counter\n"
         "kepler_node_cpu_joules_total{node_name=\"host1\",path=\"/sys/class/powercap/"
         "intel-rapl:0\",zone=\"package\"} 98765.5\n"
         "# HELP kepler_vm_cpu_joules_total Energy consumption of cpu at vm level in joules\n"
         "# TYPE kepler_vm_cpu_joules_total counter\n" +
         vm("cloud0_u", "package", cloud_pkg, "kepler_vm_cpu_joules_total") +
         vm("cloud0_u", "dram", cloud_dram, "kepler_vm_cpu_joules_total") +
         vm("cloud0_u", "core", cloud_core, "kepler_vm_cpu_joules_total") +
         vm("edge0_u", "package", edge_pkg, "kepler_vm_cpu_joules_total") +
         "# HELP kepler_vm_cpu_watts Power consumption of cpu at vm level in watts\n"
         "# TYPE kepler_vm_cpu_watts gauge\n" +
         vm("cloud0_u", "package", cloud_watts, "kepler_vm_cpu_watts") +
         vm("edge0_u", "package", 3.0, "kepler_vm_cpu_watts");
}

}  // namespace

TEST(EnergyKinds, TableNamesEveryKindOnce) {
  ASSERT_EQ(kind_specs().size(), 3u);
  EXPECT_EQ(kind_spec(config::ExporterKind::scaphandre).name, "scaphandre");
  EXPECT_EQ(kind_spec(config::ExporterKind::node_exporter).name, "node_exporter");
  EXPECT_EQ(kind_spec(config::ExporterKind::kepler).name, "kepler");
  for (const auto& k : kind_specs())
    EXPECT_EQ(config::name(k.kind), k.name) << "the table spells kinds as the config does";
  EXPECT_EQ(kind_of_metric("node_rapl_dram_joules_total"),
            &kind_spec(config::ExporterKind::node_exporter));
  EXPECT_EQ(kind_of_metric("node_rapl_core_joules_total"), nullptr);  // not part of the figure
  // The coverage message names the kind's metrics.
  EXPECT_EQ(wanted_metrics(kind_spec(config::ExporterKind::scaphandre)),
            "scaph_host_power_microwatts or scaph_host_energy_microjoules");
  EXPECT_EQ(wanted_metrics(kind_spec(config::ExporterKind::node_exporter)),
            "node_rapl_package_joules_total or node_rapl_dram_joules_total");
  EXPECT_EQ(wanted_metrics(kind_spec(config::ExporterKind::kepler), "cloud0_u"),
            "kepler_vm_cpu_watts{vm_name=\"cloud0_u\",zone=package|dram} or "
            "kepler_vm_cpu_joules_total{vm_name=\"cloud0_u\",zone=package|dram}");
}

TEST(EnergyKinds, ScaphandreCounterInMicrojoulesGaugeInMicrowatts) {
  Target t{"cloud0_u", "http://127.0.0.1:8081/metrics", config::ExporterKind::scaphandre};
  // 25 W for 2 s; the counter grows by 25e6 µJ a second.
  auto rows = scrape_texts(t, {scaphandre_text(25e6, 7e9), scaphandre_text(25e6, 7.025e9),
                               scaphandre_text(25e6, 7.05e9)});
  size_t up = 0, per_process = 0;
  for (const auto& r : rows) {
    if (r.metric == kUpMetric) {
      ++up;
      EXPECT_EQ(r.value, 1);
    }
    if (r.metric.starts_with("scaph_process_")) {
      ++per_process;
      EXPECT_NE(r.labels.find("vmname=\"cloud0_u\""), std::string::npos) << r.labels;
    }
  }
  EXPECT_EQ(up, 3u);
  EXPECT_EQ(per_process, 3u);  // sshd's row dropped, the VM's kept
  // node-exporter's textfile collector fills missing labels with "": still no VM.
  auto filled = rows_from_exposition(
      t,
      "scaph_process_power_consumption_microwatts{cmdline=\"sshd\",exe=\"sshd\",pid=\"812\","
      "vmname=\"\"} 1200\n",
      0, "x");
  ASSERT_EQ(filled.rows.size(), 1u);
  EXPECT_EQ(filled.rows[0].metric, kUpMetric);
  auto vms = build_series(rows);
  ASSERT_EQ(vms.size(), 1u);
  EXPECT_EQ(vms[0].kind, "scaphandre");
  EXPECT_NEAR(vms[0].watts.v[1], 25, 1e-9);
  EXPECT_NEAR(total_joules(rows, 0, 2), 50, 1e-9);
}

TEST(EnergyKinds, NodeExporterSumsPackageAndDramOverSocketsInJoules) {
  Target t{"host", "http://127.0.0.1:9100/metrics", config::ExporterKind::node_exporter};
  // Per second: package 0 +40 J, package 1 +30 J, dram 0 +5 J, dram 1 +4 J = 79 W. core and
  // psys move too (core is inside package, psys includes it) and must not be added.
  // Package 1 wraps at max_energy_range_uj (262143.328850 J) between t=1 and t=2.
  const double R = 262143.328850;
  std::vector<bool> energy;
  auto rows = scrape_texts(t,
                           {node_exporter_text(1000, R - 50, 200, 300, 700, 5000),
                            node_exporter_text(1040, R - 20, 205, 304, 730, 5100),
                            node_exporter_text(1080, 10, 210, 308, 760, 5200)},
                           &energy);
  EXPECT_EQ(energy, (std::vector<bool>{true, true, true}));
  for (const auto& r : rows)
    EXPECT_TRUE(r.metric.starts_with("node_rapl_") || r.metric == kUpMetric) << r.metric;
  auto vms = build_series(rows);
  ASSERT_EQ(vms.size(), 1u);
  EXPECT_EQ(vms[0].kind, "node_exporter");
  EXPECT_EQ(vms[0].counter.wraps, 1u);
  EXPECT_EQ(vms[0].counter.resets, 0u);
  EXPECT_NEAR(total_joules(rows, 0, 2), 2 * 79, 1e-6);
  EXPECT_NEAR(total_joules(rows, 0.5, 1.5), 79, 1e-6);  // interpolated inside the counters
  // The node_exporter kind has no gauge: power for plots comes from the counters.
  auto p = vms[0].power();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_NEAR(p.v[0], 79, 1e-6);

  // An exporter without the RAPL collector (or on a host without RAPL) gives no energy sample,
  // and the reason names the metrics.
  auto none = rows_from_exposition(t, "# TYPE go_goroutines gauge\ngo_goroutines 8\n", 3, "x");
  EXPECT_FALSE(none.energy_sample);
  ASSERT_EQ(none.rows.size(), 1u);
  EXPECT_EQ(none.rows[0].metric, kUpMetric);
  EXPECT_EQ(none.rows[0].value, 0);
  EXPECT_NE(none.rows[0].labels.find("answered without node_rapl_package_joules_total or "
                                     "node_rapl_dram_joules_total"),
            std::string::npos)
      << none.rows[0].labels;
}

TEST(EnergyKinds, KeplerPicksTheVmsSeriesByVmNameAndSumsPackageAndDram) {
  Target cloud{"cloud0_u", "http://127.0.0.1:28282/metrics", config::ExporterKind::kepler};
  // cloud0_u: package +12 J/s, dram +3 J/s (core +8 J/s is inside package); edge0_u is another
  // target's.
  std::vector<bool> energy;
  auto rows = scrape_texts(cloud,
                           {kepler_text(100, 20, 50, 999, 15), kepler_text(112, 23, 58, 1999, 15),
                            kepler_text(124, 26, 66, 2999, 15)},
                           &energy);
  EXPECT_EQ(energy, (std::vector<bool>{true, true, true}));
  for (const auto& r : rows) {
    EXPECT_TRUE(r.metric.starts_with("kepler_vm_") || r.metric == kUpMetric) << r.metric;
    EXPECT_EQ(r.labels.find("edge0_u"), std::string::npos) << "another VM's series kept";
  }
  auto vms = build_series(rows);
  ASSERT_EQ(vms.size(), 1u);
  EXPECT_EQ(vms[0].kind, "kepler");
  EXPECT_NEAR(total_joules(rows, 0, 2), 2 * 15, 1e-6);
  // The gauge (W, zone package only here) is the power line.
  ASSERT_EQ(vms[0].watts.size(), 3u);
  EXPECT_NEAR(vms[0].watts.v[0], 15, 1e-9);

  // A VM Kepler does not (yet) know: the answer is there, the VM's energy is not.
  Target other{"endpoint0_u", cloud.url, config::ExporterKind::kepler};
  auto none = rows_from_exposition(other, kepler_text(1, 1, 1, 1, 1), 0, "x");
  EXPECT_FALSE(none.energy_sample);
  ASSERT_EQ(none.rows.size(), 1u);
  EXPECT_NE(none.rows[0].labels.find("kepler_vm_cpu_joules_total{vm_name=\\\"endpoint0_u\\\""),
            std::string::npos)
      << none.rows[0].labels;
}

TEST(EnergyKinds, TargetsOfEachKind) {
  plan::Plan p;
  p.nodes.resize(2);
  p.nodes[0].name = "cloud0_u";
  p.nodes[1].name = "edge0_u";
  config::Energy e;
  e.exporter_kind = config::ExporterKind::node_exporter;
  auto ne = make_targets(e, p);
  EXPECT_EQ(ne[1].url, "http://127.0.0.1:8081/metrics");
  EXPECT_EQ(ne[1].kind, config::ExporterKind::node_exporter);
  e.exporter_kind = config::ExporterKind::kepler;
  e.host_port_base = 28282;
  auto kp = make_targets(e, p);
  EXPECT_EQ(kp[0].url, "http://127.0.0.1:28282/metrics");
  EXPECT_EQ(kp[1].url, kp[0].url);  // one Kepler names every VM
  EXPECT_EQ(kp[1].vm, "edge0_u");
}

TEST(EnergyGaps, UpRowsGiveGapsWithLastErrorAndAreNotInterpolated) {
  std::vector<SampleRow> rows;
  auto up = [&](double t, const std::string& vm, bool ok, const std::string& err = "") {
    rows.push_back({"", t, vm, "http://127.0.0.1:1/metrics", kUpMetric,
                    ok ? "" : "{error=\"" + err + "\"}", ok ? 1.0 : 0.0});
    if (ok) rows.push_back({"", t, vm, "u", kPowerMetric, "", vm == "a" ? 10e6 : 20e6});
  };
  for (int i = 0; i <= 10; ++i) {
    up(i, "a", true);
    // b: down at 3..5 (refused), back at 6, down again from 9 to the end (timeout).
    if (i >= 3 && i <= 5)
      up(i, "b", false, i == 5 ? "Failed to connect" : "HTTP 500");
    else if (i >= 9)
      up(i, "b", false, "Operation timed out");
    else
      up(i, "b", true);
  }
  auto recs = scrape_records(rows);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].vm, "a");
  EXPECT_TRUE(recs[0].gaps.empty());
  EXPECT_EQ(recs[0].with_data, 11u);
  const auto& b = recs[1];
  EXPECT_EQ(b.scrapes, 11u);
  EXPECT_EQ(b.with_data, 6u);
  ASSERT_EQ(b.gaps.size(), 2u);
  EXPECT_DOUBLE_EQ(b.gaps[0].from, 2);  // last scrape with data
  EXPECT_DOUBLE_EQ(b.gaps[0].to, 6);    // next scrape with data
  EXPECT_EQ(b.gaps[0].failed, 3u);
  EXPECT_EQ(b.gaps[0].last_error, "Failed to connect");
  EXPECT_FALSE(b.gaps[0].open_end);
  EXPECT_DOUBLE_EQ(b.gaps[1].from, 8);
  EXPECT_DOUBLE_EQ(b.gaps[1].to, 10);
  EXPECT_TRUE(b.gaps[1].open_end);
  EXPECT_DOUBLE_EQ(b.gap_seconds(), 6);
  EXPECT_DOUBLE_EQ(b.window(), 10);

  auto vms = build_series(rows);
  ASSERT_EQ(vms.size(), 2u);
  EXPECT_TRUE(vms[1].in_gap(4));
  EXPECT_FALSE(vms[1].in_gap(2));
  EXPECT_FALSE(vms[1].in_gap(6));
  EXPECT_FALSE(vms[0].in_gap(4));
}

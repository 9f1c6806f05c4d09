// A real exporter: Debian's prometheus-node-exporter, started by this test on loopback ports with
// ONLY its textfile collector, serves Scaphandre-named metrics from a .prom file that the test
// rewrites atomically every few milliseconds to follow a known power profile. Two exporters on
// consecutive ports stand for two VMs (the host_port_base + i convention). The scraper collects
// them while the test emits phase events; the joules computed per phase must match the integral
// of the profile within 1 %, from the power gauge and from the energy counter alike. A third case
// kills one exporter (by its PID) in the middle of the second of three repeats: the scraper goes
// on, samples.csv records the gap (`up` rows), the report names it and the legend says what each
// line averages, and the coverage rule fails the dead one. Exporters are stopped by PID.
#include <arpa/inet.h>
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "continuum/energy/energy.h"
#include "continuum/energy/scraper.h"
#include "continuum/record/events.h"
#include "continuum/report/render.h"
#include "continuum/util/files.h"
#include "continuum/util/process.h"
#include "continuum/util/strings.h"
#include "support/plot_data.h"
#include "support/ports.h"

extern char** environ;

using namespace continuum;
using namespace std::chrono;
namespace fs = std::filesystem;

namespace {

constexpr double kPi = 3.14159265358979323846;

// Known power profile of VM k (W) at s seconds after the run start.
struct Profile {
  double base, amp, period;
  double power(double s) const { return base + amp * std::sin(2 * kPi * s / period); }
  double energy(double s) const {  // ∫_0^s power
    return base * s + amp * period / (2 * kPi) * (1 - std::cos(2 * kPi * s / period));
  }
};

pid_t spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return -1;
  return pid;
}

bool http_ok(const std::string& url) {
  CURL* c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 500L);
  curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  bool ok = curl_easy_perform(c) == CURLE_OK;
  curl_easy_cleanup(c);
  return ok;
}

class ExporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!util::have_program("prometheus-node-exporter"))
      GTEST_SKIP() << "prometheus-node-exporter not installed (scripts/bootstrap installs it)";
    dir_ = fs::temp_directory_path() / ("continuum-energy-it-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    port_ = test_support::free_port_pair();
    ASSERT_GT(port_, 0);
    for (int k = 0; k < 2; ++k) {
      auto tdir = dir_ / ("textfile" + std::to_string(k));
      fs::create_directories(tdir);
      pid_t pid = spawn({"prometheus-node-exporter",
                         "--web.listen-address=127.0.0.1:" + std::to_string(port_ + k),
                         "--collector.disable-defaults", "--collector.textfile",
                         "--collector.textfile.directory=" + tdir.string()});
      ASSERT_GT(pid, 0);
      pids_.push_back(pid);
    }
  }
  void TearDown() override {
    for (pid_t p : pids_) {
      kill(p, SIGTERM);
      waitpid(p, nullptr, 0);
    }
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  fs::path dir_;
  int port_ = 0;
  std::vector<pid_t> pids_;
};

std::string prom_text(double power_w, double energy_j) {
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                "# HELP scaph_host_power_microwatts Power measurement on the whole host, in "
                "microwatts\n# TYPE scaph_host_power_microwatts gauge\n"
                "scaph_host_power_microwatts{value_source=\"powercap_rapl_psys\"} %.0f\n"
                "# HELP scaph_host_energy_microjoules Raw extracted energy consumption, in "
                "microjoules\n# TYPE scaph_host_energy_microjoules counter\n"
                "scaph_host_energy_microjoules{value_source=\"powercap_rapl_psys\"} %.0f\n"
                "# HELP scaph_self_version Version number of scaphandre represented as a float\n"
                "# TYPE scaph_self_version gauge\nscaph_self_version 1.0\n",
                power_w * 1e6, energy_j * 1e6 + 5e9);
  return buf;
}

}  // namespace

TEST_F(ExporterTest, ScrapedJoulesMatchKnownPowerProfileWithinOnePercent) {
  // Phase length = profile period for the gauge check, so a constant time lag between writing the
  // file and scraping it cancels out over a phase (what is measured is the integration, not the
  // test's own file-writing latency).
  const double phase_len = 4.0;
  const Profile prof[2] = {{40, 15, phase_len}, {12, 5, phase_len}};
  auto run_start = steady_clock::now();
  auto since = [&] { return duration<double>(steady_clock::now() - run_start).count(); };

  std::atomic<bool> stop{false};
  auto write_all = [&] {
    double s = since();
    for (int k = 0; k < 2; ++k) {
      auto f = dir_ / ("textfile" + std::to_string(k)) / "scaphandre.prom";
      ASSERT_TRUE(util::write_file_atomic(f, prom_text(prof[k].power(s), prof[k].energy(s))).ok());
    }
  };
  write_all();
  std::thread writer([&] {
    while (!stop) {
      write_all();
      std::this_thread::sleep_for(milliseconds(5));
    }
  });

  // Both exporters answer before anything is measured (poll with a deadline).
  for (int k = 0; k < 2; ++k) {
    auto url = "http://127.0.0.1:" + std::to_string(port_ + k) + "/metrics";
    auto deadline = steady_clock::now() + seconds(20);
    while (!http_ok(url) && steady_clock::now() < deadline)
      std::this_thread::sleep_for(milliseconds(50));
    ASSERT_TRUE(http_ok(url)) << url << " never answered";
  }

  plan::Plan plan;
  plan.nodes.resize(2);
  plan.nodes[0].name = "cloud_controller_t";
  plan.nodes[1].name = "cloud0_t";
  config::Energy ecfg;
  ecfg.host_port_base = port_;
  auto targets = energy::make_targets(ecfg, plan);
  // A third target nobody answers: logged and retried, never fatal.
  targets.push_back({"dead_vm", "http://127.0.0.1:1/metrics"});

  auto log = record::EventLog::open(dir_ / "run" / "events.jsonl", run_start);
  ASSERT_TRUE(log.ok());
  energy::Scraper scraper({.interval = 0.2, .timeout = 1.0, .netns = ""});
  ASSERT_TRUE(scraper.start(targets, dir_ / "run", run_start).ok());
  // Give the scraper a sample before the first phase starts.
  auto wait_samples = [&](size_t n) {
    auto deadline = steady_clock::now() + seconds(20);
    while (steady_clock::now() < deadline) {
      auto st = scraper.stats();
      if (st[0].scrapes_ok >= n && st[1].scrapes_ok >= n) return true;
      std::this_thread::sleep_for(milliseconds(20));
    }
    return false;
  };
  ASSERT_TRUE(wait_samples(2));
  (*log)->emit("benchmark", "start", "energy_it", 0);
  (*log)->emit("workload:a", "start", "energy_it", 0);
  std::this_thread::sleep_for(duration<double>(phase_len));
  (*log)->emit("workload:a", "end", "energy_it", 0);
  (*log)->emit("workload:b", "start", "energy_it", 0);
  std::this_thread::sleep_for(duration<double>(phase_len));
  (*log)->emit("workload:b", "end", "energy_it", 0);
  (*log)->emit("benchmark", "end", "energy_it", 0);
  auto before = scraper.stats()[0].scrapes_ok;
  ASSERT_TRUE(wait_samples(before + 2));  // samples after the last phase end
  scraper.stop();
  stop = true;
  writer.join();

  auto st = scraper.stats();
  EXPECT_GT(st[2].scrapes_failed, 0u);
  EXPECT_EQ(st[2].scrapes_ok, 0u);
  EXPECT_EQ(st[0].parse_errors, 0u);

  auto rows = energy::read_samples(dir_ / "run" / "energy" / "samples.csv");
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  size_t dead_up = 0;
  for (const auto& r : *rows) {
    // node-exporter's own go_* dropped; one `up` row per scrape.
    EXPECT_TRUE(r.metric.starts_with("scaph_") || r.metric == energy::kUpMetric) << r.metric;
    if (r.metric == energy::kUpMetric && r.vm == "dead_vm") {
      EXPECT_EQ(r.value, 0);
      ++dead_up;
    }
  }
  EXPECT_EQ(dead_up, st[2].scrapes_failed);
  auto events = record::read_events(dir_ / "run" / "events.jsonl");
  ASSERT_TRUE(events.ok());
  auto phases = record::phase_intervals(*events);
  auto vms = energy::build_series(*rows);
  ASSERT_EQ(vms.size(), 2u);
  auto result = energy::attribute(vms, phases);
  int checked = 0;
  for (const auto& r : result) {
    int k = r.vm == "cloud0_t" ? 1 : 0;
    double expected = prof[k].energy(r.end) - prof[k].energy(r.start);
    SCOPED_TRACE(r.phase + " " + r.vm);
    EXPECT_DOUBLE_EQ(r.coverage, 1.0);
    EXPECT_NEAR(r.joules_counter, expected, 0.01 * expected);
    EXPECT_NEAR(r.joules_power, expected, 0.01 * expected);
    EXPECT_EQ(r.source, "counter");
    ++checked;
  }
  EXPECT_EQ(checked, 2 * 4);  // benchmark, workload:a, workload:b, total × 2 VMs
}

TEST_F(ExporterTest, EnergyRunWithoutDataFailsNamingTheExporterAndReason) {
  // Three VMs: a real exporter serving Scaphandre's metrics, a real exporter that answers but has
  // no power or energy metric, and a loopback port nobody listens on. The coverage judgement
  // `continuum CONFIG` applies after the benchmark (energy::check_coverage) must fail with exit
  // code 1 naming the two without data, their URLs and why; the live one alone passes.
  ASSERT_TRUE(
      util::write_file_atomic(dir_ / "textfile0" / "scaphandre.prom", prom_text(25, 1000)).ok());
  const std::string live = "http://127.0.0.1:" + std::to_string(port_) + "/metrics";
  const std::string empty = "http://127.0.0.1:" + std::to_string(port_ + 1) + "/metrics";
  for (const auto& url : {live, empty}) {
    auto deadline = steady_clock::now() + seconds(20);
    while (!http_ok(url) && steady_clock::now() < deadline)
      std::this_thread::sleep_for(milliseconds(50));
    ASSERT_TRUE(http_ok(url)) << url << " never answered";
  }
  int dead_port = test_support::free_port_pair();  // free now; nothing of this test listens there
  ASSERT_GT(dead_port, 0);
  const std::string dead = "http://127.0.0.1:" + std::to_string(dead_port) + "/metrics";

  std::vector<energy::Target> targets = {
      {"cloud0_t", live}, {"edge0_t", empty}, {"endpoint0_t", dead}};
  energy::Scraper scraper({.interval = 0.2, .timeout = 1.0, .netns = ""});
  ASSERT_TRUE(scraper.start(targets, dir_ / "run-cov", steady_clock::now()).ok());
  // Until the live exporter has given 10 samples (poll with a deadline), then stop.
  auto deadline = steady_clock::now() + seconds(30);
  while (scraper.stats()[0].energy_scrapes < 10 && steady_clock::now() < deadline)
    std::this_thread::sleep_for(milliseconds(20));
  scraper.stop();
  auto st = scraper.stats();
  ASSERT_GE(st[0].energy_scrapes, 10u);
  EXPECT_GE(st[1].scrapes_ok, 5u);      // it answers...
  EXPECT_EQ(st[1].energy_scrapes, 0u);  // ...without energy data
  EXPECT_EQ(st[2].scrapes_ok, 0u);

  std::vector<energy::CoverageVerdict> verdicts;
  Status s = energy::check_coverage(scraper, 0.2, 0.5, &verdicts);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().exit_code, continuum::ExitCode::failure);
  const std::string& m = s.error().message;
  std::printf("%s\n", m.c_str());
  ASSERT_EQ(verdicts.size(), 3u);
  EXPECT_TRUE(verdicts[0].ok) << verdicts[0].coverage;
  EXPECT_NE(m.find("2 of 3 VM(s) below [energy] min_coverage = 0.5"), std::string::npos) << m;
  EXPECT_EQ(m.find("cloud0_t"), std::string::npos) << m;
  EXPECT_NE(m.find("edge0_t: " + empty + " gave 0 of "), std::string::npos) << m;
  EXPECT_NE(m.find("answered without scaph_host_power_microwatts or scaph_host_energy_microjoules"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("endpoint0_t: " + dead + " gave 0 of "), std::string::npos) << m;
  EXPECT_NE(m.find("port " + std::to_string(dead_port)), std::string::npos)
      << m;  // curl's reason names it

  // The live exporter alone is a complete energy run.
  energy::Scraper alone({.interval = 0.2, .timeout = 1.0, .netns = ""});
  ASSERT_TRUE(alone.start({targets[0]}, dir_ / "run-cov2", steady_clock::now()).ok());
  deadline = steady_clock::now() + seconds(30);
  while (alone.stats()[0].energy_scrapes < 10 && steady_clock::now() < deadline)
    std::this_thread::sleep_for(milliseconds(20));
  alone.stop();
  Status ok = energy::check_coverage(alone, 0.2, 0.5);
  EXPECT_TRUE(ok.ok()) << ok.error().message;
}

TEST_F(ExporterTest, ExporterKilledMidRunLeavesAVisibleGapAndFailsCoverage) {
  if (!util::have_program("gnuplot")) GTEST_SKIP() << "gnuplot-nox not installed";
  const Profile prof[2] = {{30, 5, 2.0}, {18, 3, 2.0}};
  auto run_start = steady_clock::now();
  auto since = [&] { return duration<double>(steady_clock::now() - run_start).count(); };
  std::atomic<bool> stop{false};
  auto write_all = [&] {
    double s = since();
    for (int k = 0; k < 2; ++k) {
      auto f = dir_ / ("textfile" + std::to_string(k)) / "scaphandre.prom";
      ASSERT_TRUE(util::write_file_atomic(f, prom_text(prof[k].power(s), prof[k].energy(s))).ok());
    }
  };
  write_all();
  std::thread writer([&] {
    while (!stop) {
      write_all();
      std::this_thread::sleep_for(milliseconds(5));
    }
  });
  for (int k = 0; k < 2; ++k) {
    auto url = "http://127.0.0.1:" + std::to_string(port_ + k) + "/metrics";
    auto deadline = steady_clock::now() + seconds(20);
    while (!http_ok(url) && steady_clock::now() < deadline)
      std::this_thread::sleep_for(milliseconds(50));
    ASSERT_TRUE(http_ok(url)) << url << " never answered";
  }

  plan::Plan plan;
  plan.nodes.resize(2);
  plan.nodes[0].name = "cloud_controller_t";
  plan.nodes[1].name = "cloud0_t";
  config::Energy ecfg;
  ecfg.host_port_base = port_;
  auto targets = energy::make_targets(ecfg, plan);
  const auto run = dir_ / "run-kill";
  auto log = record::EventLog::open(run / "events.jsonl", run_start);
  ASSERT_TRUE(log.ok());
  // A generous timeout: on a loaded machine a slow answer must not look like a gap. The killed
  // exporter refuses connections at once.
  energy::Scraper scraper({.interval = 0.2, .timeout = 2.0, .netns = ""});
  ASSERT_TRUE(scraper.start(targets, run, run_start).ok());
  // Phases are counted in cloud_controller_t's answered scrapes (polled with a deadline).
  auto wait_ok = [&](size_t vm, size_t n) {
    auto deadline = steady_clock::now() + seconds(60);
    while (steady_clock::now() < deadline) {
      if (scraper.stats()[vm].scrapes_ok >= n) return true;
      std::this_thread::sleep_for(milliseconds(10));
    }
    return false;
  };
  ASSERT_TRUE(wait_ok(0, 2) && wait_ok(1, 2));
  double kill_t = 0;
  size_t ok_at_kill = 0;
  for (int k = 0; k < 3; ++k) {
    (*log)->emit("repeat", "start", "energy_it", k);
    (*log)->emit("application", "start", "energy_it", k);
    size_t base = scraper.stats()[0].scrapes_ok;
    if (k == 1) {
      ASSERT_TRUE(wait_ok(0, base + 3));
      // The exporter dies without a goodbye, in the middle of the scraping.
      ASSERT_EQ(kill(pids_[1], SIGKILL), 0);
      ASSERT_EQ(waitpid(pids_[1], nullptr, 0), pids_[1]);
      pids_.pop_back();
      kill_t = since();
      ok_at_kill = scraper.stats()[0].scrapes_ok;
    }
    ASSERT_TRUE(wait_ok(0, base + 16));
    (*log)->emit("application", "end", "energy_it", k);
    (*log)->emit("repeat", "end", "energy_it", k);
  }
  ASSERT_TRUE(wait_ok(0, scraper.stats()[0].scrapes_ok + 2));
  scraper.stop();
  stop = true;
  writer.join();

  // The scraper went on: the live exporter was scraped after the kill as before, never failing.
  auto st = scraper.stats();
  EXPECT_EQ(st[0].scrapes_failed, 0u) << st[0].last_error;
  EXPECT_GE(st[0].scrapes_ok, ok_at_kill + 18);
  EXPECT_GE(st[1].scrapes_failed, 10u);
  const std::string dead_port = "port " + std::to_string(port_ + 1);
  EXPECT_NE(st[1].last_error.find(dead_port), std::string::npos) << st[1].last_error;

  // samples.csv: one `up` row per scrape; the dead exporter's are 1 before the kill and 0 with
  // curl's reason after it (a scrape in flight at the kill may go either way).
  auto rows = energy::read_samples(run / "energy" / "samples.csv");
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  size_t up0_after = 0, up1_before = 0, up1_after = 0, up1_ok = 0;
  for (const auto& r : *rows) {
    if (r.metric != energy::kUpMetric) continue;
    if (r.vm == "cloud_controller_t") {
      EXPECT_EQ(r.value, 1) << r.t << " " << r.labels;
      up0_after += r.t > kill_t;
    } else {
      up1_ok += r.value == 1;
      if (r.t < kill_t - 0.3) {
        EXPECT_EQ(r.value, 1) << r.t;
        ++up1_before;
      } else if (r.t > kill_t + 0.3) {
        EXPECT_EQ(r.value, 0) << r.t;
        EXPECT_NE(r.labels.find(dead_port), std::string::npos) << r.labels;
        ++up1_after;
      }
    }
  }
  EXPECT_GE(up0_after, 18u);
  EXPECT_GE(up1_before, 10u);
  EXPECT_GE(up1_after, 10u);
  EXPECT_EQ(up1_ok, st[1].energy_scrapes);  // the rows are the scraper's own count
  auto recs = energy::scrape_records(*rows);
  ASSERT_EQ(recs.size(), 2u);
  // In first-seen order: whichever thread wrote first.
  const auto& live_rec = recs[0].vm == "cloud_controller_t" ? recs[0] : recs[1];
  const auto& dead_rec = recs[0].vm == "cloud0_t" ? recs[0] : recs[1];
  ASSERT_EQ(dead_rec.vm, "cloud0_t");
  EXPECT_TRUE(live_rec.gaps.empty());
  ASSERT_EQ(dead_rec.gaps.size(), 1u);
  const auto& gap = dead_rec.gaps[0];
  EXPECT_TRUE(gap.open_end);
  EXPECT_GT(gap.from, kill_t - 0.5);  // the last scrape with data, just before the kill
  EXPECT_LE(gap.from, kill_t);
  EXPECT_DOUBLE_EQ(gap.to, dead_rec.last);
  EXPECT_NE(gap.last_error.find(dead_port), std::string::npos) << gap.last_error;

  // The report: the gap named with its times and the exporter's last error; each line's legend
  // says how many repeats it averages; every plotted number matches the run's records.
  auto rendered = report::render(run);
  ASSERT_TRUE(rendered.ok()) << rendered.error().message;
  const auto& md = rendered->summary_md;
  EXPECT_NE(md.find("### Exporter gaps"), std::string::npos) << md;
  EXPECT_NE(md.find("**cloud0_t**: no data from " + util::format_fixed(gap.from, 1) + " s to " +
                    util::format_fixed(gap.to, 1) + " s"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("never came back); last error: " + gap.last_error), std::string::npos) << md;
  EXPECT_EQ(md.find("**cloud_controller_t**"), std::string::npos) << md;
  auto svg = util::read_file(run / "plots" / "power_timeline.svg");
  ASSERT_TRUE(svg.ok());
  EXPECT_NE(svg->find("cloud_controller_t (3 repeats)"), std::string::npos);
  EXPECT_NE(svg->find("cloud0_t (1 of 3 repeats complete, 1 with gaps, 1 without data)"),
            std::string::npos);
  EXPECT_EQ(svg->find("(mean of 3 repeats)"), std::string::npos);
  // The dead VM's line averages two repeats before the kill's offset and one after, never three.
  auto dat =
      test_support::plot_data_detail::read_dat(run / "plots" / "data" / "power_timeline.dat");
  ASSERT_TRUE(dat);
  std::map<std::string, int> n_seen;
  // Header: t_s, then "<vm>" "<vm>:n" per VM (in first-seen order).
  ASSERT_EQ(dat->header.size(), 5u);
  const size_t live_n = dat->header[1] == "cloud_controller_t" ? 2 : 4;
  const size_t dead_n = 6 - live_n;
  EXPECT_EQ(dat->header[dead_n - 1], "cloud0_t");
  for (const auto& row : dat->rows) {
    ASSERT_EQ(row.size(), 5u);
    ++n_seen["live " + row[live_n]];
    ++n_seen["dead " + row[dead_n]];
  }
  EXPECT_GE(n_seen["live 3"], 12);  // a repeat is 16 scrapes of 0.2 s; the grid step is one
  EXPECT_GE(n_seen["dead 2"], 2);
  EXPECT_GE(n_seen["dead 1"], 8);
  EXPECT_EQ(n_seen["dead 3"], 0);
  auto check = test_support::check_plot_data(run);
  EXPECT_TRUE(check.ok()) << check.report();
  EXPECT_GT(check.bars_checked, 0u);
  EXPECT_GE(check.timeline_points_checked, 2u * 12u);

  // The coverage rule decides the exit code: the dead exporter's VM is below the default
  // min_coverage (it gave data for about 21 of 52 scrapes: 2 before, 16 in repeat 0, 3 in
  // repeat 1), the live one is not.
  std::vector<energy::CoverageVerdict> verdicts;
  Status covered = energy::check_coverage(scraper, 0.2, ecfg.min_coverage, &verdicts);
  ASSERT_FALSE(covered.ok());
  EXPECT_EQ(covered.error().exit_code, continuum::ExitCode::failure);
  ASSERT_EQ(verdicts.size(), 2u);
  EXPECT_TRUE(verdicts[0].ok) << verdicts[0].coverage;
  EXPECT_FALSE(verdicts[1].ok) << verdicts[1].coverage;
  EXPECT_EQ(verdicts[1].obtained, up1_ok);
  const auto& m = covered.error().message;
  EXPECT_NE(m.find("cloud0_t: http://127.0.0.1:" + std::to_string(port_ + 1) + "/metrics gave " +
                   std::to_string(up1_ok) + " of "),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(dead_port), std::string::npos) << m;
}

TEST_F(ExporterTest, NodeExporterRaplCollectorOnAFakeSysfsGivesPackagePlusDramJoules) {
  // exporter_kind = node_exporter against Debian's real prometheus-node-exporter and its rapl
  // collector. This machine has no RAPL (it is a VM), so the collector reads a FAKE powercap tree
  // (--path.sysfs): two sockets' package and dram zones, a core zone inside package-0 and a psys
  // zone. The test advances every zone's energy_uj by a known step, atomically, and waits for two
  // scrapes of each state (the second one began after the write), so the scraped energy is known
  // exactly whatever the machine's load. Package 1 starts 50 J below max_energy_range_uj and
  // wraps on the third step. The VM's joules must be the steps of package + dram only (57 J a
  // step; core is inside package, psys includes it).
  const double kRange = 262143328850.0;  // µJ, the usual RAPL max_energy_range_uj
  struct Zone {
    std::string dir, name;
    double start_uj, step_j;
    bool counted;
  };
  const std::vector<Zone> zones = {
      {"intel-rapl:0", "package-0", 1e9, 30, true},
      {"intel-rapl:1", "package-1", kRange - 50e6, 20, true},
      {"intel-rapl:0:1", "dram", 5e8, 4, true},
      {"intel-rapl:1:1", "dram", 7e8, 3, true},
      {"intel-rapl:0:0", "core", 3e9, 15, false},
      {"intel-rapl:2", "psys", 2e9, 100, false},
  };
  const auto sys = dir_ / "fake-sys";
  auto write_state = [&](int k) {
    for (const auto& z : zones) {
      double uj = std::fmod(z.start_uj + k * z.step_j * 1e6, kRange);
      ASSERT_TRUE(util::write_file_atomic(sys / "class" / "powercap" / z.dir / "energy_uj",
                                          std::to_string(static_cast<long long>(uj)) + "\n")
                      .ok());
    }
  };
  for (const auto& z : zones) {
    auto d = sys / "class" / "powercap" / z.dir;
    fs::create_directories(d);
    ASSERT_TRUE(util::write_file_atomic(d / "name", z.name + "\n").ok());
    ASSERT_TRUE(util::write_file_atomic(d / "max_energy_range_uj", "262143328850\n").ok());
  }
  write_state(0);
  int port = test_support::free_port_pair();
  ASSERT_GT(port, 0);
  pid_t pid =
      spawn({"prometheus-node-exporter", "--web.listen-address=127.0.0.1:" + std::to_string(port),
             "--collector.disable-defaults", "--collector.rapl", "--path.sysfs=" + sys.string()});
  ASSERT_GT(pid, 0);
  pids_.push_back(pid);  // stopped by PID in TearDown
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/metrics";
  auto deadline = steady_clock::now() + seconds(20);
  while (!http_ok(url) && steady_clock::now() < deadline)
    std::this_thread::sleep_for(milliseconds(50));
  ASSERT_TRUE(http_ok(url)) << url << " never answered";

  plan::Plan plan;
  plan.nodes.resize(1);
  plan.nodes[0].name = "host_t";
  config::Energy ecfg;
  ecfg.exporter_kind = config::ExporterKind::node_exporter;
  ecfg.host_port_base = port;
  auto targets = energy::make_targets(ecfg, plan);
  ASSERT_EQ(targets[0].url, url);
  const auto run = dir_ / "run-rapl";
  energy::Scraper scraper({.interval = 0.1, .timeout = 2.0, .netns = ""});
  ASSERT_TRUE(scraper.start(targets, run, steady_clock::now()).ok());
  auto wait_ok = [&](size_t n) {
    auto until = steady_clock::now() + seconds(60);
    while (steady_clock::now() < until) {
      if (scraper.stats()[0].energy_scrapes >= n) return true;
      std::this_thread::sleep_for(milliseconds(5));
    }
    return false;
  };
  const int kSteps = 12;
  ASSERT_TRUE(wait_ok(2));
  for (int k = 1; k <= kSteps; ++k) {
    size_t seen = scraper.stats()[0].energy_scrapes;
    write_state(k);
    ASSERT_TRUE(wait_ok(seen + 2)) << "step " << k;
  }
  scraper.stop();
  EXPECT_EQ(scraper.stats()[0].scrapes_failed, 0u) << scraper.stats()[0].last_error;
  EXPECT_TRUE(energy::check_coverage(scraper, 0.1, 0.5).ok());

  auto rows = energy::read_samples(run / "energy" / "samples.csv");
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  std::set<std::string> metrics;
  for (const auto& r : *rows) metrics.insert(r.metric);
  EXPECT_EQ(metrics, (std::set<std::string>{
                         "node_rapl_core_joules_total", "node_rapl_dram_joules_total",
                         "node_rapl_package_joules_total", "node_rapl_psys_joules_total", "up"}));
  auto vms = energy::build_series(*rows);
  ASSERT_EQ(vms.size(), 1u);
  EXPECT_EQ(vms[0].kind, "node_exporter");
  EXPECT_EQ(vms[0].counter.wraps, 1u);
  EXPECT_EQ(vms[0].counter.resets, 0u);
  EXPECT_EQ(vms[0].counter.torn_reads, 0u);
  ASSERT_GE(vms[0].joules.size(), 2u * kSteps);
  // From state 0 (first scrape) to state kSteps (last scrape): exactly kSteps × 57 J.
  EXPECT_NEAR(vms[0].joules.v.back() - vms[0].joules.v.front(), kSteps * 57.0, 1e-6);
  // And through the same path the report takes: one interval over the whole scrape.
  auto out = energy::attribute(
      vms, {{"benchmark", "rapl_it", "", 0, vms[0].joules.t.front(), vms[0].joules.t.back()}});
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out[0].source, "counter");
  EXPECT_NEAR(out[0].joules, kSteps * 57.0, 1e-6);
}

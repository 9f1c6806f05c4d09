// A real exporter: Debian's prometheus-node-exporter, started by this test on loopback ports with
// ONLY its textfile collector, serves Scaphandre-named metrics from a .prom file that the test
// rewrites atomically every few milliseconds to follow a known power profile. Two exporters on
// consecutive ports stand for two VMs (the host_port_base + i convention). The scraper collects
// them while the test emits phase events; the joules computed per phase must match the integral
// of the profile within 1 %, from the power gauge and from the energy counter alike. Exporters are
// stopped by PID.
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
#include <thread>

#include "continuum/energy/energy.h"
#include "continuum/energy/scraper.h"
#include "continuum/record/events.h"
#include "continuum/util/files.h"
#include "continuum/util/process.h"

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

bool port_free(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

// Two consecutive free loopback ports, starting from one the kernel hands out.
int free_port_pair() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    bool bound = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                 getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
    int p = ntohs(a.sin_port);
    close(fd);
    if (!bound) continue;
    if (p < 65000 && port_free(p) && port_free(p + 1)) return p;
  }
  return -1;
}

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
    port_ = free_port_pair();
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
  for (const auto& r : *rows) {
    EXPECT_TRUE(r.metric.starts_with("scaph_")) << r.metric;  // node-exporter's own go_* dropped
  }
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
  int dead_port = free_port_pair();  // free now; nothing of this test listens there
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

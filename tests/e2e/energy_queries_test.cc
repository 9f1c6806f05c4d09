// End to end, the energy experiment as the original's energy users ran it, with continuum doing
// their manual steps: configuration/energy_queries.cfg (PostgreSQL loaded once by a setup
// workload, three queries on both VMs, repeat = 3) on TCG VMs of the `energy` image variant, in a
// network namespace of its own with its own libvirtd (tests/e2e/harness.h).
//
// The example's energy source (Scaphandre in the guests, fed from the host's RAPL) needs RAPL,
// which this machine lacks, so the test swaps its [energy] section for host exporters that
// continuum starts itself from `exporter_command`: one real prometheus-node-exporter per VM on
// consecutive loopback ports, serving Scaphandre's metric names from a file in the VM's share
// directory, which this test rewrites every 5 ms to follow a known power profile per VM (a
// sinusoid of the wall clock). With `scope = run` energy is scraped over the whole run, so:
//  - every event carries the experiment's name; the setup ran once, before the repeats; every
//    query ran and answered in every repeat;
//  - joules per VM and phase (each interval of 5 s or more: software, playbooks, setup, repeats,
//    workloads, ...) are within 1 % of the profile's integral over the phase's wall-clock times;
//  - the energy bars' min/max are the per-repeat extremes and the timeline is the mean of the
//    repeats (tests/support/plot_data.h, on the plot's data files);
//  - no exporter process is left, the ledger says each was removed, each kept its log, and
//    summary.md reports what each cost.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "continuum/util/background.h"
#include "e2e/harness.h"
#include "support/csv.h"
#include "support/plot_data.h"

using namespace continuum;
using namespace continuum::e2e;

namespace {

constexpr double kPi = 3.14159265358979323846;

/// The power profile the fake exporters serve: VM 0 (cloud_controller) around 8 W, VM 1
/// (endpoint0) around 5 W, each ± 2 W with a 30 s period, out of phase.
struct Profile {
  double t0 = 0;  // wall-clock seconds where the counters start at 0
  static double base(int i) { return i == 0 ? 8.0 : 5.0; }
  static double phase(int i) { return i == 0 ? 0.0 : 1.3; }
  static constexpr double kAmp = 2.0, kPeriod = 30.0;
  double watts(int i, double t) const {
    return base(i) + kAmp * std::sin(2 * kPi * (t - t0) / kPeriod + phase(i));
  }
  double joules(int i, double t) const {
    const double w = 2 * kPi / kPeriod;
    return base(i) * (t - t0) - kAmp / w * (std::cos(w * (t - t0) + phase(i)) - std::cos(phase(i)));
  }
};

double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// RFC 3339 UTC with fraction ("2026-12-02T03:04:05.123456789Z") to seconds since the epoch.
double parse_rfc3339(const std::string& s) {
  std::tm tm{};
  if (!strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return NAN;
  double frac = 0;
  if (auto dot = s.find('.'); dot != std::string::npos) frac = std::stod("0" + s.substr(dot, 10));
  return static_cast<double>(timegm(&tm)) + frac;
}

/// Rewrites <shares>/<vm>/scaphandre.prom for every VM directory, atomically, until stopped.
class ProfileWriter {
 public:
  ProfileWriter(fs::path shares, Profile p) : shares_(std::move(shares)), p_(p) {
    thread_ = std::thread([this] { loop(); });
  }
  ~ProfileWriter() {
    stop_ = true;
    thread_.join();
  }

 private:
  void loop() {
    while (!stop_) {
      std::error_code ec;
      for (fs::directory_iterator it(shares_, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string vm = it->path().filename();
        // The VMs' shares only, as a host feed writes to each VM's by name: not the hidden
        // directory a share is renamed to while `destroy` removes it (util::remove_tree).
        if (!it->is_directory() || vm.empty() || vm[0] == '.') continue;
        const int i = vm.rfind("cloud", 0) == 0 ? 0 : 1;
        const double t = wall_now();
        char text[512];
        std::snprintf(text, sizeof text,
                      "# TYPE scaph_host_energy_microjoules counter\n"
                      "scaph_host_energy_microjoules{value_source=\"powercap_rapl_pkg\"} %.3f\n"
                      "# TYPE scaph_host_power_microwatts gauge\n"
                      "scaph_host_power_microwatts{value_source=\"powercap_rapl_pkg\"} %.3f\n",
                      p_.joules(i, t) * 1e6, p_.watts(i, t) * 1e6);
        const fs::path tmp = it->path() / ".scaphandre.prom.tmp";
        if (FILE* f = std::fopen(tmp.c_str(), "w")) {
          std::fputs(text, f);
          std::fclose(f);
          fs::rename(tmp, it->path() / "scaphandre.prom", ec);
        }
      }
      std::this_thread::sleep_for(5ms);  // the profile's time step, not a synchronisation
    }
  }
  fs::path shares_;
  Profile p_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

using test_support::read_csv;

class EnergyQueries : public LibvirtNetnsTest {};

TEST_F(EnergyQueries, ExampleRunsWithExportersStartedByContinuumAndEnergyOverTheWholeRun) {
  ::setenv("HOME", kWorkRoot.c_str(), 1);  // the image cache persists across runs, like a home
  ::unsetenv("CONTINUUM_GUEST_APP_DIR");
  auto img = build_image("energy");
  ASSERT_EQ(img.exit_code, 0) << img.err;

  // The example, with this machine's energy source instead of RAPL (see the top of the file).
  const fs::path example = fs::path(CONTINUUM_SOURCE_DIR) / "configuration" / "energy_queries.cfg";
  auto text = util::read_file(example);
  ASSERT_TRUE(text.ok());
  const fs::path shares = work_ / "shares";
  std::string cfg_text = text->substr(0, text->find("\n[energy]\n") + 1);
  const std::string host_dir_line = "virtiofs_host_dir = /var/lib/libvirt/scaphandre";
  ASSERT_NE(cfg_text.find(host_dir_line), std::string::npos);
  cfg_text.replace(cfg_text.find(host_dir_line), host_dir_line.size(),
                   "virtiofs_host_dir = " + shares.string());
  cfg_text +=
      "[energy]\nenabled = True\nexporter = host\nhost_address = 127.0.0.1\nhost_port_base = "
      "18080\nscope = run\ninterval = 1\nexporter_start_timeout = 30\n"
      "exporter_command = prometheus-node-exporter --web.listen-address={address}:{port} "
      "--collector.disable-defaults --collector.textfile --collector.textfile.directory={share}\n";
  const fs::path cfg = work_ / "energy_queries.cfg";
  ASSERT_TRUE(util::write_file_atomic(cfg, cfg_text).ok());
  auto v = run({CONTINUUM_BINARY, "validate", cfg.string()});
  ASSERT_EQ(v.exit_code, 0) << v.out << v.err;

  fs::create_directories(shares);
  Profile profile;
  profile.t0 = wall_now();
  const fs::path runs = work_ / "runs";
  util::ProcessResult r;
  {
    ProfileWriter writer(shares, profile);
    auto t0 = Clock::now();
    r = run({"ip", "netns", "exec", ns_, CONTINUUM_BINARY, "--output", runs.string(), cfg.string()},
            3600s, [](const std::string& l, bool) {
              std::printf("  [run] %s\n", l.c_str());
              std::fflush(stdout);
            });
    timing("energy_queries_total", secs(Clock::now() - t0));
  }
  if (fs::exists(runs))
    for (const auto& e : fs::directory_iterator(runs)) run_dir_ = e.path();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_FALSE(run_dir_.empty());

  // Events: the experiment's name everywhere; the setup once before the repeats; the queries.
  auto ev_text = util::read_file(run_dir_ / "events.jsonl");
  ASSERT_TRUE(ev_text.ok());
  std::vector<nlohmann::json> events;
  for (const auto& line : util::split(*ev_text, '\n'))
    if (!util::trim(line).empty()) events.push_back(nlohmann::json::parse(line));
  double offset = 0;  // wall - t, the same for every event up to clock adjustments
  std::vector<double> offsets;
  std::map<std::string, int> starts;
  double setup_end = -1, first_repeat = -1;
  std::vector<pid_t> exporter_pids;
  for (const auto& e : events) {
    EXPECT_EQ(e.value("experiment", ""), "queries_no_kubernetes") << e.dump();
    offsets.push_back(parse_rfc3339(e["time"]) - e["t"].get<double>());
    const std::string phase = e["phase"], what = e["event"];
    if (what == "start") ++starts[phase];
    if (phase == "setup:load_data" && what == "end") {
      setup_end = e["t"];
      EXPECT_EQ(e["repeat"], -1);
    }
    if (phase == "repeat" && what == "start" && first_repeat < 0) first_repeat = e["t"];
    if (phase == "energy" && what == "exporters_started")
      for (const auto& x : e["details"]["exporters"]) exporter_pids.push_back(x["pid"]);
  }
  std::sort(offsets.begin(), offsets.end());
  offset = offsets[offsets.size() / 2];
  EXPECT_EQ(starts["setup:load_data"], 1);
  EXPECT_EQ(starts["repeat"], 3);
  for (const char* q : {"workload:q_aggregate", "workload:q_join", "workload:q_window"})
    EXPECT_EQ(starts[q], 3) << q;
  EXPECT_GT(first_repeat, setup_end);
  EXPECT_GE(starts["playbook:base"], 1);
  ASSERT_EQ(exporter_pids.size(), 2u);

  // Every query answered: q_join's output is the 20 regions, on both VMs, in every repeat.
  auto results = read_csv(run_dir_ / "benchmark" / "workloads" / "results.csv");
  ASSERT_FALSE(results.empty());
  int joins = 0;
  for (size_t i = 1; i < results.size(); ++i) {
    const auto& f = results[i];  // workload,node,repeat,index,warmup,exit_code,...,stdout,...
    EXPECT_EQ(f[5], "0") << util::join(f, ",");
    if (f[0] != "q_join") continue;
    ++joins;
    auto out = util::read_file(run_dir_ / f[10]);
    ASSERT_TRUE(out.ok()) << f[10];
    EXPECT_EQ(util::split(std::string(util::trim(*out)), '\n').size(), 20u) << *out;
  }
  EXPECT_EQ(joins, 3 * 2 * 2);

  // Joules per VM and phase against the profile's integral.
  auto rows = read_csv(run_dir_ / "energy" / "energy.csv");
  ASSERT_GT(rows.size(), 1u);
  std::map<std::string, size_t> col;
  for (size_t i = 0; i < rows[0].size(); ++i) col[rows[0][i]] = i;
  std::set<std::string> checked_phases;
  int checked = 0;
  for (size_t i = 1; i < rows.size(); ++i) {
    const auto& f = rows[i];
    const double start = std::stod(f[col["start_s"]]), end = std::stod(f[col["end_s"]]);
    const double coverage = std::stod(f[col["coverage"]]);
    if (end - start < 5 || coverage < 0.99 || f[col["phase"]] == "total") continue;
    const int vm = f[col["vm"]].rfind("cloud", 0) == 0 ? 0 : 1;
    const double want = profile.joules(vm, end + offset) - profile.joules(vm, start + offset);
    const double got = std::stod(f[col["joules"]]);
    EXPECT_NEAR(got, want, 0.01 * want)
        << f[col["phase"]] << " repeat " << f[col["repeat"]] << " " << f[col["vm"]];
    checked_phases.insert(f[col["phase"]]);
    ++checked;
  }
  for (const char* p : {"software", "setup:load_data", "repeat", "workload:q_window"})
    EXPECT_TRUE(checked_phases.count(p)) << p << " has no checked row";
  EXPECT_GE(checked, 10);

  // The plots' numbers: the bars' mean/min/max are the per-repeat figures of energy.csv, the
  // timeline is the mean of the repeats at each offset (recomputed from samples.csv).
  auto plots = test_support::check_plot_data(run_dir_);
  EXPECT_TRUE(plots.ok()) << plots.report();
  EXPECT_GT(plots.bars_checked, 0u);
  EXPECT_GT(plots.timeline_points_checked, 0u);

  // No exporter left; the ledger knows they are gone; their logs are kept; the summary says
  // what they cost.
  for (pid_t pid : exporter_pids) EXPECT_FALSE(util::process_identity(pid)) << pid;
  auto ledger_text = util::read_file(run_dir_ / "state.json");
  ASSERT_TRUE(ledger_text.ok());
  auto ledger = nlohmann::json::parse(*ledger_text);
  int processes = 0;
  for (const auto& res : ledger["resources"])
    if (res.value("kind", "") == "process") {
      ++processes;
      EXPECT_EQ(res.value("state", ""), "removed") << res.dump();
    }
  EXPECT_EQ(processes, 2);
  EXPECT_TRUE(fs::exists(run_dir_ / "energy" / "exporters"));
  auto summary = util::read_file(run_dir_ / "summary.md");
  ASSERT_TRUE(summary.ok());
  EXPECT_NE(summary->find("Exporters started by continuum"), std::string::npos);
  destroyed_ = true;  // delete = True: the run removed its VMs

  // Kept for a reader (the plots in docs/energy.md come from such a run): the run directory
  // without its VM-specific state, outside the work directory that TearDown removes.
  const fs::path keep = kWorkRoot / "last-runs" / "energy_queries";
  fs::remove_all(keep);
  fs::create_directories(keep);
  for (const char* part : {"plots", "energy", "summary.md", "events.jsonl", "environment.json"})
    fs::copy(run_dir_ / part, keep / part, fs::copy_options::recursive);
}

}  // namespace

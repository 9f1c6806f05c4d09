// End to end, real Scaphandre in the guests (issue 13): two TCG VMs (1 cloud_controller + 1
// endpoint, 1 core and 1 GB each) boot the image variant energy (Debian 13, Debian's scaphandre),
// in a network namespace of the test's own with its own libvirtd (tests/e2e/harness.h). The
// host has no RAPL, so the test makes one: a fake powercap tree whose energy_uj a thread of the
// test advances at a known rate (replaced atomically, as the kernel's file never tears). continuum
// runs with `[energy] exporter = guest, host_feed = True` (and `scope = run`): its host feed hands
// each VM a share of that energy through the VM's virtiofs share and records it in
// energy/feed.csv; the scaphandre playbook starts `scaphandre --vm prometheus` in every guest;
// the scraper reads them over the VM network while a CPU-bound workload runs on both VMs.
//
// Asserted:
//  - the image variant is the energy one (Debian 13 kernel in the guest), Debian's
//    /usr/bin/scaphandre is what runs, the guest programs built on the host still start there,
//    PostgreSQL is installed but not running until `systemctl start postgresql`;
//  - the samples came from each guest's Scaphandre (scaph_self_version from the guest's address);
//  - per VM, the joules Scaphandre counted between its first and last sample are within 2 % of
//    what the feed handed that VM over the same window (feed.csv interpolated at those times);
//  - the feed handed out no more than the fake RAPL counter grew (shares sum to at most 1);
//  - `continuum destroy RUN_DIR` then succeeds.
// Timings are printed as "E2E-TIMING name seconds" lines (docs/images.md has them).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "continuum/energy/energy.h"
#include "continuum/infra/deployment.h"
#include "continuum/util/ssh.h"
#include "e2e/harness.h"

using namespace continuum;
using namespace continuum::e2e;

namespace {

/// A RAPL package counter at `dir`/energy_uj growing at `watts`, rewritten every 50 ms by a thread
/// (temp + rename, so the feed never reads a torn value); uj_at() is its value at any moment.
class FakeRapl {
 public:
  FakeRapl(fs::path dir, double watts) : dir_(std::move(dir)), watts_(watts) {}
  ~FakeRapl() { stop(); }

  bool start() {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (!util::write_file_atomic(dir_ / "name", "package-0\n").ok() ||
        !util::write_file_atomic(dir_ / "max_energy_range_uj", "262143328850\n").ok())
      return false;
    t0_ = Clock::now();
    if (!write(t0_)) return false;
    thread_ = std::thread([this] {
      std::unique_lock lock(mu_);
      // The period paces the counter's resolution; stop() wakes the wait at once.
      while (!cv_.wait_for(lock, 50ms, [this] { return stopping_; }))
        if (!write(Clock::now())) failures_++;
    });
    return true;
  }
  void stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  /// µJ the counter shows for a point on the steady clock (linear in time).
  double uj_at(Clock::time_point t) const { return kBase + watts_ * 1e6 * secs(t - t0_); }
  int failures() const { return failures_; }

 private:
  static constexpr double kBase = 5e9;
  bool write(Clock::time_point t) {
    return util::write_file_atomic(dir_ / "energy_uj",
                                   std::to_string(static_cast<uint64_t>(uj_at(t))) + "\n")
        .ok();
  }
  fs::path dir_;
  double watts_;
  Clock::time_point t0_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::atomic<int> failures_{0};
  std::thread thread_;
};

/// feed.csv of one VM: (t, µJ) in time order.
using FeedSeries = std::vector<std::pair<double, double>>;

std::map<std::string, FeedSeries> read_feed(const fs::path& file, std::string* error) {
  std::map<std::string, FeedSeries> out;
  auto text = util::read_file(file);
  if (!text) {
    *error = text.error().message;
    return out;
  }
  auto lines = util::split(*text, '\n');
  if (lines.empty() || lines[0] != "t,vm,energy_uj") {
    *error = file.string() + ": unexpected header";
    return out;
  }
  std::vector<std::string> f;
  for (size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    if (!util::csv_split(lines[i], f) || f.size() != 3) {
      *error = file.string() + ":" + std::to_string(i + 1) + ": malformed row";
      return out;
    }
    out[f[1]].emplace_back(std::stod(f[0]), std::stod(f[2]));
  }
  return out;
}

/// The feed's value at t, linearly interpolated between its steps (NaN outside them).
double feed_at(const FeedSeries& s, double t) {
  if (s.empty() || t < s.front().first || t > s.back().first) return NAN;
  auto it =
      std::lower_bound(s.begin(), s.end(), t, [](const auto& p, double x) { return p.first < x; });
  if (it->first == t || it == s.begin()) return it->second;
  auto prev = std::prev(it);
  return prev->second + (it->second - prev->second) * (t - prev->first) / (it->first - prev->first);
}

class Scaphandre : public LibvirtNetnsTest {
 protected:
  std::string exec(util::Remote& r, const std::string& cmd, int want_status = 0) {
    auto res = r.exec(cmd, std::chrono::seconds(180));
    EXPECT_TRUE(res.ok()) << cmd;
    if (!res.ok()) return "";
    EXPECT_EQ(res->exit_code, want_status) << cmd << "\n" << res->out << res->err;
    return res->out;
  }
};

TEST_F(Scaphandre, GuestScaphandreReportsWhatTheHostFeedHandedEachVm) {
  const auto t_test = Clock::now();
  ::setenv("HOME", kWorkRoot.c_str(), 1);  // the image cache persists across runs, like a home
  ::unsetenv("CONTINUUM_GUEST_APP_DIR");   // the guest programs go in, as for a user

  // 0. The energy image, built (Debian 13 from the mirror; the namespace has no route out) or
  // found in the cache.
  auto img = build_image("energy");
  ASSERT_EQ(img.exit_code, 0) << img.out << img.err;
  ASSERT_NE(img.out.find("offline-energy-"), std::string::npos) << img.out;

  // 1. The fake RAPL counter: 40 W, whatever the VMs do. The feed hands each VM its CPU share.
  constexpr double kWatts = 40;
  FakeRapl rapl(work_ / "powercap" / "intel-rapl:0", kWatts);
  ASSERT_TRUE(rapl.start());

  // 2. Two small VMs; Scaphandre in the guests, scraped every 3 s (it refreshes its records at
  // most every 2 s). Both VMs busy for 150 s: a sample's t is the midpoint of its HTTP exchange,
  // and where in that exchange the guest read its counter is known only to about +-1 s under TCG
  // (plus virtiofs' 1 s attribute cache), so the window must be long against that. The busy loop
  // runs at nice 19 so that Scaphandre answers promptly. `scope = run`: scraping spans the run
  // from the moment the software phase started Scaphandre.
  const std::string cfg_text =
      std::string(
          "[infrastructure]\nprovider = qemu\n"
          "cloud_nodes = 1\ncloud_cores = 1\ncloud_memory = 1\ncloud_quota = 1.0\n"
          "endpoint_nodes = 1\nendpoint_cores = 1\nendpoint_memory = 1\n"
          "endpoint_quota = 1.0\nbase_path = ") +
      kWorkRoot.string() +
      "\naccelerator = tcg\nvirtiofs = True\nvirtiofs_host_dir = " + (work_ / "shares").string() +
      "\nvirtiofs_guest_dir = /var/scaphandre\nssh_key = " + (work_ / "id_continuum").string() +
      "\nboot_timeout = 900\ndelete = False\n"
      "[benchmark]\nresource_manager = none\n"
      "[workload busy]\ncommand = timeout 150 nice -n 19 sha256sum /dev/zero || true\n"
      "nodes = cloud, endpoint\nparallel = True\ntimeout = 300\n"
      "[energy]\nenabled = True\nexporter = guest\nhost_feed = True\ninterval = 3\n"
      "scrape_timeout = 2.5\n"
      "scope = run\npowercap_path = " +
      (work_ / "powercap" / "intel-rapl:0").string() + "\n";
  const fs::path cfg = work_ / "scaphandre.cfg";
  ASSERT_TRUE(util::write_file_atomic(cfg, cfg_text).ok());

  // 3. The run, inside the namespace.
  const fs::path runs = work_ / "runs";
  const auto t_run = Clock::now();
  auto r =
      run({"ip", "netns", "exec", ns_, CONTINUUM_BINARY, "--output", runs.string(), cfg.string()},
          2400s, [](const std::string& l, bool) { std::printf("  [run] %s\n", l.c_str()); });
  const auto t_run_end = Clock::now();
  timing("run_total", secs(t_run_end - t_run));
  if (fs::exists(runs))
    for (const auto& e : fs::directory_iterator(runs)) run_dir_ = e.path();
  ASSERT_FALSE(run_dir_.empty()) << r.out << r.err;
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  rapl.stop();
  EXPECT_EQ(rapl.failures(), 0) << "the fake RAPL counter could not always be written";
  if (auto log = util::read_file(run_dir_ / "continuum.log"))
    for (const auto& line : util::split(*log, '\n'))
      if (line.find("phase took") != std::string::npos ||
          line.find("playbook") != std::string::npos)
        std::printf("E2E-PHASE %s\n", line.c_str());

  auto dj = util::read_file(run_dir_ / "deployment.json");
  ASSERT_TRUE(dj.ok());
  auto dep = infra::deployment_from_json(nlohmann::json::parse(*dj));
  ASSERT_TRUE(dep.ok()) << dep.error().message;
  infra::Deployment d = *dep;
  d.netns = ns_;
  ASSERT_EQ(d.nodes.size(), 2u);

  // 4. What the guests run.
  for (const auto& n : d.nodes) {
    auto ssh = util::ssh_connect(d.ssh_target(n), std::chrono::seconds(30));
    ASSERT_TRUE(ssh.ok()) << n.name << ": " << ssh.error().message;
    util::Remote& g = **ssh;
    EXPECT_NE(exec(g, "uname -r").find("deb13"), std::string::npos) << n.name << ": not trixie";
    EXPECT_NE(exec(g, "systemctl show -p ExecStart scaphandre").find("path=/usr/bin/scaphandre"),
              std::string::npos)
        << n.name << ": Debian's scaphandre is not what runs";
    EXPECT_EQ(util::trim(exec(g, "systemctl is-active scaphandre")), "active") << n.name;
    EXPECT_EQ(util::trim(exec(g, "findmnt -n -o FSTYPE,SOURCE /var/scaphandre")),
              "virtiofs scaphandre")
        << n.name;
    // The guest programs are built against Debian 12 and must start on Debian 13: they get as
    // far as asking for their broker settings.
    EXPECT_NE(exec(g, "/usr/local/bin/continuum-worker 2>&1 || true").find("mqtt-local-ip"),
              std::string::npos)
        << n.name;
    EXPECT_EQ(util::trim(exec(g, "ldd /usr/local/bin/continuum-endpoint | grep -c 'not found'", 1)),
              "0")
        << n.name;
    EXPECT_EQ(util::trim(exec(g, "systemctl is-enabled postgresql", 1)), "disabled") << n.name;
    EXPECT_EQ(util::trim(exec(g, "systemctl is-active postgresql", 3)), "inactive") << n.name;
  }
  {
    // The query-only example's setup starts it on demand.
    auto ssh = util::ssh_connect(d.ssh_target(d.nodes[0]), std::chrono::seconds(30));
    ASSERT_TRUE(ssh.ok()) << ssh.error().message;
    const auto t_pg = Clock::now();
    exec(**ssh, "sudo systemctl start postgresql");
    EXPECT_EQ(util::trim(exec(**ssh, "sudo -u postgres psql -Atc 'select 40 + 2'")), "42");
    timing("postgresql_start_and_query", secs(Clock::now() - t_pg));
  }

  // 5. Where the samples came from: each VM's own Scaphandre, at its address in the guest.
  auto samples = energy::read_samples(run_dir_ / "energy" / "samples.csv");
  ASSERT_TRUE(samples.ok()) << samples.error().message;
  std::map<std::string, std::vector<const energy::SampleRow*>> energy_rows;
  std::map<std::string, int> versions;
  for (const auto& s : *samples) {
    if (s.metric == "scaph_self_version") {
      versions[s.vm]++;
      const infra::DeployedNode* n = nullptr;
      for (const auto& x : d.nodes)
        if (x.name == s.vm) n = &x;
      ASSERT_NE(n, nullptr) << s.vm;
      EXPECT_EQ(s.target, "http://" + n->ip + ":8080/metrics") << s.vm;
      EXPECT_GE(s.value, 1.0) << "Scaphandre 1.x";
    }
    // One label set per VM (the first seen), as the energy module follows it.
    if (s.metric == "scaph_host_energy_microjoules" &&
        (energy_rows[s.vm].empty() || energy_rows[s.vm].front()->labels == s.labels))
      energy_rows[s.vm].push_back(&s);
  }
  std::string feed_error;
  auto feed = read_feed(run_dir_ / "energy" / "feed.csv", &feed_error);
  ASSERT_TRUE(feed_error.empty()) << feed_error;

  // 6. Joules per VM: Scaphandre's counter between its first and last sample against the feed
  // over the same window.
  double handed_total = 0, window_lo = 1e18, window_hi = 0;
  for (const auto& n : d.nodes) {
    EXPECT_GT(versions[n.name], 0)
        << n.name << ": no scaph_self_version: not the guest's Scaphandre";
    const auto& rows = energy_rows[n.name];
    ASSERT_GE(rows.size(), 10u) << n.name << ": too few energy samples";
    const auto& fs_ = feed[n.name];
    ASSERT_FALSE(fs_.empty()) << n.name << ": not in feed.csv";
    const energy::SampleRow& first = *rows.front();
    const energy::SampleRow& last = *rows.back();
    const double scaph_j = (last.value - first.value) / 1e6;
    const double f0 = feed_at(fs_, first.t), f1 = feed_at(fs_, last.t);
    ASSERT_FALSE(std::isnan(f0) || std::isnan(f1)) << n.name << ": samples outside the feed";
    const double feed_j = (f1 - f0) / 1e6;
    std::printf(
        "E2E-ENERGY %s window %.1f-%.1f s (%.1f s, %zu samples): scaphandre %.3f J, "
        "feed %.3f J (%.2f %%), mean %.2f W\n",
        n.name.c_str(), first.t, last.t, last.t - first.t, rows.size(), scaph_j, feed_j,
        feed_j > 0 ? 100 * (scaph_j - feed_j) / feed_j : 0.0, feed_j / (last.t - first.t));
    EXPECT_GT(last.t - first.t, 120) << n.name << ": the compared window is too short";
    EXPECT_GT(feed_j, 1.0) << n.name << ": the feed handed this busy VM almost nothing";
    EXPECT_NEAR(scaph_j, feed_j, 0.02 * feed_j) << n.name;
    // The counter never went down (the feed's files are replaced atomically: no torn read).
    for (size_t i = 1; i < rows.size(); ++i)
      EXPECT_GE(rows[i]->value, rows[i - 1]->value) << n.name << " at t=" << rows[i]->t;
    handed_total += feed_j;
    window_lo = std::min(window_lo, first.t);
    window_hi = std::max(window_hi, last.t);
  }
  // The feed shares the host's energy out: together at most what the RAPL counter grew over
  // the union of the windows (t is seconds since the run start, which the run fixed after t_run).
  const double rapl_j = kWatts * (window_hi - window_lo);
  std::printf("E2E-ENERGY feed total %.3f J of %.3f J from the fake RAPL over %.1f s\n",
              handed_total, rapl_j, window_hi - window_lo);
  EXPECT_LE(handed_total, rapl_j * 1.02);

  // 7. Nothing left.
  auto t_destroy = Clock::now();
  auto dr = run({"ip", "netns", "exec", ns_, CONTINUUM_BINARY, "destroy", run_dir_.string()}, 300s);
  EXPECT_EQ(dr.exit_code, 0) << dr.out << dr.err;
  destroyed_ = dr.exit_code == 0;
  timing("destroy", secs(Clock::now() - t_destroy));
  timing("test_total", secs(Clock::now() - t_test));
}

}  // namespace

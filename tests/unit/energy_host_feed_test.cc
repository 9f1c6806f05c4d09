// Host-side energy feed for guest `--vm` mode: per-VM energy_uj = share of host RAPL energy by CPU
// time, written atomically into each VM's share dir. The powercap tree and /proc/stat are fake
// files (no RAPL here) and so is the CPU source in the first test; the libvirt test driver is the
// real libvirt API.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <sstream>
#include <vector>

#include "continuum/energy/host_feed.h"
#include "continuum/util/files.h"

using namespace continuum;
namespace fs = std::filesystem;

namespace {
struct FakeCpu : energy::CpuTimeSource {
  std::map<std::string, uint64_t> now;
  Expected<std::map<std::string, uint64_t>> cpu_time_ns() override { return now; }
};
std::string slurp(const fs::path& p) {
  auto t = util::read_file(p);
  return t ? *t : "<missing>";
}
}  // namespace

TEST(EnergyHostFeed, FakePowercapTreeAndCpuSourceGiveSharesOfHostEnergy) {
  auto dir = fs::temp_directory_path() / ("continuum-feed-" + std::to_string(getpid()));
  fs::remove_all(dir);
  auto rapl = dir / "powercap/intel-rapl:0";
  auto write = [](const fs::path& p, const std::string& s) {
    ASSERT_TRUE(util::write_file_atomic(p, s).ok());
  };
  long hz = sysconf(_SC_CLK_TCK);
  auto stat = [&](uint64_t busy_ticks) {
    return "cpu  " + std::to_string(busy_ticks) + " 0 0 5000 0 0 0 0 0 0\ncpu0 1 2 3 4\n";
  };
  write(rapl / "energy_uj", "1000000000\n");
  write(rapl / "max_energy_range_uj", "262143328850\n");
  write(dir / "stat", stat(0));
  auto cpu = std::make_unique<FakeCpu>();
  FakeCpu* fake = cpu.get();
  fake->now = {{"vm_a", 0}, {"vm_b", 0}, {"other", 0}};
  energy::HostFeedOptions o;
  o.powercap_path = rapl;
  o.proc_stat = dir / "stat";
  o.share_root = dir / "shares";
  o.vms = {"vm_a", "vm_b"};
  energy::HostFeed feed(o, std::move(cpu));
  ASSERT_TRUE(feed.step().ok());
  EXPECT_EQ(slurp(dir / "shares/vm_a/intel-rapl:0/energy_uj"), "0\n");
  EXPECT_EQ(slurp(dir / "shares/vm_a/intel-rapl:0/name"), "package-0\n");

  // 1 s: host used 100 J; busy 2 CPU-seconds, of which vm_a 1 s and vm_b 0.5 s.
  write(rapl / "energy_uj", "1100000000\n");
  write(dir / "stat", stat(2 * static_cast<uint64_t>(hz)));
  fake->now = {{"vm_a", 1000000000}, {"vm_b", 500000000}};
  ASSERT_TRUE(feed.step().ok());
  EXPECT_EQ(slurp(dir / "shares/vm_a/intel-rapl:0/energy_uj"), "50000000\n");
  EXPECT_EQ(slurp(dir / "shares/vm_b/intel-rapl:0/energy_uj"), "25000000\n");

  // The host counter wraps: 262143328850 - 262133328850 + 10000000 = 20 J more; vm_a all busy time.
  write(rapl / "energy_uj", "262133328850\n");
  write(dir / "stat", stat(3 * static_cast<uint64_t>(hz)));
  fake->now = {{"vm_a", 2000000000}, {"vm_b", 500000000}};
  ASSERT_TRUE(feed.step().ok());  // huge host delta, but vm_a's share of it is 100 %
  double after_jump = feed.energy_uj()["vm_a"];
  write(rapl / "energy_uj", "10000000\n");
  write(dir / "stat", stat(4 * static_cast<uint64_t>(hz)));
  fake->now = {{"vm_a", 3000000000}, {"vm_b", 500000000}};
  ASSERT_TRUE(feed.step().ok());
  EXPECT_DOUBLE_EQ(feed.energy_uj()["vm_a"] - after_jump, 20000000);
  EXPECT_DOUBLE_EQ(feed.energy_uj()["vm_b"], 25000000);
  // Atomic writes leave no temp files behind.
  for (const auto& e : fs::directory_iterator(dir / "shares/vm_a/intel-rapl:0"))
    EXPECT_TRUE(e.path().filename() == "energy_uj" || e.path().filename() == "name" ||
                e.path().filename() == "max_energy_range_uj")
        << e.path();

  // A broken powercap file is an error naming it.
  write(rapl / "energy_uj", "garbage\n");
  auto st = feed.step();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("energy_uj"), std::string::npos);
  fs::remove_all(dir);
}

// feed.csv: every step's value per VM, the same integer the guest reads, with t on the caller's
// run clock; appending to an existing record keeps one header.
TEST(EnergyHostFeed, RecordCsvHoldsWhatEachVmWasHandedOverTime) {
  auto dir = fs::temp_directory_path() / ("continuum-feed-rec-" + std::to_string(getpid()));
  fs::remove_all(dir);
  auto rapl = dir / "powercap/intel-rapl:0";
  auto write = [](const fs::path& p, const std::string& s) {
    ASSERT_TRUE(util::write_file_atomic(p, s).ok());
  };
  long hz = sysconf(_SC_CLK_TCK);
  auto stat = [&](uint64_t ticks) { return "cpu  " + std::to_string(ticks) + " 0 0 9 0 0 0 0\n"; };
  write(rapl / "energy_uj", "0\n");
  write(dir / "stat", stat(0));
  auto cpu = std::make_unique<FakeCpu>();
  FakeCpu* fake = cpu.get();
  fake->now = {{"vm,a", 0}, {"vm_b", 0}};  // a comma in a name must not shift the columns
  const auto run_start = std::chrono::steady_clock::now() - std::chrono::seconds(100);
  energy::HostFeedOptions o;
  o.powercap_path = rapl;
  o.proc_stat = dir / "stat";
  o.share_root = dir / "shares";
  o.vms = {"vm,a", "vm_b"};
  o.record_csv = dir / "run/energy/feed.csv";  // parent directories are made
  o.run_start = run_start;
  {
    energy::HostFeed feed(o, std::move(cpu));
    const auto before = std::chrono::steady_clock::now();
    ASSERT_TRUE(feed.step().ok());
    for (int i = 1; i <= 3; ++i) {
      // Each step: 3 J more on the host, 1 busy CPU-second of which vm,a 2/3 and vm_b 1/3.
      write(rapl / "energy_uj", std::to_string(i * 3000000) + "\n");
      write(dir / "stat", stat(static_cast<uint64_t>(i * hz)));
      fake->now = {{"vm,a", i * 666666667ull}, {"vm_b", i * 333333333ull}};
      ASSERT_TRUE(feed.step().ok());
    }
    const double t_lo = std::chrono::duration<double>(before - run_start).count();
    const double t_hi =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();

    auto text = util::read_file(o.record_csv);
    ASSERT_TRUE(text.ok());
    std::vector<std::string> lines;
    std::stringstream in(*text);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    ASSERT_EQ(lines.size(), 1u + 4 * 2) << *text;
    EXPECT_EQ(lines[0], "t,vm,energy_uj");
    double last_t = 0;
    for (size_t i = 1; i < lines.size(); ++i) {
      const bool a = lines[i].find("\"vm,a\"") != std::string::npos;
      auto comma = lines[i].find(',');
      double t = std::stod(lines[i].substr(0, comma));
      EXPECT_GE(t, t_lo) << lines[i];
      EXPECT_LE(t, t_hi) << lines[i];
      EXPECT_GE(t, last_t) << "rows in time order";
      last_t = t;
      const uint64_t uj = std::stoull(lines[i].substr(lines[i].rfind(',') + 1));
      const uint64_t step = (i - 1) / 2;  // two VMs per step, in option order
      EXPECT_NEAR(static_cast<double>(uj), (a ? 2e6 : 1e6) * static_cast<double>(step), 2)
          << lines[i];
      EXPECT_EQ(lines[i].find(a ? "\"vm,a\"" : "vm_b"), comma + 1) << lines[i];
    }
    // The last rows are what the guests read now.
    EXPECT_EQ(lines.back().substr(lines.back().rfind(',') + 1) + "\n",
              slurp(dir / "shares/vm_b/intel-rapl:0/energy_uj"));
  }
  {
    // A second feed on the same file (a restarted run phase) appends without a second header.
    auto cpu2 = std::make_unique<FakeCpu>();
    cpu2->now = {{"vm,a", 0}, {"vm_b", 0}};
    energy::HostFeed feed(o, std::move(cpu2));
    ASSERT_TRUE(feed.step().ok());
    auto text = util::read_file(o.record_csv);
    ASSERT_TRUE(text.ok());
    EXPECT_EQ(std::count(text->begin(), text->end(), '\n'), 1 + 5 * 2);
    EXPECT_EQ(text->find("t,vm,energy_uj", 1), std::string::npos);
  }
  // An unwritable record is an error naming the file, not a silent gap.
  o.record_csv = dir / "stat" / "feed.csv";  // below a regular file
  energy::HostFeed bad(o, std::make_unique<FakeCpu>());
  auto st = bad.step();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("feed.csv"), std::string::npos) << st.error().message;
  fs::remove_all(dir);
}

TEST(EnergyHostFeed, LibvirtTestDriverReportsCpuTime) {
  auto src = energy::libvirt_cpu_source("test:///default");
  ASSERT_TRUE(src.ok()) << src.error().message;
  auto t = (*src)->cpu_time_ns();
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(t->count("test"));  // the driver's preloaded running domain
  EXPECT_GT(t->at("test"), 0u);
}

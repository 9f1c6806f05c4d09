// Host-side energy feed for guest `--vm` mode: per-VM energy_uj = share of host RAPL energy by CPU
// time, written atomically into each VM's share dir. The powercap tree and /proc/stat are fake
// files (no RAPL here) and so is the CPU source in the first test; the libvirt test driver is the
// real libvirt API.
#include <gtest/gtest.h>

#include <filesystem>

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
  energy::HostFeed feed({rapl, dir / "stat", dir / "shares", {"vm_a", "vm_b"}, 1.0},
                        std::move(cpu));
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

TEST(EnergyHostFeed, LibvirtTestDriverReportsCpuTime) {
  auto src = energy::libvirt_cpu_source("test:///default");
  ASSERT_TRUE(src.ok()) << src.error().message;
  auto t = (*src)->cpu_time_ns();
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(t->count("test"));  // the driver's preloaded running domain
  EXPECT_GT(t->at("test"), 0u);
}

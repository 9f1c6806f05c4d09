// The resource check's parsing and judgements, its sequence against a fake guest and a fake
// hypervisor whose vCPU clock runs at a set share of the wall clock (named Fake: real TCG guests
// run it in e2e.NetperfTiers), and vcpu_info through libvirt's real test:///default driver.
#include "continuum/infra/resource_check.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>

#include "continuum/util/files.h"
#include "continuum/util/strings.h"

namespace continuum::infra {
namespace {

TEST(ResourceCheckTest, ParsesGuestFacts) {
  auto f = parse_guest_facts("2\n988124\n");
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->vcpus, 2);
  EXPECT_EQ(f->memtotal_kib, 988124);
  EXPECT_FALSE(parse_guest_facts("2\n").ok());
  EXPECT_FALSE(parse_guest_facts("two\n988124\n").ok());
  EXPECT_FALSE(parse_guest_facts("0\n988124\n").ok());
  EXPECT_NE(parse_guest_facts("sh: nproc: not found").error().message.find("nproc: not found"),
            std::string::npos);
}

TEST(ResourceCheckTest, ParsesCoreutilsAndBusyboxDd) {
  auto c = parse_dd(
      "50+0 records in\n50+0 records out\n52428800 bytes (52 MB, 50 MiB) copied, 2.50372 s, 20.9 "
      "MB/s\n");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->bytes, 52428800);
  EXPECT_DOUBLE_EQ(c->seconds, 2.50372);
  EXPECT_NEAR(c->mb_per_s(), 20.94, 0.01);
  auto b = parse_dd(
      "50+0 records in\n50+0 records out\n52428800 bytes (50.0MB) copied, 2.503 "
      "seconds, 20.0MB/s\n");
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_DOUBLE_EQ(b->seconds, 2.503);
  EXPECT_FALSE(parse_dd("dd: failed to open '/x': Invalid argument\n").ok());
}

TEST(ResourceCheckTest, DiskTestSizeTakesAboutTwoAndAHalfSecondsAtTheLimit) {
  EXPECT_EQ(disk_test_mib(0), 64);
  EXPECT_EQ(disk_test_mib(20), 48);  // 50 MB = 47.7 MiB
  EXPECT_EQ(disk_test_mib(1), 16);
  EXPECT_EQ(disk_test_mib(1000), 256);
  EXPECT_NE(disk_script(48).find("count=48 oflag=direct conv=fsync"), std::string::npos);
  EXPECT_NE(disk_script(48).find("iflag=direct"), std::string::npos);
}

ResourceRow row(const char* check) {
  ResourceRow r;
  r.node = "edge0";
  r.check = check;
  return r;
}

TEST(ResourceCheckTest, Judgements) {
  auto r = row("vcpus");
  judge_vcpus(r, 2, 2);
  EXPECT_EQ(r.status, "ok");
  judge_vcpus(r, 2, 1);
  EXPECT_EQ(r.status, "warning");
  EXPECT_EQ(r.message, "edge0: the guest sees 1 vCPUs, the tier asks for 2");

  r = row("memory");
  judge_memory(r, 1024, 988124);  // 965 MiB of 1 GiB: the kernel's share
  EXPECT_EQ(r.status, "ok") << r.message;
  judge_memory(r, 2048, 988124);
  EXPECT_EQ(r.status, "warning");
  EXPECT_NE(r.message.find("the guest has 965 MiB (MemTotal), the tier asks for 2048 MiB"),
            std::string::npos)
      << r.message;

  r = row("cpu_quota");
  judge_quota(r, 0.5, 0.49);
  EXPECT_EQ(r.status, "ok");
  EXPECT_EQ(r.configured, "0.5 of a core");
  EXPECT_EQ(r.measured, "0.49 of a core");
  judge_quota(r, 0.5, 0.97);
  EXPECT_EQ(r.status, "warning");
  EXPECT_NE(r.message.find("not enforced"), std::string::npos);
  judge_quota(r, 0.5, 0.2);
  EXPECT_EQ(r.status, "host-limited");
  judge_quota(r, 1.0, 0.95);
  EXPECT_EQ(r.status, "not-limited");

  r = row("disk_write");
  judge_disk(r, 20, 20.9);
  EXPECT_EQ(r.status, "ok");
  judge_disk(r, 20, 180);
  EXPECT_EQ(r.status, "warning");
  EXPECT_NE(r.message.find("disk_write at 180.0 MB/s exceeds its limit of 20 MB/s"),
            std::string::npos);
  judge_disk(r, 20, 5);
  EXPECT_EQ(r.status, "warning");
  judge_disk(r, 0, 180);
  EXPECT_EQ(r.status, "not-limited");
}

TEST(ResourceCheckTest, PinningComparesAffinityAndPlacement) {
  auto r = row("pinning");
  std::vector<VcpuInfo> v = {{0, 100, 1, {1}}, {1, 100, 0, {0, 1}}};
  judge_pinning(r, {}, v);
  EXPECT_EQ(r.status, "not-limited");
  EXPECT_EQ(r.measured, "vCPU0 on CPU 1 (affinity 1); vCPU1 on CPU 0 (affinity 0-1)");
  judge_pinning(r, {1, 2}, v);
  EXPECT_EQ(r.status, "warning");
  EXPECT_NE(r.message.find("vCPU1 should run only on CPU 2 but runs on 0 (affinity 0-1)"),
            std::string::npos)
      << r.message;
  EXPECT_EQ(r.configured, "vCPU0 on CPU 1; vCPU1 on CPU 2");
  v[1] = {1, 100, 2, {2}};
  judge_pinning(r, {1, 2}, v);
  EXPECT_EQ(r.status, "ok");
}

/// A hypervisor whose vCPUs use `share` of the wall clock since construction (a quota the fake
/// enforces), pinned where told. Everything else is the recording one's.
class FakeClockHypervisor : public RecordingHypervisor {
 public:
  FakeClockHypervisor(double share, std::vector<int> pinned)
      : share_(share), pinned_(std::move(pinned)) {}
  Expected<std::vector<VcpuInfo>> vcpu_info(const std::string&) override {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                  std::chrono::steady_clock::now() - start_)
                  .count();
    VcpuInfo v;
    v.cpu_time_ns = static_cast<unsigned long long>(static_cast<double>(ns) * share_);
    v.cpu = pinned_.empty() ? 0 : pinned_[0];
    v.affinity = pinned_.empty() ? std::vector<int>{0, 1} : pinned_;
    return std::vector<VcpuInfo>{v};
  }

 private:
  double share_;
  std::vector<int> pinned_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

/// Answers the guest's scripts: facts, the busy loop (returns at once) and dd at `disk_mb_s`.
class FakeGuest : public NetemExecutor {
 public:
  explicit FakeGuest(double disk_mb_s) : disk_(disk_mb_s) {}
  Expected<util::ExecResult> run(const std::string& id, const std::string& script,
                                 std::chrono::milliseconds) override {
    std::lock_guard lock(mu_);
    util::ExecResult r;
    r.exit_code = 0;
    if (script.find("nproc") != std::string::npos) {
      r.out = "1\n988124\n";
    } else if (script.find("while :") != std::string::npos) {
      ++busy_loops;
      busy_on.push_back(id);
    } else if (script.find("oflag=direct") != std::string::npos) {
      ++disk_tests;
      const double s = 50.0 / disk_;
      r.out = fmt::format(
          "52428800 bytes (52 MB, 50 MiB) copied, {:.3f} s, x MB/s\n---\n"
          "52428800 bytes (52 MB, 50 MiB) copied, 0.5 s, x MB/s\n",
          s * 1.048576);
    }
    return r;
  }
  bool needs_sudo(const std::string&) const override { return false; }
  std::string describe(const std::string& id) const override { return id; }
  int busy_loops = 0, disk_tests = 0;
  std::vector<std::string> busy_on;

 private:
  double disk_;
  std::mutex mu_;
};

/// The busy loop shortened to 0.3 s (the fake hypervisor's clock makes the share exact anyway).
ResourceCheckOptions short_busy_loop() {
  ResourceCheckOptions opt;
  opt.busy = std::chrono::milliseconds(300);
  opt.window_start = std::chrono::milliseconds(20);
  opt.window_end = std::chrono::milliseconds(220);
  return opt;
}

plan::Plan plan_with_limits() {
  plan::Plan p;
  plan::Host h;
  h.name = "local";
  h.libvirt_uri = "fake:///";
  p.hosts = {h};
  auto add = [&](const std::string& id, config::Tier t, double quota, uint64_t wbps) {
    plan::Node n;
    n.id = id;
    n.name = id + "_alice";
    n.tier = t;
    n.cores = 1;
    n.memory_mib = 1024;
    n.quota = quota;
    n.cputune_quota = static_cast<int>(100000 * quota);
    n.write_bytes_sec = wbps;
    p.nodes.push_back(n);
  };
  add("cloud0", config::Tier::cloud, 1.0, 0);
  add("edge0", config::Tier::edge, 1.0, 20'000'000);
  add("endpoint0", config::Tier::endpoint, 0.5, 0);
  return p;
}

TEST(ResourceCheckRunTest, FakeGuestAndHypervisorMeasuresOnlyWhatIsLimited) {
  plan::Plan p = plan_with_limits();
  FakeGuest guest(20.4);
  auto hv = std::make_shared<FakeClockHypervisor>(0.5, std::vector<int>{});
  HypervisorFor for_host = [&](size_t) -> Expected<HypervisorPtr> { return HypervisorPtr(hv); };
  const ResourceCheckOptions opt = short_busy_loop();
  auto dir = std::filesystem::temp_directory_path() / ("resources-" + std::to_string(::getpid()));
  auto rep = check_resources(p, guest, for_host, dir, nullptr, opt);
  ASSERT_TRUE(rep.ok()) << rep.error().message;
  // Busy loop only on the VM with a quota, disk test only on the VM with a limit.
  EXPECT_EQ(guest.busy_on, std::vector<std::string>{"endpoint0"});
  EXPECT_EQ(guest.disk_tests, 1);
  std::map<std::string, const ResourceRow*> by;
  for (const auto& r : rep->rows) by[r.node + "." + r.check] = &r;
  ASSERT_TRUE(by.count("endpoint0.cpu_quota"));
  EXPECT_NEAR(*by["endpoint0.cpu_quota"]->value, 0.5, 0.05);
  EXPECT_EQ(by["endpoint0.cpu_quota"]->status, "ok");
  ASSERT_TRUE(by.count("edge0.disk_write"));
  EXPECT_NEAR(*by["edge0.disk_write"]->value, 20.4, 0.1);
  EXPECT_EQ(by["edge0.disk_write"]->status, "ok");
  EXPECT_EQ(by["edge0.disk_read"]->status, "not-limited");
  EXPECT_EQ(by["cloud0.vcpus"]->status, "ok");
  EXPECT_EQ(by["cloud0.memory"]->status, "ok");
  EXPECT_EQ(by["cloud0.pinning"]->status, "not-limited");
  EXPECT_FALSE(by.count("cloud0.cpu_quota"));
  EXPECT_TRUE(rep->warnings.empty()) << util::join(rep->warnings, "\n");
  auto csv = util::read_file(dir / "infrastructure" / "resources.csv");
  ASSERT_TRUE(csv.ok());
  EXPECT_NE(csv->find("edge0,disk_write,20 MB/s,20.4 MB/s,20.400,ok,\n"), std::string::npos)
      << *csv;
  EXPECT_NE(format_resource_table(rep->rows).find("endpoint0  cpu_quota"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(ResourceCheckRunTest, FakeHypervisorIgnoringTheQuotaIsAWarning) {
  plan::Plan p = plan_with_limits();
  FakeGuest guest(60);  // the disk limit not applied either
  auto hv = std::make_shared<FakeClockHypervisor>(1.0, std::vector<int>{});
  HypervisorFor for_host = [&](size_t) -> Expected<HypervisorPtr> { return HypervisorPtr(hv); };
  const ResourceCheckOptions opt = short_busy_loop();
  auto rep = check_resources(p, guest, for_host, "", nullptr, opt);
  ASSERT_TRUE(rep.ok()) << rep.error().message;
  ASSERT_EQ(rep->warnings.size(), 2u) << util::join(rep->warnings, "\n");
  EXPECT_NE(rep->warnings[0].find("edge0: disk_write at 60.0 MB/s exceeds its limit"),
            std::string::npos)
      << rep->warnings[0];
  EXPECT_NE(rep->warnings[1].find("endpoint0: a busy loop got 1.00 of a core, the quota is 0.5"),
            std::string::npos)
      << rep->warnings[1];
}

// A disk check whose dd cannot run measured nothing: a failure for the caller to fail the run on,
// not a warning that the run could end "success" with.
TEST(ResourceCheckRunTest, CheckThatCouldNotBeMadeIsAFailureNotAWarning) {
  plan::Plan p = plan_with_limits();
  class NoDirectIo : public FakeGuest {
   public:
    using FakeGuest::FakeGuest;
    Expected<util::ExecResult> run(const std::string& id, const std::string& script,
                                   std::chrono::milliseconds t) override {
      if (script.find("oflag=direct") == std::string::npos) return FakeGuest::run(id, script, t);
      util::ExecResult r;
      r.exit_code = 1;
      r.err = "dd: failed to open '/var/tmp/continuum-dd': Invalid argument\n";
      return r;
    }
  } guest(20);
  auto hv = std::make_shared<FakeClockHypervisor>(0.5, std::vector<int>{});
  HypervisorFor for_host = [&](size_t) -> Expected<HypervisorPtr> { return HypervisorPtr(hv); };
  const ResourceCheckOptions opt = short_busy_loop();
  auto rep = check_resources(p, guest, for_host, "", nullptr, opt);
  ASSERT_TRUE(rep.ok()) << rep.error().message;
  EXPECT_TRUE(rep->warnings.empty()) << util::join(rep->warnings, "\n");
  ASSERT_EQ(rep->failures.size(), 1u) << util::join(rep->failures, "\n");
  EXPECT_NE(rep->failures[0].find("edge0"), std::string::npos) << rep->failures[0];
  EXPECT_NE(rep->failures[0].find("Invalid argument"), std::string::npos) << rep->failures[0];
}

TEST(ResourceCheckLibvirtTest, TestDriverReportsVcpus) {
  // libvirt's in-process test driver: its predefined domain "test" runs with 2 vCPUs.
  auto hv = connect_libvirt("test:///default");
  ASSERT_TRUE(hv.ok()) << hv.error().message;
  auto v = (*hv)->vcpu_info("test");
  ASSERT_TRUE(v.ok()) << v.error().message;
  ASSERT_FALSE(v->empty());
  EXPECT_EQ((*v)[0].number, 0);
  EXPECT_FALSE((*v)[0].affinity.empty());
  auto missing = (*hv)->vcpu_info("no-such-domain");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("no-such-domain"), std::string::npos);
}

}  // namespace
}  // namespace continuum::infra

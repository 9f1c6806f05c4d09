// The run lock through the real binary, without a libvirtd: this test process plays the live run
// (it holds the (user, qemu:///system) lock or a run directory's run.lock, with its own PID as
// owner), and `continuum` is started against it:
//  - `continuum --output DIR quickstart.cfg` refuses at once (exit 1), naming the live run's
//    directory and PID, and creates nothing (no DIR, no run directory);
//  - `continuum destroy RUN_DIR` of the live run refuses (exit 1) and removes nothing; once the
//    owner has released it, the same command removes the run's resources.
// The lock directory comes from XDG_STATE_HOME and the user from CONTINUUM_USER, both private to
// the test. The e2e quickstart test does the same against a real first run with VMs up.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "continuum/infra/ledger.h"
#include "continuum/infra/run_lock.h"
#include "continuum/util/files.h"
#include "continuum/util/process.h"

namespace continuum {
namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

class TempDir {
 public:
  TempDir() {
    std::string t = (fs::temp_directory_path() / "continuum-lockcli-XXXXXX").string();
    path_ = ::mkdtemp(t.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

util::ProcessResult continuum(const std::vector<std::string>& args, const fs::path& state_home) {
  util::ProcessSpec spec;
  spec.argv = {CONTINUUM_BINARY};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.env = {{"XDG_STATE_HOME", state_home.string()}, {"CONTINUUM_USER", "locktest"}};
  spec.timeout = std::chrono::seconds(120);
  auto r = util::run_process(spec);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? *r : util::ProcessResult{};
}

std::string pid_text() { return "PID " + std::to_string(::getpid()); }

TEST(RunLockCli, SecondRunRefusesAtOnceNamingTheLiveRunAndCreatesNothing) {
  TempDir tmp;
  const fs::path state = tmp.path() / "state";
  const fs::path cfg = fs::path(CONTINUUM_SOURCE_DIR) / "configuration" / "quickstart.cfg";
  // The live run: this process, holding the lock continuum derives for (locktest, qemu:///system).
  auto held = infra::try_lock(
      infra::hypervisor_lock_file(state / "continuum" / "locks", "locktest", "qemu:///system"));
  ASSERT_TRUE(held.ok() && held->lock) << (held.ok() ? "busy" : held.error().message);
  ASSERT_TRUE(held->lock
                  ->write_owner({static_cast<long>(::getpid()), "2026-01-02T03:04:05Z",
                                 "/runs/the-live-one", "locktest", "qemu:///system"})
                  .ok());

  const fs::path out = tmp.path() / "runs";
  auto t0 = Clock::now();
  auto r = continuum({"--output", out.string(), cfg.string()}, state);
  double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const std::string text = r.out + r.err;
  EXPECT_EQ(r.exit_code, 1) << text;
  EXPECT_LT(seconds, 10.0) << "not refused at once";
  EXPECT_NE(text.find("another continuum run of user locktest is live on qemu:///system"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("run directory /runs/the-live-one"), std::string::npos) << text;
  EXPECT_NE(text.find(pid_text()), std::string::npos) << text;
  EXPECT_NE(text.find("cloud_controller_locktest"), std::string::npos)
      << "the colliding names: " << text;
  EXPECT_FALSE(fs::exists(out)) << "the refused run created its output directory";

  // Once the live run is gone the lock is free again (the same binary gets past it; what it does
  // next needs a libvirtd, which this test does not have, so only the lock is checked).
  held->lock.reset();
  auto again = infra::try_lock(
      infra::hypervisor_lock_file(state / "continuum" / "locks", "locktest", "qemu:///system"));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->lock.has_value());
}

TEST(RunLockCli, DestroyOfALiveRunRefusesAndOfADeadOneRemoves) {
  TempDir tmp;
  const fs::path run = tmp.path() / "runs" / "2026-01-01T00-00-00_quickstart";
  const fs::path victim = tmp.path() / "disks" / "endpoint0_locktest.qcow2";
  ASSERT_TRUE(util::write_file_atomic(victim, "not really a disk\n").ok());
  {
    auto l = infra::Ledger::create(
        run / "state.json", infra::LedgerInfo{run.string(), "locktest", "quickstart", "deployed"});
    ASSERT_TRUE(l.ok()) << l.error().message;
    auto id = (*l)->intend(
        infra::Resource{0, infra::ResourceKind::file, "", victim.string(), "endpoint0", {}});
    ASSERT_TRUE(id.ok());
    ASSERT_TRUE((*l)->set_state({*id}, infra::ResourceState::created).ok());
  }
  auto live = infra::try_lock_run_dir(run);
  ASSERT_TRUE(live.ok() && live->lock);
  ASSERT_TRUE(live->lock
                  ->write_owner({static_cast<long>(::getpid()), "2026-01-02T03:04:05Z",
                                 run.string(), "locktest", ""})
                  .ok());

  auto refused = continuum({"destroy", run.string()}, tmp.path() / "state");
  const std::string text = refused.out + refused.err;
  EXPECT_EQ(refused.exit_code, 1) << text;
  EXPECT_NE(text.find("still live"), std::string::npos) << text;
  EXPECT_NE(text.find(pid_text()), std::string::npos) << text;
  EXPECT_TRUE(fs::exists(victim)) << "destroy removed a live run's resource";

  live->lock.reset();  // the run has ended
  auto done = continuum({"destroy", run.string()}, tmp.path() / "state");
  EXPECT_EQ(done.exit_code, 0) << done.out << done.err;
  EXPECT_FALSE(fs::exists(victim));
}

}  // namespace
}  // namespace continuum

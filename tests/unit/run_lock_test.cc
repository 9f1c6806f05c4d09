// infra::run_lock: the flock that keeps a second run (or a destroy, or a rerun's leftover removal)
// away from a live run. Two processes for real (fork: the child holds the lock, the parent is
// refused with the child's PID; the child is SIGKILLed and the lock is free at once), the
// per-user per-hypervisor key, and leftover removal that skips a live run's ledger.
#include "continuum/infra/run_lock.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "continuum/infra/destroy.h"
#include "continuum/infra/hypervisor.h"
#include "continuum/infra/ledger.h"
#include "continuum/util/files.h"
#include "unit/infra_fixture.h"

namespace continuum::infra {
namespace {
namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string t = (fs::temp_directory_path() / "continuum-lock-XXXXXX").string();
    path_ = ::mkdtemp(t.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

/// A child process that takes `file`'s lock, writes `run_dir` as its owner, reports on a pipe and
/// then waits (forever) until the parent kills it.
struct LockingChild {
  pid_t pid = -1;
  explicit LockingChild(const fs::path& file, const std::string& run_dir) {
    int ready[2];
    EXPECT_EQ(::pipe(ready), 0);
    pid = ::fork();
    if (pid == 0) {
      ::close(ready[0]);
      auto a = try_lock(file);
      char ok = a.ok() && a->lock &&
                        a->lock
                            ->write_owner({static_cast<long>(::getpid()), "2026-01-02T03:04:05Z",
                                           run_dir, "alice", "qemu:///system"})
                            .ok()
                    ? 'y'
                    : 'n';
      if (::write(ready[1], &ok, 1) != 1) ::_exit(3);
      for (;;) ::pause();
    }
    ::close(ready[1]);
    char c = 0;
    EXPECT_EQ(::read(ready[0], &c, 1), 1);
    ::close(ready[0]);
    EXPECT_EQ(c, 'y') << "the child could not take the lock";
  }
  void kill() {
    if (pid <= 0) return;
    ::kill(pid, SIGKILL);
    int st;
    ::waitpid(pid, &st, 0);
    pid = -1;
  }
  ~LockingChild() { kill(); }
};

TEST(RunLock, SecondProcessIsRefusedWithTheOwnerAndGetsTheLockOnceTheOwnerDies) {
  TempDir tmp;
  fs::path file = tmp.path() / "locks" / "x.lock";
  LockingChild child(file, "/runs/first");
  auto a = try_lock(file);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_FALSE(a->lock.has_value());
  EXPECT_EQ(a->owner.pid, child.pid);
  EXPECT_EQ(a->owner.run_dir, "/runs/first");
  EXPECT_EQ(a->owner.started, "2026-01-02T03:04:05Z");
  EXPECT_EQ(describe_owner(a->owner), "run directory /runs/first, PID " +
                                          std::to_string(child.pid) +
                                          ", started 2026-01-02T03:04:05Z");
  // However the owner ends (here: SIGKILL, no clean-up of its own), the kernel drops the lock.
  child.kill();
  auto b = try_lock(file);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_TRUE(b->lock.has_value());
}

TEST(RunLock, ALockIsReleasedWhenItsObjectGoesAndMovesWithIt) {
  TempDir tmp;
  fs::path file = tmp.path() / "y.lock";
  {
    auto a = try_lock(file);
    ASSERT_TRUE(a.ok() && a->lock);
    FileLock moved = std::move(*a->lock);
    a->lock.reset();              // the moved-from object must not release it
    auto again = try_lock(file);  // another open file description: refused, even in one process
    ASSERT_TRUE(again.ok());
    EXPECT_FALSE(again->lock.has_value());
  }
  auto after = try_lock(file);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->lock.has_value());
}

TEST(RunLock, OwnerRoundTripsAndToleratesGarbage) {
  LockOwner o{42, "2026-01-01T00:00:00Z", "/r/a \"b\"", "bob", "qemu+ssh://h/system"};
  LockOwner back = parse_owner(format_owner(o));
  EXPECT_EQ(back.pid, 42);
  EXPECT_EQ(back.run_dir, o.run_dir);
  EXPECT_EQ(back.user, "bob");
  EXPECT_EQ(back.uri, o.uri);
  EXPECT_EQ(parse_owner("").pid, 0);
  EXPECT_EQ(parse_owner("{\"pid\": \"x\"}").pid, 0);
}

TEST(RunLock, OneFilePerUserAndHypervisorAndNoneForTheTestDriver) {
  fs::path d = "/l";
  EXPECT_EQ(hypervisor_lock_file(d, "alice", "qemu:///system"),
            hypervisor_lock_file(d, "alice", "qemu:///system"));
  EXPECT_NE(hypervisor_lock_file(d, "alice", "qemu:///system"),
            hypervisor_lock_file(d, "bob", "qemu:///system"));
  EXPECT_NE(hypervisor_lock_file(d, "alice", "qemu:///system"),
            hypervisor_lock_file(d, "alice", "qemu+ssh://h1/system"));
  // Characters the readable part drops still keep two URIs apart (the hash).
  EXPECT_NE(hypervisor_lock_file(d, "alice", "qemu+ssh://a:b/system"),
            hypervisor_lock_file(d, "alice", "qemu+ssh://a_b/system"));
  std::string name = hypervisor_lock_file(d, "alice", "qemu:///system").filename().string();
  EXPECT_EQ(name.rfind("alice@qemu_system-", 0), 0u) << name;
  EXPECT_EQ(name.find('/'), std::string::npos);
  EXPECT_FALSE(uri_needs_lock("test:///default"));
  EXPECT_TRUE(uri_needs_lock("qemu:///system"));
}

TEST(RunLock, SecondRunOfTheSameUserOnTheSameHypervisorIsRefusedNamingTheFirst) {
  TempDir tmp;
  auto plan = testing::bench_cloud_plan("alice");  // qemu:///system
  auto first = RunLock::acquire(plan, tmp.path() / "locks");
  ASSERT_TRUE(first.ok()) << first.error().message;
  ASSERT_TRUE(first->attach_run_dir(tmp.path() / "runs" / "first").ok());
  EXPECT_TRUE(fs::exists(tmp.path() / "runs" / "first" / kRunLockName));

  auto second = RunLock::acquire(plan, tmp.path() / "locks");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().exit_code, continuum::ExitCode::failure);
  const std::string& m = second.error().message;
  EXPECT_NE(m.find("live on qemu:///system"), std::string::npos) << m;
  EXPECT_NE(m.find("run directory " + (tmp.path() / "runs" / "first").string()), std::string::npos)
      << m;
  EXPECT_NE(m.find("PID " + std::to_string(::getpid())), std::string::npos) << m;
  EXPECT_NE(m.find(plan.nodes[0].name), std::string::npos) << m;

  // Another user's names do not collide: its lock is another file.
  EXPECT_TRUE(RunLock::acquire(testing::bench_cloud_plan("bob"), tmp.path() / "locks").ok());
  // The run directory of a live run cannot be taken either (destroy, leftover removal).
  auto dir = try_lock_run_dir(tmp.path() / "runs" / "first");
  ASSERT_TRUE(dir.ok());
  EXPECT_FALSE(dir->lock.has_value());
  EXPECT_EQ(dir->owner.run_dir, (tmp.path() / "runs" / "first").string());

  first = make_error("released");  // the first run ends
  EXPECT_TRUE(RunLock::acquire(plan, tmp.path() / "locks").ok());
}

TEST(RunLock, TestDriverRunsNeedNoLock) {
  TempDir tmp;
  auto plan = testing::many_plan(2, "alice", "test:///default");
  auto a = RunLock::acquire(plan, tmp.path() / "locks");
  auto b = RunLock::acquire(plan, tmp.path() / "locks");
  EXPECT_TRUE(a.ok() && b.ok());
}

/// A ledger of one created domain on `uri`, and that domain in `hv`.
void fake_run(const fs::path& dir, const std::string& user, const std::string& config,
              const std::string& uri, RecordingHypervisor& hv, const std::string& domain) {
  auto l = Ledger::create(dir / "state.json", LedgerInfo{dir.string(), user, config, "deployed"});
  ASSERT_TRUE(l.ok()) << l.error().message;
  auto id = (*l)->intend(Resource{0, ResourceKind::domain, uri, domain, "cloud0", {}});
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE((*l)->set_state({*id}, ResourceState::created).ok());
  ASSERT_TRUE((*l)->set_status("deployed").ok());
  ASSERT_TRUE(hv.define_domain(domain, "").ok());
  ASSERT_TRUE(hv.start_domain(domain).ok());
}

TEST(RunLock, LeftoverRemovalAndDestroySkipALiveRunAndRemoveADeadOne) {
  TempDir tmp;
  // The live run is on another hypervisor than the new one (the same hypervisor is ruled out by
  // the hypervisor lock), with the same user and config: the case only run.lock can tell.
  auto hv_a = std::make_shared<RecordingHypervisor>("rec-a:///");
  auto hv_b = std::make_shared<RecordingHypervisor>("rec-b:///");
  DestroyOptions d;
  d.hypervisors = [&](const std::string& uri) -> Expected<HypervisorPtr> {
    if (uri == "rec-a:///") return HypervisorPtr(hv_a);
    return HypervisorPtr(hv_b);
  };
  fs::path runs = tmp.path() / "runs";
  fs::path first = runs / "first";
  fake_run(first, "alice", "many", "rec-a:///", *hv_a, "cloud0_alice_a");
  auto live = try_lock_run_dir(first);  // the first run, still running
  ASSERT_TRUE(live.ok() && live->lock);

  auto plan = testing::many_plan(1, "alice", "rec-b:///");
  plan.config_name = "many";
  auto n = remove_leftovers(plan, runs, runs / "second", d);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, 0u);
  EXPECT_EQ(hv_a->domains().count("cloud0_alice_a"), 1u);
  EXPECT_EQ((*Ledger::load(first / "state.json"))->info().status, "deployed");
  // `continuum destroy` of the live run is refused too, naming its owner.
  auto refused = destroy_dead_run(first, d);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().exit_code, continuum::ExitCode::failure);
  EXPECT_NE(refused.error().message.find("still live"), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(hv_a->domains().count("cloud0_alice_a"), 1u);

  live->lock.reset();  // the first run has ended; its VM was kept
  n = remove_leftovers(plan, runs, runs / "second", d);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(hv_a->domains().count("cloud0_alice_a"), 0u);
  EXPECT_EQ((*Ledger::load(first / "state.json"))->info().status, "destroyed");
  // And destroy of a dead run works (nothing left: exit 0, idempotent).
  auto again = destroy_dead_run(first, d);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->removed, 0u);
}

}  // namespace
}  // namespace continuum::infra

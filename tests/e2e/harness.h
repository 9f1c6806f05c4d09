// Shared by the e2e tests (CTest label e2e): a network namespace made by the test, with virtlogd
// and libvirtd started inside it (after re-mounting the cgroup v1 controllers that `ip netns
// exec`'s fresh /sys hides), so that every VM, bridge and packet of a test stays in that namespace.
// Daemons are stopped by the PIDs the test recorded; the namespace is deleted. Whatever a failed
// test left is destroyed through `continuum destroy RUN_DIR` (set run_dir_) before the daemons go.
//
// Only one system libvirtd can run on a machine (/run/libvirt/libvirt-sock, the qemu driver's
// state dirs): when another one answers, SetUp waits up to 5 minutes for it to go, then skips.
// Timings are printed as "E2E-TIMING name seconds" lines.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "continuum/util/files.h"
#include "continuum/util/process.h"
#include "continuum/util/strings.h"

extern char** environ;

namespace continuum::e2e {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

inline const fs::path kWorkRoot =
    "/var/lib/continuum-e2e";  // traversable by the QEMU user, unlike /root

inline double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

inline void timing(const std::string& name, double s) {
  std::printf("E2E-TIMING %s %.1f\n", name.c_str(), s);
  std::fflush(stdout);
}

inline bool socket_answers(const char* path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

inline util::ProcessResult run(const std::vector<std::string>& argv,
                               std::chrono::seconds timeout = 60s,
                               std::function<void(const std::string&, bool)> on_line = nullptr) {
  util::ProcessSpec spec;
  spec.argv = argv;
  spec.timeout = timeout;
  spec.on_line = std::move(on_line);
  auto r = util::run_process(spec);
  if (!r) {
    util::ProcessResult bad;
    bad.err = r.error().message;
    return bad;
  }
  return *r;
}

inline pid_t spawn(const std::vector<std::string>& argv,
                   const std::vector<std::string>& extra_env) {
  std::vector<std::string> env_store;
  for (char** e = environ; *e; ++e) env_store.emplace_back(*e);
  for (const auto& e : extra_env) env_store.push_back(e);
  std::vector<char*> envp, cargv;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> a = argv;
  for (auto& s : a) cargv.push_back(s.data());
  cargv.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawnp(&pid, cargv[0], nullptr, nullptr, cargv.data(), envp.data()) != 0) return -1;
  return pid;
}

/// `continuum image build [--variant V]`: built, or found in the image cache under $HOME. Its
/// lines are streamed as "  [image] ..."; the time is printed as E2E-TIMING
/// image_build_<variant>_or_reuse.
inline util::ProcessResult build_image(const std::string& variant = "default") {
  std::vector<std::string> argv = {CONTINUUM_BINARY, "image", "build"};
  if (variant != "default") argv.insert(argv.end(), {"--variant", variant});
  auto t0 = Clock::now();
  auto r = run(argv, 3600s,
               [](const std::string& l, bool) { std::printf("  [image] %s\n", l.c_str()); });
  timing("image_build_" + variant + "_or_reuse", secs(Clock::now() - t0));
  return r;
}

/// SIGTERM, wait up to 15 s (libvirtd needs ~2 s), then SIGKILL. Only PIDs this test started.
inline void stop_pid(pid_t pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  auto deadline = Clock::now() + 15s;
  int st;
  while (Clock::now() < deadline) {
    if (::waitpid(pid, &st, WNOHANG) == pid) return;
    std::this_thread::sleep_for(50ms);
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &st, 0);
}

// The fresh /sys that `ip netns exec` mounts hides the host's cgroup mounts; libvirt needs them to
// place guests in cgroups. A fixed script: no value from outside is pasted into it.
inline const char* kCgroupRemount =
    "mount -t tmpfs -o mode=755 cgroup_root /sys/fs/cgroup && "
    "for c in cpu cpuacct cpuset memory devices freezer blkio pids; do "
    "mkdir -p /sys/fs/cgroup/$c && mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c || true; done; ";

/// Removes the `machine` cgroups (v1, every controller) that the tests' libvirtd made, children
/// first, waiting up to 15 s for the ones whose QEMU is still being reaped. A new libvirtd that
/// finds an old `machine/qemu-*` cpuset left behind makes the next domain's cpuset without CPUs
/// or memory nodes ("Unable to write to .../cpuset/machine/qemu-1-....libvirt-qemu/tasks: No
/// space left on device"), and the domain does not start: seen once right after a test whose run
/// kept its VMs for TearDown's destroy. rmdir removes no cgroup that still holds a process.
inline void remove_machine_cgroups() {
  const auto deadline = Clock::now() + 15s;
  for (;;) {
    bool left = false;
    for (const char* c :
         {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"}) {
      const fs::path machine = fs::path("/sys/fs/cgroup") / c / "machine";
      std::error_code ec;
      if (!fs::is_directory(machine, ec)) continue;
      // Deepest first: a cgroup directory goes only once it has no child cgroups.
      std::vector<fs::path> dirs;
      for (fs::recursive_directory_iterator it(machine, ec), end; !ec && it != end;
           it.increment(ec))
        if (it->is_directory(ec)) dirs.push_back(it->path());
      std::sort(dirs.begin(), dirs.end(), [](const fs::path& a, const fs::path& b) {
        return a.string().size() > b.string().size();
      });
      dirs.push_back(machine);
      for (const auto& d : dirs) ::rmdir(d.c_str());
      left = left || fs::exists(machine, ec);
    }
    if (!left || Clock::now() > deadline) return;
    std::this_thread::sleep_for(100ms);  // a poll with a deadline: QEMU still being reaped
  }
}

/// A libvirtd's own account of a failed domain start (a cgroup it could not write, a QEMU that
/// died): its log's last error lines, printed with a failed test, since CI keeps the test's
/// output and not its work directory.
inline void print_libvirtd_errors(const fs::path& log, const std::string& label) {
  std::ifstream in(log);
  std::deque<std::string> last;
  for (std::string line; std::getline(in, line);)
    if (line.find(": error : ") != std::string::npos) {
      last.push_back(line);
      if (last.size() > 15) last.pop_front();
    }
  if (last.empty()) return;
  std::printf("---- %s: the last %zu error lines of %s ----\n", label.c_str(), last.size(),
              log.c_str());
  for (const auto& l : last) std::printf("%s\n", l.c_str());
  std::fflush(stdout);
}

class LibvirtNetnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespace, libvirtd)";
    for (const char* p : {"libvirtd", "virtlogd", "qemu-system-x86_64", "qemu-img", "mmdebstrap",
                          "genisoimage", "ip", "tini"})
      if (!util::have_program(p) && !util::have_program(std::string("/usr/sbin/") + p))
        GTEST_SKIP() << p << " is not installed (scripts/bootstrap --deps)";
    auto deadline = Clock::now() + 300s;
    while (socket_answers("/run/libvirt/libvirt-sock") ||
           socket_answers("/run/libvirt/virtlogd-sock")) {
      if (Clock::now() > deadline)
        GTEST_SKIP() << "another libvirtd/virtlogd is running on this machine; only one can";
      std::this_thread::sleep_for(2s);
    }
    remove_machine_cgroups();  // an earlier test's, if it ended without its TearDown
    ns_ = "cnt-e2e-" + std::to_string(::getpid());
    work_ = kWorkRoot / ("work-" + std::to_string(::getpid()));
    fs::remove_all(work_);
    fs::create_directories(work_);
    fs::permissions(kWorkRoot, fs::perms::owner_all | fs::perms::group_read |
                                   fs::perms::group_exec | fs::perms::others_read |
                                   fs::perms::others_exec);

    // /var/lib/libvirt/dnsmasq, which libvirt needs when a guest joins a managed network and makes
    // only for DHCP networks, is not made here: continuum makes it (infra/hypervisor.cc), and the
    // runs of these tests check that on a machine that lacks it.
    ASSERT_EQ(run({"ip", "netns", "add", ns_}).exit_code, 0);
    ASSERT_EQ(run({"ip", "-n", ns_, "link", "set", "lo", "up"}).exit_code, 0);
    auto t0 = Clock::now();
    // Under `tini -s` (a child subreaper that reaps): QEMU processes that libvirt daemonizes are
    // reparented to it and reaped at once. Reparented to a PID 1 that reaps slowly, they stay
    // zombies and libvirtd waits on them: minutes per domain start on such machines.
    virtlogd_ = spawn({"ip", "netns", "exec", ns_, "tini", "-s", "--", "sh", "-c",
                       std::string(kCgroupRemount) + "exec virtlogd -p " +
                           util::shell_quote((work_ / "virtlogd.pid").string())},
                      {});
    ASSERT_GT(virtlogd_, 0);
    libvirtd_ = spawn({"ip", "netns", "exec", ns_, "tini", "-s", "--", "sh", "-c",
                       std::string(kCgroupRemount) + "exec libvirtd -p " +
                           util::shell_quote((work_ / "libvirtd.pid").string())},
                      {"LIBVIRT_LOG_OUTPUTS=3:file:" + (work_ / "libvirtd.log").string()});
    ASSERT_GT(libvirtd_, 0);
    // Ready when the socket answers (cold: ~8 s for QEMU's capability probe; cached: 0.2 s).
    auto ready_deadline = Clock::now() + 120s;
    while (!socket_answers("/run/libvirt/libvirt-sock")) {
      int st;
      ASSERT_NE(::waitpid(libvirtd_, &st, WNOHANG), libvirtd_)
          << "libvirtd exited; see " << (work_ / "libvirtd.log");
      ASSERT_LT(Clock::now(), ready_deadline) << "libvirtd did not come up";
      std::this_thread::sleep_for(100ms);
    }
    timing("libvirtd_start", secs(Clock::now() - t0));
  }

  void TearDown() override {
    // Whatever the test left (it failed half-way): destroy through the binary, which reads the
    // ledger, before the daemons go.
    if (!run_dir_.empty() && fs::exists(run_dir_ / "state.json") && !destroyed_)
      run({"ip", "netns", "exec", ns_, CONTINUUM_BINARY, "destroy", run_dir_.string()}, 300s);
    stop_pid(libvirtd_);
    stop_pid(virtlogd_);
    if (::testing::Test::HasFailure()) print_libvirtd_errors(work_ / "libvirtd.log", "libvirtd");
    if (!ns_.empty()) run({"ip", "netns", "del", ns_});
    remove_machine_cgroups();
    if (!work_.empty() && !::testing::Test::HasFailure()) fs::remove_all(work_);
  }

  std::string ns_;
  fs::path work_;
  fs::path run_dir_;
  bool destroyed_ = false;
  pid_t libvirtd_ = -1, virtlogd_ = -1;
};

}  // namespace continuum::e2e

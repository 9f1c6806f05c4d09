// End to end, for real: TCG VMs through the `continuum` binary (DESIGN.md §5, issue 3).
//
// The test makes its own network namespace, starts virtlogd and libvirtd inside it (after
// re-mounting the cgroup v1 controllers that `ip netns exec`'s fresh /sys hides), builds or reuses
// the offline image, runs `ip netns exec NS continuum CONFIG` with an infra_only config of 1 cloud +
// 1 endpoint VM with virtiofs, logs in to each VM over SSH with the pinned host key (from inside
// the namespace), checks hostname, address, cores, memory, sudo and the virtiofs share, runs
// `continuum destroy RUN_DIR`, and asserts that no domain, network, overlay, seed or share of the
// run is left. Daemons are stopped by the PIDs the test recorded; the namespace is deleted.
//
// Timings are printed as "E2E-TIMING name seconds" lines (docs/infrastructure-timings.md).
// Only one system libvirtd can run on a machine (/run/libvirt/libvirt-sock, the qemu driver's
// state dirs): when another one answers, the test waits up to 5 minutes for it to go, then skips.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "continuum/infra/hypervisor.h"
#include "continuum/infra/image.h"
#include "continuum/util/files.h"
#include "continuum/util/process.h"
#include "continuum/util/ssh.h"
#include "continuum/util/strings.h"

extern char** environ;

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace continuum;
using Clock = std::chrono::steady_clock;

namespace {

const fs::path kWorkRoot = "/var/lib/continuum-e2e";  // traversable by the QEMU user, unlike /root

double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

void timing(const std::string& name, double s) {
  std::printf("E2E-TIMING %s %.1f\n", name.c_str(), s);
  std::fflush(stdout);
}

bool socket_answers(const char* path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

util::ProcessResult run(const std::vector<std::string>& argv, std::chrono::seconds timeout = 60s,
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

pid_t spawn(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env) {
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

/// SIGTERM, wait up to 15 s (libvirtd needs ~2 s), then SIGKILL. Only PIDs this test started.
void stop_pid(pid_t pid) {
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
const char* kCgroupRemount =
    "mount -t tmpfs -o mode=755 cgroup_root /sys/fs/cgroup && "
    "for c in cpu cpuacct cpuset memory devices freezer blkio pids; do "
    "mkdir -p /sys/fs/cgroup/$c && mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c || true; done; ";

class VmLifecycle : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespace, libvirtd)";
    for (const char* p : {"libvirtd", "virtlogd", "qemu-system-x86_64", "qemu-img", "mmdebstrap",
                          "genisoimage", "ip"})
      if (!util::have_program(p) && !util::have_program(std::string("/usr/sbin/") + p))
        GTEST_SKIP() << p << " is not installed (scripts/bootstrap --deps)";
    auto deadline = Clock::now() + 300s;
    while (socket_answers("/run/libvirt/libvirt-sock") || socket_answers("/run/libvirt/virtlogd-sock")) {
      if (Clock::now() > deadline)
        GTEST_SKIP() << "another libvirtd/virtlogd is running on this machine; only one can";
      std::this_thread::sleep_for(2s);
    }
    ns_ = "cnt-e2e-" + std::to_string(::getpid());
    work_ = kWorkRoot / ("work-" + std::to_string(::getpid()));
    fs::remove_all(work_);
    fs::create_directories(work_);
    fs::permissions(kWorkRoot, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                   fs::perms::others_read | fs::perms::others_exec);

    // libvirt's network driver writes <bridge>.macs there when a guest joins a managed network;
    // on a machine where libvirtd never ran its network driver before, the directory is missing.
    fs::create_directories("/var/lib/libvirt/dnsmasq");
    ASSERT_EQ(run({"ip", "netns", "add", ns_}).exit_code, 0);
    ASSERT_EQ(run({"ip", "-n", ns_, "link", "set", "lo", "up"}).exit_code, 0);
    auto t0 = Clock::now();
    virtlogd_ = spawn({"ip", "netns", "exec", ns_, "sh", "-c",
                       std::string(kCgroupRemount) + "exec virtlogd -p " + util::shell_quote((work_ / "virtlogd.pid").string())},
                      {});
    ASSERT_GT(virtlogd_, 0);
    libvirtd_ = spawn({"ip", "netns", "exec", ns_, "sh", "-c",
                       std::string(kCgroupRemount) + "exec libvirtd -p " + util::shell_quote((work_ / "libvirtd.pid").string())},
                      {"LIBVIRT_LOG_OUTPUTS=3:file:" + (work_ / "libvirtd.log").string()});
    ASSERT_GT(libvirtd_, 0);
    // Ready when the socket answers (cold: ~8 s for QEMU's capability probe; cached: 0.2 s).
    auto ready_deadline = Clock::now() + 120s;
    while (!socket_answers("/run/libvirt/libvirt-sock")) {
      int st;
      ASSERT_NE(::waitpid(libvirtd_, &st, WNOHANG), libvirtd_) << "libvirtd exited; see " << (work_ / "libvirtd.log");
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
    if (!ns_.empty()) run({"ip", "netns", "del", ns_});
    // Empty per-controller dirs libvirt made; rmdir removes nothing that is in use.
    for (const char* c : {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"}) {
      std::error_code ec;
      fs::remove(fs::path("/sys/fs/cgroup") / c / "machine", ec);
    }
    if (!work_.empty() && !::testing::Test::HasFailure()) fs::remove_all(work_);
  }

  std::string ns_;
  fs::path work_;
  fs::path run_dir_;
  bool destroyed_ = false;
  pid_t libvirtd_ = -1, virtlogd_ = -1;
};

TEST_F(VmLifecycle, CloudAndEndpointBootAreReachableAndAreDestroyedWithoutATrace) {
  // 1. The image: cached across runs under the e2e base_path (a cold build takes minutes). Without
  // the guest app, so that an app rebuild does not force a new image here.
  ::setenv("CONTINUUM_GUEST_APP_DIR", "", 1);
  auto t_img = Clock::now();
  {
    auto r = run({CONTINUUM_BINARY, "image", "build", "--base-path", kWorkRoot.string()}, 3600s,
                 [](const std::string& l, bool) { std::printf("  [image] %s\n", l.c_str()); });
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  timing("image_build_or_reuse", secs(Clock::now() - t_img));

  // 2. The configuration: 1 cloud (2 vCPUs, 1 GB) + 1 endpoint (1 vCPU, 1 GB), virtiofs on.
  fs::path shares = work_ / "shares";
  fs::path key = work_ / "id_continuum";
  fs::path cfg = work_ / "e2e_infra.cfg";
  std::ofstream(cfg) << "[infrastructure]\nprovider = qemu\ninfra_only = True\n"
                        "cloud_nodes = 1\ncloud_cores = 2\ncloud_memory = 1\ncloud_quota = 1.0\n"
                        "endpoint_nodes = 1\nendpoint_cores = 1\nendpoint_memory = 1\nendpoint_quota = 1.0\n"
                        "base_path = " << kWorkRoot.string() << "\n"
                        "accelerator = tcg\nvirtiofs = True\nvirtiofs_host_dir = " << shares.string() << "\n"
                        "virtiofs_guest_dir = /var/scaphandre\nssh_key = " << key.string() << "\n"
                        "boot_timeout = 900\n";
  fs::path runs = work_ / "runs";

  // 3. Deploy through the real binary, inside the namespace.
  auto t_run = Clock::now();
  auto r = run({"ip", "netns", "exec", ns_, CONTINUUM_BINARY, "--output", runs.string(), cfg.string()}, 1500s,
               [](const std::string& l, bool) { std::printf("  [run] %s\n", l.c_str()); });
  double run_seconds = secs(Clock::now() - t_run);
  for (const auto& e : fs::directory_iterator(runs)) run_dir_ = e.path();
  ASSERT_EQ(r.exit_code, 0) << "continuum run failed:\n" << r.err;
  timing("run_infra_only_total", run_seconds);
  ASSERT_FALSE(run_dir_.empty());

  auto dep_text = util::read_file(run_dir_ / "deployment.json");
  ASSERT_TRUE(dep_text.ok()) << dep_text.error().message;
  auto dep = nlohmann::json::parse(*dep_text);
  auto plan = nlohmann::json::parse(*util::read_file(run_dir_ / "plan.json"));
  ASSERT_EQ(dep["nodes"].size(), 2u);
  // known_hosts was written before boot and pins exactly one ed25519 key per VM.
  auto kh = util::read_file(run_dir_ / "known_hosts");
  ASSERT_TRUE(kh.ok());
  EXPECT_EQ(util::split(std::string(util::trim(*kh)), '\n').size(), 2u);

  // 4. Log in to each VM with the pinned host key and check what the plan promised.
  for (const auto& n : dep["nodes"]) {
    std::string name = n["name"], ip = n["ip"], user = n["ssh_user"];
    timing("boot_to_ssh_" + std::string(n["id"]), n.value("boot_seconds", 0.0));
    const nlohmann::json* pn = nullptr;
    for (const auto& x : plan["nodes"])
      if (x["name"] == name) pn = &x;
    ASSERT_NE(pn, nullptr) << name;

    std::string marker = "written on the host for " + name + "\n";
    ASSERT_TRUE(util::write_file_atomic(shares / name / "hello.txt", marker).ok());

    util::SshTarget t;
    t.host = ip;
    t.user = user;
    t.private_key = key;
    t.known_hosts = run_dir_ / "known_hosts";
    t.netns = ns_;
    auto remote = util::ssh_connect(t, 30s);
    ASSERT_TRUE(remote.ok()) << remote.error().message;
    auto ex = [&](const std::string& cmd) {
      auto e = (*remote)->exec(cmd, 60s);
      EXPECT_TRUE(e.ok()) << cmd;
      if (!e.ok()) return std::string();
      EXPECT_EQ(e->exit_code, 0) << cmd << ": " << e->err;
      return std::string(util::trim(e->out));
    };
    std::string hostname = name;
    hostname.erase(std::remove(hostname.begin(), hostname.end(), '_'), hostname.end());
    EXPECT_EQ(ex("hostname"), hostname);
    EXPECT_EQ(ex("id -un"), user);
    EXPECT_NE(ex("ip -4 -o addr show").find(" " + ip + "/16 "), std::string::npos);
    EXPECT_EQ(ex("nproc"), std::to_string(int((*pn)["cores"])));
    long mem_kb = std::stol(ex("awk '/^MemTotal:/ {print $2}' /proc/meminfo"));
    long want_kb = long((*pn)["memory_mib"]) * 1024;
    EXPECT_GT(mem_kb, want_kb * 8 / 10) << "guest sees less memory than planned";
    EXPECT_LE(mem_kb, want_kb);
    EXPECT_EQ(ex("sudo -n id -u"), "0");
    EXPECT_EQ(ex("cat /var/scaphandre/hello.txt") + "\n", marker);
    // And the other way round: the guest writes, the host reads.
    ex("echo from-guest | sudo -n tee /var/scaphandre/guest.txt >/dev/null");
    auto back = util::read_file(shares / name / "guest.txt");
    EXPECT_TRUE(back.ok() && *back == "from-guest\n");
  }

  // A wrong pinned key is refused by the same guests (no trust on first use anywhere).
  {
    const auto& n = dep["nodes"][0];
    fs::path wrong = work_ / "wrong_known_hosts";
    auto other = run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", (work_ / "other").string()});
    ASSERT_EQ(other.exit_code, 0);
    auto pub = util::read_file(work_ / "other.pub");
    auto w = util::split(std::string(util::trim(*pub)), ' ');
    ASSERT_TRUE(util::write_file_atomic(wrong, std::string(n["ip"]) + " " + w[0] + " " + w[1] + "\n").ok());
    util::SshTarget t;
    t.host = n["ip"];
    t.user = n["ssh_user"];
    t.private_key = key;
    t.known_hosts = wrong;
    t.netns = ns_;
    EXPECT_FALSE(util::ssh_connect(t, 30s).ok());
  }

  // 5. What the run created, from its ledger, before destroying it.
  auto ledger = nlohmann::json::parse(*util::read_file(run_dir_ / "state.json"));
  std::vector<std::string> domains, networks, paths;
  std::string uri = "qemu:///system";
  for (const auto& res : ledger["resources"]) {
    std::string kind = res["kind"];
    if (kind == "domain") domains.push_back(res["name"]);
    else if (kind == "network") networks.push_back(res["name"]);
    else paths.push_back(res["name"]);
    if (!std::string(res.value("uri", "")).empty()) uri = res["uri"];
  }
  EXPECT_EQ(domains.size(), 2u);
  EXPECT_FALSE(paths.empty());
  for (const auto& p : paths) EXPECT_TRUE(fs::exists(p)) << p;

  auto t_destroy = Clock::now();
  auto d = run({"ip", "netns", "exec", ns_, CONTINUUM_BINARY, "destroy", run_dir_.string()}, 300s,
               [](const std::string& l, bool) { std::printf("  [destroy] %s\n", l.c_str()); });
  timing("destroy", secs(Clock::now() - t_destroy));
  ASSERT_EQ(d.exit_code, 0) << d.err;
  destroyed_ = true;

  // 6. Nothing of the run is left: domains, network, overlays, seeds, shares.
  auto hv = infra::connect_libvirt(uri);
  ASSERT_TRUE(hv.ok()) << hv.error().message;
  auto all = (*hv)->list_domains();
  ASSERT_TRUE(all.ok());
  for (const auto& dn : domains)
    EXPECT_EQ(std::count(all->begin(), all->end(), dn), 0) << "domain left: " << dn;
  for (const auto& nn : networks) {
    auto ex = (*hv)->network_exists(nn);
    ASSERT_TRUE(ex.ok());
    EXPECT_FALSE(*ex) << "network left: " << nn;
  }
  for (const auto& p : paths) EXPECT_FALSE(fs::exists(p)) << "file left: " << p;
  // No QEMU or virtiofsd of this run still running.
  auto ps = run({"ps", "-eo", "args"});
  for (const auto& dn : domains) EXPECT_EQ(ps.out.find("guest=" + dn), std::string::npos) << ps.out;

  // 7. destroy is idempotent.
  auto again = run({"ip", "netns", "exec", ns_, CONTINUUM_BINARY, "destroy", run_dir_.string()}, 120s);
  EXPECT_EQ(again.exit_code, 0) << again.err;
}

}  // namespace

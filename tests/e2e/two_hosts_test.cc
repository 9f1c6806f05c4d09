// Two physical hosts on one machine: continuum on host A deploys one VM on A and one on host B
// through qemu+ssh://root@B/system, twice: on the hosts' own bridges (the original's way, with a
// netem link between the VMs that measures as configured), then on continuum's managed network,
// whose bridges it joins with a VXLAN. Each time the VMs reach each other across the hosts and
// `continuum destroy` leaves nothing of the run on either host; B's copy of the image, uploaded by
// the first run, is reused by the second.
//
// A "host" is a network namespace of the test's own plus its own view of the directories that
// make a libvirt host (/run/libvirt, /etc/libvirt, /var/lib/libvirt, /var/cache/libvirt,
// /var/log/libvirt; on B also /var/lib/continuum, where remote runs keep their files; on A
// /root/.ssh, which holds the key and the known_hosts entry that pins B's host key). Every
// process of a host (virtlogd, libvirtd, sshd on B, continuum on A) starts under `ip netns exec`
// with the same bind mounts, so each sees only its host's daemons. The hosts' bridges, named as
// the bridge mode's bridge_name, are joined by a veth pair: their LAN (the tunnel's underlay),
// and the VMs' L2 network in bridge mode, as the original's br0 on every machine. B's libvirtd is
// reached only through B's sshd (virt-ssh-helper runs there), with a host key that A pins.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <tuple>

#include "continuum/util/ssh.h"
#include "e2e/harness.h"

using namespace continuum;
using namespace continuum::e2e;

namespace {

constexpr const char* kBridge = "cntbr0";
constexpr const char* kHostAIp = "192.168.100.1";
constexpr const char* kHostBIp = "192.168.100.250";

/// Copies a directory tree's directories (and, with files, its files) with their owners and
/// modes: a host's own libvirt directories start as this machine's, without its domains' state.
void copy_tree(const fs::path& from, const fs::path& to, bool files) {
  std::error_code ec;
  fs::create_directories(to, ec);
  struct stat st {};
  if (::stat(from.c_str(), &st) == 0) {
    ::chown(to.c_str(), st.st_uid, st.st_gid);
    ::chmod(to.c_str(), st.st_mode & 07777);
  }
  if (!fs::is_directory(from, ec)) return;
  for (const auto& e : fs::directory_iterator(from, ec)) {
    const fs::path target = to / e.path().filename();
    if (e.is_directory(ec) && !e.is_symlink(ec))
      copy_tree(e.path(), target, files);
    else if (files && e.is_regular_file(ec))
      fs::copy_file(e.path(), target, fs::copy_options::overwrite_existing, ec);
  }
}

struct Host {
  std::string name;  // "a" | "b"
  std::string ns;
  fs::path dir;
  std::vector<std::pair<fs::path, fs::path>> binds;  // (this host's directory, where it appears)
  pid_t virtlogd = -1, libvirtd = -1, sshd = -1;

  /// The shell prefix that gives a process this host's view: fixed commands, quoted paths.
  std::string mounts() const {
    std::string s;
    for (const auto& [src, dst] : binds)
      s += "mkdir -p " + util::shell_quote(dst.string()) + " && mount --bind " +
           util::shell_quote(src.string()) + " " + util::shell_quote(dst.string()) + " && ";
    return s + kCgroupRemount;
  }
  /// argv that runs `command` (a shell command) as a process of this host.
  std::vector<std::string> in(const std::string& command) const {
    return {"ip", "netns", "exec", ns, "tini", "-s", "--", "sh", "-c", mounts() + command};
  }
};

class TwoHosts : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network and mount namespaces, libvirtd)";
    for (const char* p : {"libvirtd", "virtlogd", "qemu-system-x86_64", "qemu-img", "sshd",
                          "ssh-keygen", "virt-ssh-helper", "ip", "tini", "virsh"})
      if (!util::have_program(p) && !util::have_program(std::string("/usr/sbin/") + p))
        GTEST_SKIP() << p << " is not installed (scripts/bootstrap --deps)";
    auto deadline = Clock::now() + 300s;
    while (socket_answers("/run/libvirt/libvirt-sock")) {
      if (Clock::now() > deadline)
        GTEST_SKIP() << "another libvirtd is running on this machine; the two hosts' daemons "
                        "share its cgroups";
      std::this_thread::sleep_for(2s);
    }
    remove_machine_cgroups();
    work_ = kWorkRoot / ("work-" + std::to_string(::getpid()));
    fs::remove_all(work_);
    fs::create_directories(work_);
    ::chmod(kWorkRoot.c_str(), 0755);
    const std::string tag = std::to_string(::getpid());
    a_.name = "a";
    b_.name = "b";
    for (Host* h : {&a_, &b_}) {
      h->ns = "cnt-e2e-" + tag + "-" + h->name;
      h->dir = work_ / ("host-" + h->name);
      // Each host's libvirt starts from this machine's configuration, with no state of its own.
      copy_tree("/etc/libvirt", h->dir / "etc-libvirt", true);
      copy_tree("/var/lib/libvirt", h->dir / "var-lib-libvirt", false);
      copy_tree("/var/cache/libvirt", h->dir / "var-cache-libvirt", true);
      for (const char* d : {"run-libvirt", "var-log-libvirt"}) fs::create_directories(h->dir / d);
      h->binds = {{h->dir / "run-libvirt", "/run/libvirt"},
                  {h->dir / "etc-libvirt", "/etc/libvirt"},
                  {h->dir / "var-lib-libvirt", "/var/lib/libvirt"},
                  {h->dir / "var-cache-libvirt", "/var/cache/libvirt"},
                  {h->dir / "var-log-libvirt", "/var/log/libvirt"}};
      ASSERT_EQ(run({"ip", "netns", "add", h->ns}).exit_code, 0);
      ASSERT_EQ(run({"ip", "-n", h->ns, "link", "set", "lo", "up"}).exit_code, 0);
      ASSERT_EQ(run({"ip", "-n", h->ns, "link", "add", kBridge, "type", "bridge"}).exit_code, 0);
      ASSERT_EQ(run({"ip", "-n", h->ns, "link", "set", kBridge, "type", "bridge", "stp_state", "0",
                     "forward_delay", "0"})
                    .exit_code,
                0);
      ASSERT_EQ(run({"ip", "-n", h->ns, "link", "set", kBridge, "up"}).exit_code, 0);
    }
    // B keeps a remote run's files in /var/lib/continuum; A's login key and known_hosts.
    fs::create_directories(b_.dir / "var-lib-continuum");
    b_.binds.emplace_back(b_.dir / "var-lib-continuum", "/var/lib/continuum");
    const fs::path ssh_a = a_.dir / "root-ssh";
    fs::create_directories(ssh_a);
    ::chmod(ssh_a.c_str(), 0700);
    a_.binds.emplace_back(ssh_a, "/root/.ssh");

    // The LAN: one veth pair, an end in each host's bridge; each host has an address on it.
    ASSERT_EQ(run({"ip", "link", "add", "cnt-lan-a", "netns", a_.ns, "type", "veth", "peer", "name",
                   "cnt-lan-b", "netns", b_.ns})
                  .exit_code,
              0);
    for (auto [h, end, ip] :
         {std::tuple{&a_, "cnt-lan-a", kHostAIp}, std::tuple{&b_, "cnt-lan-b", kHostBIp}}) {
      ASSERT_EQ(run({"ip", "-n", h->ns, "link", "set", end, "master", kBridge, "up"}).exit_code, 0);
      ASSERT_EQ(run({"ip", "-n", h->ns, "addr", "add", std::string(ip) + "/24", "dev", kBridge})
                    .exit_code,
                0);
    }

    // SSH: B's host key (pinned in A's known_hosts), A's login key (authorised on B).
    for (const auto& [file, what] : {std::pair{b_.dir / "ssh_host_ed25519_key", "B host key"},
                                     std::pair{ssh_a / "id_ed25519", "A login key"}})
      ASSERT_EQ(
          run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", what, "-f", file.string()})
              .exit_code,
          0);
    auto host_pub = util::read_file(b_.dir / "ssh_host_ed25519_key.pub");
    auto login_pub = util::read_file(ssh_a / "id_ed25519.pub");
    ASSERT_TRUE(host_pub.ok() && login_pub.ok());
    ASSERT_TRUE(
        util::write_file_atomic(ssh_a / "known_hosts", std::string(kHostBIp) + " " + *host_pub)
            .ok());
    ASSERT_TRUE(util::write_file_atomic(b_.dir / "authorized_keys", *login_pub).ok());
    ASSERT_TRUE(util::write_file_atomic(
                    b_.dir / "sshd_config",
                    "ListenAddress " + std::string(kHostBIp) + "\nPort 22\nHostKey " +
                        (b_.dir / "ssh_host_ed25519_key").string() + "\nAuthorizedKeysFile " +
                        (b_.dir / "authorized_keys").string() +
                        "\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
                        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPidFile " +
                        (b_.dir / "sshd.pid").string() + "\n")
                    .ok());

    // The daemons: virtlogd and libvirtd on both hosts, sshd on B.
    auto t0 = Clock::now();
    for (Host* h : {&a_, &b_}) {
      // Own PID files too: /run/libvirtd.pid is one per machine.
      h->virtlogd = spawn(
          h->in("exec virtlogd -p " + util::shell_quote((h->dir / "virtlogd.pid").string())), {});
      ASSERT_GT(h->virtlogd, 0);
      h->libvirtd =
          spawn(h->in("exec libvirtd -p " + util::shell_quote((h->dir / "libvirtd.pid").string())),
                {"LIBVIRT_LOG_OUTPUTS=3:file:" + (h->dir / "libvirtd.log").string()});
      ASSERT_GT(h->libvirtd, 0);
    }
    b_.sshd = spawn(b_.in("mkdir -p /run/sshd && exec /usr/sbin/sshd -D -e -f " +
                          util::shell_quote((b_.dir / "sshd_config").string())),
                    {});
    ASSERT_GT(b_.sshd, 0);
    auto ready = Clock::now() + 120s;
    for (Host* h : {&a_, &b_}) {
      const fs::path sock = h->dir / "run-libvirt" / "libvirt-sock";
      while (!socket_answers(sock.c_str())) {
        int st;
        ASSERT_NE(::waitpid(h->libvirtd, &st, WNOHANG), h->libvirtd)
            << "libvirtd of host " << h->name << " exited; see " << (h->dir / "libvirtd.log");
        ASSERT_LT(Clock::now(), ready) << "libvirtd of host " << h->name << " did not come up";
        std::this_thread::sleep_for(100ms);
      }
    }
    timing("two_hosts_daemons_start", secs(Clock::now() - t0));
  }

  void TearDown() override {
    if (!run_dir_.empty() && fs::exists(run_dir_ / "state.json") && !destroyed_)
      run(a_.in("exec " + util::shell_join({CONTINUUM_BINARY, "destroy", run_dir_.string()})),
          300s);
    for (Host* h : {&b_, &a_}) {
      stop_pid(h->sshd);
      stop_pid(h->libvirtd);
      stop_pid(h->virtlogd);
      if (::testing::Test::HasFailure())
        print_libvirtd_errors(h->dir / "libvirtd.log", "host " + h->name + " libvirtd");
    }
    for (Host* h : {&a_, &b_})
      if (!h->ns.empty()) run({"ip", "netns", "del", h->ns});
    remove_machine_cgroups();
    if (!work_.empty() && !::testing::Test::HasFailure()) fs::remove_all(work_);
  }

  /// `virsh` on a host, through its own daemon (a test tool: continuum itself uses the C API).
  std::string virsh(const Host& h, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"virsh", "-q", "-c", "qemu:///system"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run(h.in("exec " + util::shell_join(argv)), 60s);
    EXPECT_EQ(r.exit_code, 0) << "virsh on host " << h.name << ": " << r.err;
    return std::string(util::trim(r.out));
  }

  struct Deployed {
    fs::path run_dir;
    double seconds = 0;
    std::string log;  // what the run printed
    std::string cloud, endpoint, cloud_ip, endpoint_ip, user;
  };

  /// Runs continuum on A with `cfg`; one core per host as far as placement knows, so the cloud
  /// VM fills A and the endpoint goes to B. Checks where each VM is, by each host's libvirtd.
  Deployed deploy(const fs::path& cfg) {
    Deployed d;
    const fs::path runs = work_ / ("runs-" + cfg.stem().string());
    auto t0 = Clock::now();
    auto r =
        run(a_.in("CONTINUUM_LOCAL_CORES=1 CONTINUUM_EXTERNAL_CORES=1 exec " +
                  util::shell_join({CONTINUUM_BINARY, "--output", runs.string(), cfg.string()})),
            1800s, [&](const std::string& l, bool) {
              d.log += l + "\n";
              std::printf("  [run] %s\n", l.c_str());
              std::fflush(stdout);
            });
    d.seconds = secs(Clock::now() - t0);
    if (fs::exists(runs))
      for (const auto& e : fs::directory_iterator(runs)) d.run_dir = e.path();
    run_dir_ = d.run_dir;
    destroyed_ = false;
    EXPECT_EQ(r.exit_code, 0) << r.err;
    if (r.exit_code != 0 || d.run_dir.empty()) {
      ADD_FAILURE() << "the run on " << cfg << " failed";
      return d;
    }
    auto plan = nlohmann::json::parse(*util::read_file(d.run_dir / "plan.json"));
    EXPECT_EQ(plan["hosts"].size(), 2u);
    for (const auto& n : plan["nodes"]) {
      if (n["tier"] == "cloud") {
        d.cloud = n["name"];
        d.cloud_ip = n["ip"];
        d.user = n["ssh_user"];
      } else {
        d.endpoint = n["name"];
        d.endpoint_ip = n["ip"];
      }
    }
    EXPECT_EQ(virsh(a_, {"list", "--name"}), d.cloud);
    EXPECT_EQ(virsh(b_, {"list", "--name"}), d.endpoint);
    const std::string pool = "continuum-" + d.run_dir.filename().string();
    EXPECT_NE(virsh(b_, {"pool-list", "--all", "--name"}).find(pool), std::string::npos);
    auto ledger = util::read_file(d.run_dir / "state.json");
    EXPECT_TRUE(ledger.ok() && ledger->find("qemu+ssh://root@" + std::string(kHostBIp) +
                                            "/system") != std::string::npos);
    return d;
  }

  /// cloud0 (on A) pings endpoint0 (on B) across the hosts.
  void reach_across(const Deployed& d) {
    util::SshTarget t;
    t.host = d.cloud_ip;
    t.user = d.user;
    t.private_key = work_ / "id_continuum";
    t.known_hosts = d.run_dir / "known_hosts";
    t.netns = a_.ns;
    auto remote = util::ssh_connect(t, 60s);
    ASSERT_TRUE(remote.ok()) << remote.error().message;
    auto ping = (*remote)->exec(util::shell_join({"ping", "-n", "-c", "3", d.endpoint_ip}), 60s);
    ASSERT_TRUE(ping.ok());
    EXPECT_EQ(ping->exit_code, 0) << ping->out << ping->err;
  }

  /// `continuum destroy` on A: nothing of the run on either host.
  void destroy_and_check(const Deployed& d) {
    auto t1 = Clock::now();
    auto r = run(
        a_.in("exec " + util::shell_join({CONTINUUM_BINARY, "destroy", d.run_dir.string()})), 300s);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    destroyed_ = true;
    timing("two_hosts_destroy", secs(Clock::now() - t1));
    EXPECT_EQ(virsh(a_, {"list", "--all", "--name"}), "");
    EXPECT_EQ(virsh(b_, {"list", "--all", "--name"}), "");
    EXPECT_EQ(virsh(b_, {"pool-list", "--all", "--name"}).find(d.run_dir.filename().string()),
              std::string::npos);
    EXPECT_FALSE(fs::exists(b_.dir / "var-lib-continuum" / "disks" / d.run_dir.filename()));
  }

  fs::path work_, run_dir_;
  bool destroyed_ = false;
  Host a_, b_;
};

TEST_F(TwoHosts, BridgeAndManagedNetworksSpanTheHostsAndDestroyLeavesNothing) {
  // The image on A, as every e2e test's: the cache under kWorkRoot. B gets its copy from
  // continuum, through libvirt, in the first run; the second run reuses it.
  ::setenv("HOME", kWorkRoot.c_str(), 1);  // the image cache persists across runs, like a home
  ASSERT_EQ(build_image().exit_code, 0);
  const fs::path key = work_ / "id_continuum";
  const std::string common =
      "[infrastructure]\nprovider = qemu\ninfra_only = True\n"
      "cloud_nodes = 1\ncloud_cores = 1\ncloud_memory = 1\ncloud_quota = 1.0\n"
      "endpoint_nodes = 1\nendpoint_cores = 1\nendpoint_memory = 1\nendpoint_quota = 1.0\n"
      "external_physical_machines = root@" +
      std::string(kHostBIp) + "\nbase_path = " + kWorkRoot.string() +
      "\naccelerator = tcg\nssh_key = " + key.string() + "\nboot_timeout = 900\n";

  // 1. The user's bridge on both hosts (the original's way), with netem between the VMs.
  ASSERT_TRUE(util::write_file_atomic(work_ / "two_hosts.cfg",
                                      common + "network_mode = bridge\nbridge_name = " + kBridge +
                                          "\nnetwork_emulation = True\n"
                                          "wireless_network_preset = 4g\n")
                  .ok());
  Deployed bridge = deploy(work_ / "two_hosts.cfg");
  ASSERT_FALSE(HasFatalFailure());
  timing("two_hosts_bridge_run_total", bridge.seconds);
  EXPECT_NE(bridge.log.find("uploading disk.qcow2"), std::string::npos)
      << "the first run on B uploads the base image";
  reach_across(bridge);
  // The netem link between them, measured against the 4g preset by the run itself.
  auto csv = util::read_file(bridge.run_dir / "infrastructure" / "network.csv");
  ASSERT_TRUE(csv.ok()) << csv.error().message;
  std::printf("%s", csv->c_str());
  auto lines = util::split(std::string(util::trim(*csv)), '\n');
  ASSERT_GE(lines.size(), 2u);
  const auto header = util::split(lines[0], ',');
  for (size_t i = 1; i < lines.size(); ++i) {
    auto cols = util::split(lines[i], ',');
    auto at = [&](const std::string& name) {
      auto it = std::find(header.begin(), header.end(), name);
      return it == header.end() ? std::string() : cols.at(it - header.begin());
    };
    SCOPED_TRACE(lines[i]);
    EXPECT_EQ(at("status"), "ok");
    EXPECT_GT(std::stod(at("configured_rtt_ms")), 0.0);
  }
  destroy_and_check(bridge);

  // 2. continuum's own network on both hosts, joined by its VXLAN over the hosts' LAN: the
  // gateway on A; B's copy of the image from the first run is reused.
  ASSERT_TRUE(util::write_file_atomic(work_ / "two_hosts_managed.cfg",
                                      common + "network_mode = managed\nguest_internet = none\n"
                                               "prefixIP = 10.77\nmiddleIP = 100\n")
                  .ok());
  Deployed managed = deploy(work_ / "two_hosts_managed.cfg");
  ASSERT_FALSE(HasFatalFailure());
  timing("two_hosts_managed_run_total", managed.seconds);
  EXPECT_EQ(managed.log.find("uploading"), std::string::npos) << "B's image cache was not reused";
  for (const Host* h : {&a_, &b_}) {
    auto links = run({"ip", "-n", h->ns, "-o", "link", "show", "type", "vxlan"});
    EXPECT_NE(links.out.find("cntx-"), std::string::npos) << "no tunnel end on host " << h->name;
  }
  reach_across(managed);
  destroy_and_check(managed);
  for (const Host* h : {&a_, &b_}) {
    auto links = run({"ip", "-n", h->ns, "-o", "link", "show", "type", "vxlan"});
    EXPECT_EQ(links.out.find("cntx-"), std::string::npos) << "tunnel left on host " << h->name;
    // (A host's own networks, libvirt's inactive `default` among them, are not the run's.)
    EXPECT_EQ(virsh(*h, {"net-list", "--all", "--name"}).find("continuum-"), std::string::npos)
        << "network left on " << h->name;
  }
  // What stays on B is the image cache (continuum-images), reused by the next run.
  EXPECT_TRUE(fs::exists(b_.dir / "var-lib-continuum" / "images"));
}

}  // namespace

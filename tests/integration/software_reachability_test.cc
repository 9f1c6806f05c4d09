// The reachability preflight for real: the test makes a network namespace without an uplink
// (only `lo` and a veth pair to a second namespace it also makes; no default route, checked),
// starts its own sshd in the first (own config, host key, authorized_keys; killed by PID) and a
// `python3 -m http.server` in the second, and runs software::check_reachability over SSH with
// the deployment's pinned host key, as `continuum CONFIG` does after the infrastructure phase.
//
// Network rule: the unreachable sources are names (resolving them needs the host's nameserver,
// to which the namespace has no route, so the query fails before a packet is sent) and
// 203.0.113.1 (TEST-NET-3, no route either); everything reachable is inside the test's own
// namespaces. Nothing leaves them.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "continuum/record/events.h"
#include "continuum/software/reachability.h"
#include "continuum/util/files.h"
#include "continuum/util/process.h"
#include "continuum/util/strings.h"

extern char** environ;

namespace continuum::software {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const char* kGuest = "10.205.0.2";   // the "guest": sshd in namespace A
const char* kServer = "10.205.1.2";  // a local HTTP source in namespace B
constexpr int kHttpPort = 8631;

util::ProcessResult run(std::vector<std::string> argv, std::chrono::milliseconds timeout = 60s) {
  util::ProcessSpec s;
  s.argv = std::move(argv);
  s.timeout = timeout;
  auto r = util::run_process(s);
  if (!r.ok()) {
    util::ProcessResult bad;
    bad.err = r.error().message;
    return bad;
  }
  return *r;
}

pid_t spawn_logged(std::vector<std::string> argv, const fs::path& log) {
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  if (::posix_spawnp(&pid, cargv[0], &fa, nullptr, cargv.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

std::string slurp(const fs::path& f) {
  auto t = util::read_file(f);
  return t.ok() ? *t : "<" + f.string() + ": " + t.error().message + ">";
}

std::string host_codename() {
  auto text = util::read_file("/etc/os-release");
  if (text.ok())
    for (const auto& line : util::split(*text, '\n'))
      if (util::starts_with(line, "VERSION_CODENAME="))
        return std::string(util::trim(line.substr(17)));
  return "stable";
}

class Reachability : public ::testing::Test {
 protected:
  static inline fs::path tmp;
  static inline std::string ns_a, ns_b;
  static inline pid_t sshd_pid = -1, http_pid = -1;
  static inline std::string skip_reason;
  static inline bool a_made = false, b_made = false;

  static void SetUpTestSuite() {
    if (::geteuid() != 0) {
      skip_reason = "needs root (network namespaces)";
      return;
    }
    for (const char* p : {"ip", "/usr/sbin/sshd", "ssh-keygen", "python3"})
      if (!util::have_program(p)) {
        skip_reason = std::string("missing ") + p;
        return;
      }
    std::string t = "/tmp/cntm-rch-XXXXXX";
    ASSERT_NE(::mkdtemp(t.data()), nullptr);
    tmp = t;
    ns_a = "cntm-rcha-" + std::to_string(::getpid());
    ns_b = "cntm-rchb-" + std::to_string(::getpid());
    auto ok = [](const util::ProcessResult& r) { return r.exit_code == 0; };
    ASSERT_TRUE(ok(run({"ip", "netns", "add", ns_a})));
    a_made = true;
    ASSERT_TRUE(ok(run({"ip", "netns", "add", ns_b})));
    b_made = true;
    for (const auto& ns : {ns_a, ns_b})
      ASSERT_TRUE(ok(run({"ip", "-n", ns, "link", "set", "lo", "up"})));
    // A: the guest's address on a veth pair of its own (sshd listens there).
    ASSERT_TRUE(
        ok(run({"ip", "-n", ns_a, "link", "add", "g0", "type", "veth", "peer", "name", "g1"})));
    ASSERT_TRUE(
        ok(run({"ip", "-n", ns_a, "addr", "add", std::string(kGuest) + "/24", "dev", "g0"})));
    ASSERT_TRUE(ok(run({"ip", "-n", ns_a, "link", "set", "g0", "up"})));
    ASSERT_TRUE(ok(run({"ip", "-n", ns_a, "link", "set", "g1", "up"})));
    // A <-> B: the local "internet" of this test, one /24 and no default route.
    ASSERT_TRUE(ok(run({"ip", "-n", ns_a, "link", "add", "up0", "type", "veth", "peer", "name",
                        "up1", "netns", ns_b})));
    ASSERT_TRUE(ok(run({"ip", "-n", ns_a, "addr", "add", "10.205.1.1/24", "dev", "up0"})));
    ASSERT_TRUE(
        ok(run({"ip", "-n", ns_b, "addr", "add", std::string(kServer) + "/24", "dev", "up1"})));
    ASSERT_TRUE(ok(run({"ip", "-n", ns_a, "link", "set", "up0", "up"})));
    ASSERT_TRUE(ok(run({"ip", "-n", ns_b, "link", "set", "up1", "up"})));

    // The served tree: the root, and a Debian mirror's Release file for the guest's release.
    fs::create_directories(tmp / "www/debian/dists" / host_codename());
    ASSERT_TRUE(util::write_file_atomic(tmp / "www/debian/dists" / host_codename() / "InRelease",
                                        "Origin: test\n")
                    .ok());
    http_pid =
        spawn_logged({"ip", "netns", "exec", ns_b, "python3", "-m", "http.server", "--bind",
                      kServer, "--directory", (tmp / "www").string(), std::to_string(kHttpPort)},
                     tmp / "http.log");
    ASSERT_GT(http_pid, 0);

    ASSERT_TRUE(ok(run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f",
                        (tmp / "hostkey").string()})));
    ASSERT_TRUE(ok(run(
        {"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", (tmp / "id").string()})));
    fs::copy_file(tmp / "id.pub", tmp / "authorized_keys");
    auto hostpub = util::read_file(tmp / "hostkey.pub");
    ASSERT_TRUE(hostpub.ok());
    ASSERT_TRUE(
        util::write_file_atomic(tmp / "known_hosts", std::string(kGuest) + " " + *hostpub).ok());
    std::string cfg =
        "Port 22\nListenAddress " + std::string(kGuest) + "\nHostKey " +
        (tmp / "hostkey").string() + "\nPidFile " + (tmp / "sshd.pid").string() +
        "\nAuthorizedKeysFile " + (tmp / "authorized_keys").string() +
        "\nStrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\n";
    ASSERT_TRUE(util::write_file_atomic(tmp / "sshd_config", cfg).ok());
    fs::create_directories("/run/sshd");
    sshd_pid = spawn_logged({"ip", "netns", "exec", ns_a, "/usr/sbin/sshd", "-D", "-e", "-f",
                             (tmp / "sshd_config").string()},
                            tmp / "sshd.log");
    ASSERT_GT(sshd_pid, 0);

    // Poll until both answer (poll interval, not synchronisation).
    auto deadline = Clock::now() + 30s;
    bool ssh_up = false, http_up = false;
    while ((!ssh_up || !http_up) && Clock::now() < deadline) {
      if (!ssh_up)
        ssh_up = run({"ip", "netns", "exec", ns_a, "ssh", "-i", (tmp / "id").string(), "-o",
                      "UserKnownHostsFile=" + (tmp / "known_hosts").string(), "-o",
                      "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=2",
                      std::string("root@") + kGuest, "true"},
                     10s)
                     .exit_code == 0;
      if (!http_up)
        http_up = run({"ip", "netns", "exec", ns_a, "python3", "-c",
                       "import socket; socket.create_connection(('" + std::string(kServer) + "', " +
                           std::to_string(kHttpPort) + "), 1).close()"},
                      5s)
                      .exit_code == 0;
      if (!ssh_up || !http_up) std::this_thread::sleep_for(200ms);
    }
    ASSERT_TRUE(ssh_up) << slurp(tmp / "sshd.log");
    ASSERT_TRUE(http_up) << slurp(tmp / "http.log");
  }

  static void TearDownTestSuite() {
    for (pid_t* p : {&sshd_pid, &http_pid})
      if (*p > 0) {
        ::kill(*p, SIGTERM);
        ::waitpid(*p, nullptr, 0);
        *p = -1;
      }
    if (a_made) run({"ip", "netns", "del", ns_a});
    if (b_made) run({"ip", "netns", "del", ns_b});
    if (!tmp.empty()) {
      std::error_code ec;
      fs::remove_all(tmp, ec);
    }
  }

  void SetUp() override {
    if (!skip_reason.empty()) GTEST_SKIP() << skip_reason;
    ASSERT_GT(sshd_pid, 0);
  }

  // One guest: the cloud controller of a kubernetes configuration, or an endpoint of an
  // endpoint-only one.
  static void layout(plan::Plan& p, config::Config& c, infra::Deployment& d,
                     const std::string& rm) {
    c.infrastructure.provider = continuum::config::Provider::qemu;
    c.infrastructure.reachability_timeout = 3;
    config::Benchmark b;
    b.resource_manager = *continuum::config::resource_manager_named(rm);
    b.application = continuum::config::Application::image_classification;
    c.benchmark = b;
    plan::Node n;
    const bool kube = rm == "kubernetes";
    n.id = kube ? "cloud_controller" : "endpoint0";
    n.name = n.id + "_root";
    n.ssh_user = "root";
    n.tier = kube ? config::Tier::cloud : config::Tier::endpoint;
    n.controller = kube;
    n.ip = kGuest;
    p.user = "root";
    p.mode = kube ? "cloud" : "endpoint";
    p.network.prefix = "10.205";
    p.network.middle = 0;
    p.network.gateway = "10.205.0.1";
    p.network.prefix_len = 24;
    p.nodes = {n};
    p.playbooks = plan::playbook_steps(c);
    d.run_dir = tmp;
    d.private_key = tmp / "id";
    d.known_hosts = tmp / "known_hosts";
    d.netns = ns_a;
    d.nodes = {{n.id, n.name, std::string(config::tier_name(n.tier)), kGuest, "root", 22, "", 0}};
  }

  static fs::path versions(const std::string& name, const std::string& sources) {
    fs::path f = tmp / name;
    EXPECT_TRUE(util::write_file_atomic(f,
                                        "---\ndebian_mirror: \"http://deb.debian.org/debian\"\n"
                                        "continuum_sources:\n" +
                                            sources)
                    .ok());
    return f;
  }
};

TEST_F(Reachability, TheNamespaceHasNoUplink) {
  // The premise of every other case: nothing the check tries can leave the test's namespaces.
  auto routes = run({"ip", "-n", ns_a, "route", "show"});
  ASSERT_EQ(routes.exit_code, 0) << routes.err;
  EXPECT_EQ(routes.out.find("default"), std::string::npos) << routes.out;
  for (const auto& line : util::split(std::string(util::trim(routes.out)), '\n'))
    EXPECT_TRUE(util::starts_with(line, "10.205.0.0/24") ||
                util::starts_with(line, "10.205.1.0/24"))
        << line;
  EXPECT_EQ(std::string(util::trim(run({"ip", "-n", ns_a, "-6", "route", "show", "default"}).out)),
            "");
}

TEST_F(Reachability, KubernetesSourcesUnreachableFailFastWithTheList) {
  plan::Plan p;
  config::Config c;
  infra::Deployment d;
  layout(p, c, d, "kubernetes");
  auto events = record::EventLog::open(tmp / "events-kube.jsonl", Clock::now());
  ASSERT_TRUE(events.ok());
  // The shipped versions.yml, as a real run reads it.
  const auto t0 = Clock::now();
  auto r = check_reachability(p, c, d, events->get());
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf(
      "reachability check, kubernetes sources from a namespace without uplink: failed in %.2f s "
      "(timeout %.0f s)\n",
      secs, c.infrastructure.reachability_timeout);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().exit_code, continuum::ExitCode::failure);
  const std::string& m = r.error().message;
  std::printf("%s", m.c_str());
  // Within seconds: names fail at once (no route to the nameserver), not after an apt timeout.
  EXPECT_LT(secs, c.infrastructure.reachability_timeout + 10) << m;
  EXPECT_NE(m.find("cloud_controller_root (10.205.0.2): "
                   "https://pkgs.k8s.io/core:/stable:/v1.27/deb/Release.key "
                   "[kubernetes_install]: cannot resolve pkgs.k8s.io"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("https://registry.k8s.io/v2/ [kubernetes_control]"), std::string::npos) << m;
  EXPECT_NE(m.find("https://github.com/flannel-io/flannel/releases/download/"), std::string::npos)
      << m;
  EXPECT_NE(m.find("give the host an uplink"), std::string::npos) << m;
  EXPECT_NE(m.find("guest_https_proxy"), std::string::npos) << m;

  auto ev = record::read_events(tmp / "events-kube.jsonl");
  ASSERT_TRUE(ev.ok());
  ASSERT_EQ(ev->size(), 2u);
  EXPECT_EQ((*ev)[1].event, "end");
  EXPECT_FALSE((*ev)[1].details["ok"].get<bool>());
  EXPECT_GE((*ev)[1].details["unreachable"].size(), 4u);
}

TEST_F(Reachability, UnroutableAddressAndNamesAreListedPerSourceAndAPresentFileSkipsItsSource) {
  plan::Plan p;
  config::Config c;
  infra::Deployment d;
  layout(p, c, d, "none");
  auto f =
      versions("unreachable.yml",
               "  - {step: base, hosts: base, url: \"http://203.0.113.1/debian/\"}\n"
               "  - {step: mosquitto, hosts: brokers, url: \"https://no-such-host.invalid/x\"}\n"
               "  - {step: mosquitto, hosts: brokers, url: apt}\n"
               "  - {step: base, hosts: base, url: \"http://203.0.113.1/skipped\", unless: "
               "/etc/os-release}\n");
  const auto t0 = Clock::now();
  auto r = check_reachability(p, c, d, nullptr, f);
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("reachability check, 3 unreachable sources: failed in %.2f s\n", secs);
  ASSERT_FALSE(r.ok());
  const std::string& m = r.error().message;
  EXPECT_NE(m.find("3 download source(s)"), std::string::npos) << m;
  EXPECT_NE(m.find("endpoint0_root (10.205.0.2): http://203.0.113.1/debian/ [base]: cannot connect "
                   "to 203.0.113.1:80: "
                   "Network is unreachable"),
            std::string::npos)
      << m;
  EXPECT_NE(
      m.find("https://no-such-host.invalid/x [mosquitto]: cannot resolve no-such-host.invalid"),
      std::string::npos)
      << m;
  EXPECT_NE(m.find("http://deb.debian.org/debian/dists/" + host_codename() +
                   "/InRelease [mosquitto]: cannot resolve deb.debian.org"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("guest_apt_mirror"), std::string::npos) << m;
  EXPECT_EQ(m.find("203.0.113.1/skipped"), std::string::npos) << m;
  EXPECT_LT(secs, c.infrastructure.reachability_timeout + 10);
}

TEST_F(Reachability, ASilentHostIsGivenUpAfterTheTimeout) {
  // 10.205.1.99 is on the link to namespace B but nobody has it: the connect waits for an ARP
  // answer that never comes (inside the test's veth), so the probe's deadline ends it.
  plan::Plan p;
  config::Config c;
  infra::Deployment d;
  layout(p, c, d, "none");
  c.infrastructure.reachability_timeout = 1;
  auto f = versions("silent.yml", "  - {step: base, hosts: base, url: \"http://10.205.1.99/\"}\n");
  const auto t0 = Clock::now();
  auto r = check_reachability(p, c, d, nullptr, f);
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("reachability check, silent host, timeout 1 s: failed in %.2f s\n", secs);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(
                "http://10.205.1.99/ [base]: no answer from 10.205.1.99:80 within 1s (connect)"),
            std::string::npos)
      << r.error().message;
  EXPECT_LT(secs, 1 + 5);
}

TEST_F(Reachability, ALocalSourceAndMirrorInsideTheNamespacesPass) {
  plan::Plan p;
  config::Config c;
  infra::Deployment d;
  layout(p, c, d, "none");
  const std::string base = "http://" + std::string(kServer) + ":" + std::to_string(kHttpPort);
  c.infrastructure.guest_apt_mirror = base + "/debian";
  auto f = versions("local.yml", "  - {step: base, hosts: base, url: \"" + base +
                                     "/\"}\n"
                                     "  - {step: mosquitto, hosts: brokers, url: apt}\n");
  auto r = check_reachability(p, c, d, nullptr, f);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->skipped);
  EXPECT_EQ(r->guests, 1u);
  EXPECT_EQ(r->probed, 2u);
  std::printf("reachability check, local source and mirror: passed in %.2f s\n", r->seconds);
  // The mirror's InRelease of the guest's own release was asked for, with HEAD.
  auto log = slurp(tmp / "http.log");
  EXPECT_NE(log.find("\"HEAD /debian/dists/" + host_codename() + "/InRelease HTTP/1.1\" 200"),
            std::string::npos)
      << log;
}

TEST_F(Reachability, ThroughAProxyTheGuestNeedsNoRouteOfItsOwn) {
  plan::Plan p;
  config::Config c;
  infra::Deployment d;
  layout(p, c, d, "none");
  // The HTTP server in namespace B stands in for a forward proxy: the request for a host the
  // guest cannot resolve goes to it (absolute URI), and its answer counts.
  c.infrastructure.guest_http_proxy =
      "http://" + std::string(kServer) + ":" + std::to_string(kHttpPort);
  auto f = versions("proxy.yml",
                    "  - {step: base, hosts: base, url: \"http://unresolvable.invalid/probe\"}\n");
  auto r = check_reachability(p, c, d, nullptr, f);
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto log = slurp(tmp / "http.log");
  EXPECT_NE(log.find("\"HEAD http://unresolvable.invalid/probe HTTP/1.1\""), std::string::npos)
      << log;

  // A proxy nobody listens on: named as the proxy, with the reason.
  c.infrastructure.guest_http_proxy =
      "http://" + std::string(kServer) + ":" + std::to_string(kHttpPort + 1);
  r = check_reachability(p, c, d, nullptr, f);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(
                "http://unresolvable.invalid/probe via proxy " + c.infrastructure.guest_http_proxy +
                " [base]: cannot connect to proxy 10.205.1.2:" + std::to_string(kHttpPort + 1) +
                ": Connection refused"),
            std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("check that the configured proxy is reachable"),
            std::string::npos);
}

TEST_F(Reachability, OfflineStyleGuestWithEverythingInstalledChecksNothing) {
  // An endpoint-only configuration with the shipped versions.yml: base and mosquitto download
  // only what the guest lacks, and this "guest" has python3 and mosquitto, as the offline image.
  if (!fs::exists("/usr/sbin/mosquitto")) GTEST_SKIP() << "mosquitto not installed";
  plan::Plan p;
  config::Config c;
  infra::Deployment d;
  layout(p, c, d, "none");
  auto r = check_reachability(p, c, d, nullptr);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->probed, 0u);
  EXPECT_EQ(r->satisfied, 1u);
  std::printf("reachability check, offline-style guest: nothing to download, %.2f s\n", r->seconds);
}

}  // namespace
}  // namespace continuum::software

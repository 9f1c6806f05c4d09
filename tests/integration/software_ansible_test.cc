// The software phase against a REAL target, without VMs: the test makes a network namespace with
// a veth pair (10.203.0.2), starts its own sshd there (own sshd_config, host key and
// authorized_keys in a temp dir; PID recorded, killed by PID), and points a Deployment at it.
// The target is this machine seen through that sshd, so sshd runs in a private mount namespace
// whose /etc/mosquitto, /etc/sysctl.d, /run, /root, /var/lib/mosquitto and /var/log/mosquitto
// are bind mounts of temp dirs: whatever the playbooks write lands in the temp dir, not on the
// host (/etc/apt too). The test user is root (logs in with a key; `become` is off for root in the
// playbooks). The generated inventory and ansible.cfg (pinned known_hosts,
// StrictHostKeyChecking=yes) drive real ansible-playbook runs inside the namespace; afterwards a
// real broker must answer on the target's address (not only on localhost: the playbook's listener
// config).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "continuum/record/events.h"
#include "continuum/software/inventory.h"
#include "continuum/software/runner.h"
#include "continuum/software/software.h"
#include "continuum/util/files.h"
#include "continuum/util/interrupt.h"
#include "continuum/util/process.h"
#include "continuum/util/strings.h"
#include "integration/interrupt_support.h"

extern char** environ;

namespace continuum::software {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const char* kAddr = "10.203.0.2";

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

std::vector<std::string> in_ns(const std::string& ns, std::vector<std::string> argv) {
  argv.insert(argv.begin(), {"ip", "netns", "exec", ns});
  return argv;
}

// The first result line printed after "TASK [task]" in a playbook log.
std::string result_after(const std::string& log, const std::string& task) {
  size_t at = log.find("TASK [" + task + "]");
  if (at == std::string::npos) return "<no task " + task + ">";
  for (const auto& line : util::split(log.substr(at), '\n'))
    if (util::starts_with(line, "ok: ") || util::starts_with(line, "changed: ") ||
        util::starts_with(line, "fatal: ") || util::starts_with(line, "skipping: "))
      return line;
  return "<no result>";
}

class SoftwareAnsible : public ::testing::Test {
 protected:
  static inline fs::path tmp;
  static inline std::string ns;
  static inline pid_t sshd_pid = -1;
  static inline std::string skip_reason;
  static inline bool ns_made = false;

  static void SetUpTestSuite() {
    if (::geteuid() != 0) {
      skip_reason = "needs root (network namespace)";
      return;
    }
    for (const char* p : {"ip", "unshare", "/usr/sbin/sshd", "ssh-keygen", "ansible-playbook",
                          "mosquitto_pub", "mosquitto_sub", "/usr/sbin/mosquitto"})
      if (!util::have_program(p)) {
        skip_reason = std::string("missing ") + p;
        return;
      }
    for (const char* d : {"/etc/mosquitto", "/var/lib/mosquitto", "/var/log/mosquitto"})
      if (!fs::is_directory(d)) {
        skip_reason = std::string("missing ") + d;
        return;
      }

    // Short path: it also holds the run's ControlPath sockets.
    std::string t = "/tmp/cntm-sw-XXXXXX";
    ASSERT_NE(::mkdtemp(t.data()), nullptr);
    tmp = t;
    ns = "cntm-sw-" + std::to_string(::getpid());
    auto ok = [](const util::ProcessResult& r) { return r.exit_code == 0; };
    ASSERT_TRUE(ok(run({"ip", "netns", "add", ns})));
    ns_made = true;
    ASSERT_TRUE(ok(run({"ip", "-n", ns, "link", "set", "lo", "up"})));
    // A veth pair inside the namespace (this kernel has no dummy driver); the target's address
    // is on one end, so the broker is reached on a non-loopback address.
    ASSERT_TRUE(
        ok(run({"ip", "-n", ns, "link", "add", "tgt0", "type", "veth", "peer", "name", "tgt1"})));
    ASSERT_TRUE(
        ok(run({"ip", "-n", ns, "addr", "add", std::string(kAddr) + "/24", "dev", "tgt0"})));
    ASSERT_TRUE(ok(run({"ip", "-n", ns, "link", "set", "tgt0", "up"})));
    ASSERT_TRUE(ok(run({"ip", "-n", ns, "link", "set", "tgt1", "up"})));

    ASSERT_TRUE(ok(run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f",
                        (tmp / "hostkey").string()})));
    ASSERT_TRUE(ok(run(
        {"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", (tmp / "id").string()})));
    fs::copy_file(tmp / "id.pub", tmp / "authorized_keys");
    auto hostpub = util::read_file(tmp / "hostkey.pub");
    ASSERT_TRUE(hostpub.ok());
    // The pinned known_hosts an infrastructure phase would have written.
    ASSERT_TRUE(
        util::write_file_atomic(tmp / "known_hosts", std::string(kAddr) + " " + *hostpub).ok());

    // The target's private view of the paths the playbooks write.
    fs::path m = tmp / "mnt";
    for (const char* d : {"sysctl.d", "run/sshd", "root", "varlib", "varlog"})
      fs::create_directories(m / d);
    fs::permissions(m / "root", fs::perms::owner_all);
    fs::copy("/etc/mosquitto", m / "etc-mosquitto", fs::copy_options::recursive);
    // The base playbook writes the guests' apt proxy and mirror into /etc/apt.
    fs::copy("/etc/apt", m / "etc-apt",
             fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    // The host's own conf.d snippets are not the target's business.
    for (const auto& e : fs::directory_iterator(m / "etc-mosquitto/conf.d"))
      if (e.path().extension() == ".conf") fs::remove(e.path());

    std::string cfg =
        "Port 22\nListenAddress " + std::string(kAddr) + "\nHostKey " + (tmp / "hostkey").string() +
        "\nPidFile " + (tmp / "sshd.pid").string() + "\nAuthorizedKeysFile " +
        (tmp / "authorized_keys").string() +
        "\nStrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nSubsystem sftp internal-sftp\n"
        "MaxSessions 100\nMaxStartups 100\n";
    ASSERT_TRUE(util::write_file_atomic(tmp / "sshd_config", cfg).ok());

    std::vector<std::pair<fs::path, std::string>> binds = {{m / "etc-mosquitto", "/etc/mosquitto"},
                                                           {m / "sysctl.d", "/etc/sysctl.d"},
                                                           {m / "run", "/run"},
                                                           {m / "root", "/root"},
                                                           {m / "varlib", "/var/lib/mosquitto"},
                                                           {m / "varlog", "/var/log/mosquitto"},
                                                           {m / "etc-apt", "/etc/apt"}};
    std::string script = "set -e\n";
    for (const auto& [src, dst] : binds)
      script +=
          "mount --bind " + util::shell_quote(src.string()) + " " + util::shell_quote(dst) + "\n";
    script +=
        "exec /usr/sbin/sshd -D -e -f " + util::shell_quote((tmp / "sshd_config").string()) + "\n";

    std::vector<std::string> argv = {"ip",      "netns",   "exec",          ns,
                                     "unshare", "--mount", "--propagation", "private",
                                     "/bin/sh", "-c",      script};
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, (tmp / "sshd.log").c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    ASSERT_EQ(::posix_spawnp(&sshd_pid, "ip", &fa, nullptr, cargv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&fa);

    // Poll until sshd accepts our key with the pinned host key (no sleep as synchronisation).
    auto deadline = std::chrono::steady_clock::now() + 30s;
    bool up = false;
    while (!up && std::chrono::steady_clock::now() < deadline) {
      auto r = run(in_ns(ns, {"ssh", "-i", (tmp / "id").string(), "-o",
                              "UserKnownHostsFile=" + (tmp / "known_hosts").string(), "-o",
                              "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o",
                              "ConnectTimeout=2", std::string("root@") + kAddr, "true"}),
                   10s);
      up = r.exit_code == 0;
      if (!up && ::waitpid(sshd_pid, nullptr, WNOHANG) == sshd_pid) {
        sshd_pid = -1;
        break;
      }
      if (!up) std::this_thread::sleep_for(200ms);  // poll interval, not synchronisation
    }
    ASSERT_TRUE(up) << "sshd did not come up: " << util::read_file(tmp / "sshd.log").value();
  }

  static void TearDownTestSuite() {
    // mosquitto was started by the playbook as a daemon: its PID is in the target's /run.
    if (!tmp.empty()) {
      auto pid_text = util::read_file(tmp / "mnt/run/mosquitto/mosquitto.pid");
      if (pid_text.ok()) {
        pid_t pid = std::atoi(std::string(util::trim(*pid_text)).c_str());
        std::error_code ec;
        auto exe = fs::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec);
        if (pid > 1 && !ec && exe.filename() == "mosquitto") ::kill(pid, SIGTERM);
      }
    }
    if (sshd_pid > 0) {
      ::kill(sshd_pid, SIGTERM);
      ::waitpid(sshd_pid, nullptr, 0);
    }
    if (ns_made) run({"ip", "netns", "del", ns});
    if (!tmp.empty()) {
      std::error_code ec;
      fs::remove_all(tmp, ec);
    }
  }

  void SetUp() override {
    if (!skip_reason.empty()) GTEST_SKIP() << skip_reason;
    ASSERT_GT(sshd_pid, 0);
  }

  // One endpoint node: in the base and brokers groups, as in an endpoint-only configuration.
  static void layout(plan::Plan& p, config::Config& c, infra::Deployment& d,
                     const fs::path& run_dir) {
    c.infrastructure.provider = continuum::config::Provider::qemu;
    c.infrastructure.endpoint.nodes = 1;
    config::Benchmark b;
    b.resource_manager = continuum::config::ResourceManager::none;
    b.playbook_timeout = 600;
    c.benchmark = b;
    plan::Node n;
    n.id = "endpoint0";
    n.name = "endpoint0_root";
    n.ssh_user = "root";
    n.tier = config::Tier::endpoint;
    n.ip = kAddr;
    p.user = "root";
    p.mode = "endpoint";
    p.nodes = {n};
    p.playbooks = plan::playbook_steps(c);
    d.run_dir = run_dir;
    d.private_key = tmp / "id";
    d.known_hosts = run_dir / "known_hosts";
    d.netns = ns;
    d.nodes = {{"endpoint0", "endpoint0_root", "endpoint", kAddr, "root", 22, "", 0}};
    fs::create_directories(run_dir);
    fs::copy_file(tmp / "known_hosts", run_dir / "known_hosts",
                  fs::copy_options::overwrite_existing);
  }

  // Inventory + ansible.cfg without running anything (for the runner-level cases).
  static RunnerOptions prepare(const fs::path& run_dir) {
    plan::Plan p;
    config::Config c;
    infra::Deployment d;
    layout(p, c, d, run_dir);
    auto inv = make_inventory(p, c, d);
    EXPECT_TRUE(inv.ok());
    EXPECT_TRUE(util::write_file_atomic(run_dir / "software/inventory.yml", *inv).ok());
    AnsibleSettings s;
    s.software_dir = run_dir / "software";
    s.private_key = d.private_key;
    s.known_hosts = d.known_hosts;
    s.control_path_dir = make_control_path_dir(s.software_dir).value();
    EXPECT_TRUE(
        util::write_file_atomic(run_dir / "software/ansible.cfg", make_ansible_cfg(s)).ok());
    RunnerOptions o;
    o.software_dir = s.software_dir;
    o.ansible_cfg = run_dir / "software/ansible.cfg";
    o.netns = ns;
    o.timeout = 300s;
    return o;
  }
};

TEST_F(SoftwareAnsible, BaseAndMosquittoPlaybooksLeaveABrokerAnsweringOnTheTarget) {
  fs::path run_dir = tmp / "run1";
  plan::Plan p;
  config::Config c;
  infra::Deployment d;
  layout(p, c, d, run_dir);
  auto events = record::EventLog::open(run_dir / "events.jsonl", std::chrono::steady_clock::now());
  ASSERT_TRUE(events.ok());

  Status st = install(p, c, d, run_dir, events->get());
  ASSERT_TRUE(st.ok()) << st.error().message;

  for (const char* f : {"software/inventory.yml", "software/ansible.cfg", "software/base.log",
                        "software/mosquitto.log"})
    EXPECT_TRUE(fs::exists(run_dir / f)) << f;
  auto mlog = util::read_file(run_dir / "software/mosquitto.log").value();
  EXPECT_NE(mlog.find("endpoint0_root"), std::string::npos);
  EXPECT_NE(mlog.find("failed=0"), std::string::npos);
  // The run's SSH masters are closed and their directory removed.
  EXPECT_FALSE(fs::exists(run_dir / "software/cp"));
  // What the playbooks wrote went to the target's view, not the host's /etc.
  EXPECT_TRUE(fs::exists(tmp / "mnt/etc-mosquitto/conf.d/continuum.conf"));
  EXPECT_TRUE(fs::exists(tmp / "mnt/sysctl.d/60-continuum.conf"));
  EXPECT_TRUE(fs::exists(tmp / "mnt/run/mosquitto/mosquitto.pid"));

  // A real client on the target's address (a remote listener, not the localhost default).
  auto pub = run(in_ns(ns, {"mosquitto_pub", "-h", kAddr, "-p", "1883", "-t", "continuum/test",
                            "-m", "hello", "-r"}));
  ASSERT_EQ(pub.exit_code, 0) << pub.err;
  auto sub = run(in_ns(ns, {"mosquitto_sub", "-h", kAddr, "-p", "1883", "-t", "continuum/test",
                            "-C", "1", "-W", "10"}));
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  EXPECT_EQ(util::trim(sub.out), "hello");

  auto ev = record::read_events(run_dir / "events.jsonl");
  ASSERT_TRUE(ev.ok());
  std::vector<std::string> seen;
  for (const auto& e : *ev) seen.push_back(e.phase + " " + e.event);
  EXPECT_EQ(seen.front(), "software start");
  EXPECT_EQ(seen.back(), "software end");
  EXPECT_NE(std::find(seen.begin(), seen.end(), "playbook:mosquitto end"), seen.end());
  // One ansible-playbook process for both (RunnerOptions::merge), split back per playbook: each
  // log holds its own plays only, the recap is in the last one, and each playbook is an interval
  // of its own, base's before mosquitto's.
  EXPECT_TRUE(fs::exists(run_dir / "software/playbooks.yml"));
  auto blog = util::read_file(run_dir / "software/base.log").value();
  EXPECT_NE(blog.find("PLAY [Base system]"), std::string::npos) << blog;
  EXPECT_EQ(blog.find("MQTT broker"), std::string::npos) << blog;
  // Each play and task is preceded by the seconds since its step started.
  EXPECT_NE(blog.find("# at "), std::string::npos) << blog;
  EXPECT_NE(blog.find("s\nTASK [Ensure python3"), std::string::npos) << blog;
  EXPECT_NE(mlog.find("PLAY [MQTT broker]"), std::string::npos) << mlog;
  EXPECT_EQ(mlog.find("PLAY [Base system]"), std::string::npos) << mlog;
  EXPECT_NE(mlog.find("PLAY RECAP"), std::string::npos) << mlog;
  auto at = [&](const std::string& what) {
    return std::find(seen.begin(), seen.end(), what) - seen.begin();
  };
  EXPECT_LT(at("playbook:base start"), at("playbook:base end"));
  EXPECT_LT(at("playbook:base end"), at("playbook:mosquitto start"));
  EXPECT_LT(at("playbook:mosquitto start"), at("playbook:mosquitto end"));
  EXPECT_LT(at("playbook:mosquitto end"), static_cast<long>(seen.size()));

  // Running the phase again is idempotent: the broker's configuration is already there, so its
  // copy is skipped without a module run (the probe's checksum matched), and the daemon keeps
  // running (the start task reports "running").
  Status again = install(p, c, d, run_dir, nullptr);
  ASSERT_TRUE(again.ok()) << again.error().message;
  auto mlog2 = util::read_file(run_dir / "software/mosquitto.log").value();
  EXPECT_EQ(result_after(mlog2, "Listener configuration"), "skipping: [endpoint0_root]") << mlog2;
  EXPECT_EQ(result_after(mlog2, "Start or restart the daemon"), "ok: [endpoint0_root]") << mlog2;
}

TEST_F(SoftwareAnsible, BasePlaybookWritesTheGuestAptProxyAndMirrorAndRemovesThemAgain) {
  // [infrastructure] guest_apt_proxy / guest_apt_mirror / guest_http_proxy through the real
  // inventory and the real base playbook: apt.conf.d gets the proxy, the mirror replaces the
  // image's Debian sources (kept aside), and a run without them puts everything back.
  fs::path run_dir = tmp / "run-apt";
  plan::Plan p;
  config::Config c;
  infra::Deployment d;
  layout(p, c, d, run_dir);
  c.infrastructure.guest_apt_proxy = "http://10.203.0.1:3142";
  c.infrastructure.guest_apt_mirror = "http://mirror.test/debian";
  c.infrastructure.guest_http_proxy = "http://10.203.0.1:3128";
  const fs::path apt = tmp / "mnt/etc-apt";
  const bool had_deb822 = fs::exists(apt / "sources.list.d/debian.sources");
  const bool had_list = fs::exists(apt / "sources.list");
  ASSERT_TRUE(had_deb822 || had_list) << "no Debian sources on this host to replace";

  Status st = install(p, c, d, run_dir, nullptr);
  ASSERT_TRUE(st.ok()) << st.error().message;
  auto proxy = util::read_file(apt / "apt.conf.d/01continuum-proxy");
  ASSERT_TRUE(proxy.ok());
  EXPECT_NE(proxy->find("Acquire::http::Proxy \"http://10.203.0.1:3142\";"), std::string::npos)
      << *proxy;
  auto mirror = util::read_file(apt / "sources.list.d/continuum-mirror.sources");
  ASSERT_TRUE(mirror.ok());
  std::string codename;
  for (const auto& line : util::split(util::read_file("/etc/os-release").value(), '\n')) {
    if (util::starts_with(line, "VERSION_CODENAME=")) codename = line.substr(17);
  }
  EXPECT_NE(mirror->find("URIs: http://mirror.test/debian\n"), std::string::npos) << *mirror;
  EXPECT_NE(mirror->find("Suites: " + codename + " " + codename + "-updates\n"), std::string::npos)
      << *mirror;
  EXPECT_NE(mirror->find("Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"),
            std::string::npos);
  if (had_deb822) {
    EXPECT_FALSE(fs::exists(apt / "sources.list.d/debian.sources"));
    EXPECT_TRUE(fs::exists(apt / "sources.list.d/debian.sources.continuum-orig"));
  }
  if (had_list) {
    EXPECT_TRUE(fs::exists(apt / "sources.list.continuum-orig"));
  }
  // The inventory carried the proxy environment the playbooks pass as `environment:`.
  auto inv = util::read_file(run_dir / "software/inventory.yml").value();
  EXPECT_NE(inv.find("http_proxy: \"http://10.203.0.1:3128\""), std::string::npos) << inv;
  // The host's own /etc/apt was not touched.
  EXPECT_FALSE(fs::exists("/etc/apt/apt.conf.d/01continuum-proxy"));
  EXPECT_FALSE(fs::exists("/etc/apt/sources.list.d/continuum-mirror.sources"));

  c.infrastructure.guest_apt_proxy.clear();
  c.infrastructure.guest_apt_mirror.clear();
  c.infrastructure.guest_http_proxy.clear();
  st = install(p, c, d, run_dir, nullptr);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_FALSE(fs::exists(apt / "apt.conf.d/01continuum-proxy"));
  EXPECT_FALSE(fs::exists(apt / "sources.list.d/continuum-mirror.sources"));
  EXPECT_EQ(fs::exists(apt / "sources.list.d/debian.sources"), had_deb822);
  EXPECT_EQ(fs::exists(apt / "sources.list"), had_list);
  EXPECT_FALSE(fs::exists(apt / "sources.list.d/debian.sources.continuum-orig"));
}

TEST_F(SoftwareAnsible, FailingTaskReportsHostTaskMessageAndExitCode1) {
  fs::path run_dir = tmp / "run2";
  RunnerOptions o = prepare(run_dir);
  std::string play =
      "---\n- name: Deliberate failure\n  hosts: base\n  gather_facts: false\n  tasks:\n"
      "    - name: Harmless first task\n      ansible.builtin.command: \"true\"\n      "
      "changed_when: false\n"
      "    - name: Deliberately failing task\n"
      "      ansible.builtin.shell: \"echo the disk is on fire >&2; exit 7\"\n      changed_when: "
      "false\n";
  ASSERT_TRUE(util::write_file_atomic(run_dir / "fail.yml", play).ok());
  ASSERT_TRUE(util::write_file_atomic(
                  run_dir / "never.yml",
                  "---\n- name: Never\n  hosts: base\n  gather_facts: false\n  tasks: []\n")
                  .ok());

  auto single = run_playbook(o, {"fail", run_dir / "fail.yml", {}, {}});
  ASSERT_TRUE(single.ok()) << single.error().message;
  EXPECT_FALSE(single->ok());
  EXPECT_NE(single->exit_code, 0);
  ASSERT_EQ(single->output.failures.size(), 1u);
  EXPECT_EQ(single->output.failures[0].host, "endpoint0_root");
  EXPECT_EQ(single->output.failures[0].task, "Deliberately failing task");
  EXPECT_EQ(single->output.failures[0].message,
            "non-zero return code; stderr: the disk is on fire");
  EXPECT_EQ(single->output.recap.at("endpoint0_root").failed, 1);
  EXPECT_EQ(single->output.recap.at("endpoint0_root").ok, 1);

  // Through the scheduler: exit code 1, the message names host, task and Ansible's message, and
  // the step that depends on the failed one never starts.
  auto all = run_all(
      o, {{"fail", run_dir / "fail.yml", {}, {}}, {"never", run_dir / "never.yml", {"fail"}, {}}},
      nullptr);
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.error().exit_code, continuum::ExitCode::failure);
  EXPECT_NE(all.error().message.find("playbook fail failed on endpoint0_root in task 'Deliberately "
                                     "failing task': non-zero return "
                                     "code; stderr: the disk is on fire"),
            std::string::npos)
      << all.error().message;
  EXPECT_FALSE(fs::exists(run_dir / "software/never.log"));
  EXPECT_TRUE(close_control_masters(o.software_dir / "cp").ok());
}

TEST_F(SoftwareAnsible, AStepWithARescueBlockRunsInAProcessOfItsOwn) {
  // a -> a2 -> b, where b's failure is handled by its rescue block: a and a2 share a process, b
  // gets its own (a merged run stops at the next step after any failed task, and whether a rescue
  // handled it shows only in the recap), and b's handled failure is not a failed step.
  fs::path run_dir = tmp / "run-rescue";
  RunnerOptions o = prepare(run_dir);
  auto plain = [](const std::string& name) {
    return "---\n- name: " + name + "\n  hosts: base\n  gather_facts: false\n  tasks:\n" +
           "    - name: Nothing\n      ansible.builtin.command: \"true\"\n      changed_when: "
           "false\n";
  };
  ASSERT_TRUE(util::write_file_atomic(run_dir / "a.yml", plain("Play a")).ok());
  ASSERT_TRUE(util::write_file_atomic(run_dir / "a2.yml", plain("Play a2")).ok());
  ASSERT_TRUE(util::write_file_atomic(
                  run_dir / "b.yml",
                  "---\n- name: Play b\n  hosts: base\n  gather_facts: false\n  tasks:\n"
                  "    - block:\n        - name: Fails\n          ansible.builtin.command: "
                  "\"false\"\n      rescue:\n        - name: Handled\n          "
                  "ansible.builtin.command: \"true\"\n          changed_when: false\n")
                  .ok());
  auto all = run_all(o,
                     {{"a", run_dir / "a.yml", {}, {}},
                      {"a2", run_dir / "a2.yml", {"a"}, {}},
                      {"b", run_dir / "b.yml", {"a2"}, {}}},
                     nullptr);
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_EQ(all->size(), 3u);
  EXPECT_TRUE((*all)[0].merged && (*all)[1].merged);
  auto first = util::read_file(run_dir / "software/playbooks-1.yml");
  auto second = util::read_file(run_dir / "software/playbooks-2.yml");
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_NE(first->find((run_dir / "a2.yml").string()), std::string::npos) << *first;
  EXPECT_EQ(first->find((run_dir / "b.yml").string()), std::string::npos) << *first;
  EXPECT_NE(second->find((run_dir / "b.yml").string()), std::string::npos) << *second;
  for (const char* step : {"a", "a2", "b"})
    EXPECT_TRUE(fs::exists(run_dir / "software" / (std::string(step) + ".log"))) << step;
  EXPECT_EQ((*all)[2].output.recap.at("endpoint0_root").rescued, 1);
  EXPECT_TRUE(close_control_masters(o.software_dir / "cp").ok());
}

TEST_F(SoftwareAnsible, IndependentPlaybooksRunConcurrently) {
  // Each playbook creates its own marker on the target and waits for the other's: both can only
  // succeed if they run at the same time.
  fs::path run_dir = tmp / "run3";
  RunnerOptions o = prepare(run_dir);
  o.merge = false;  // one process would run them one after the other
  auto book = [&](const std::string& mine, const std::string& other) {
    return "---\n- name: Rendezvous\n  hosts: base\n  gather_facts: false\n  tasks:\n"
           "    - name: Mark\n      ansible.builtin.file:\n        path: " +
           (run_dir / mine).string() +
           "\n        state: touch\n        mode: \"0644\"\n"
           "    - name: Wait for the other playbook\n      ansible.builtin.wait_for:\n        "
           "path: " +
           (run_dir / other).string() + "\n        timeout: 120\n";
  };
  ASSERT_TRUE(util::write_file_atomic(run_dir / "a.yml", book("a.mark", "b.mark")).ok());
  ASSERT_TRUE(util::write_file_atomic(run_dir / "b.yml", book("b.mark", "a.mark")).ok());
  auto all =
      run_all(o, {{"a", run_dir / "a.yml", {}, {}}, {"b", run_dir / "b.yml", {}, {}}}, nullptr);
  ASSERT_TRUE(all.ok()) << all.error().message;
  EXPECT_EQ(all->size(), 2u);
  EXPECT_TRUE(close_control_masters(o.software_dir / "cp").ok());
}

TEST_F(SoftwareAnsible, CtrlCStopsTheRunningPlaybookGroupAndStartsNoOther) {
  // A playbook whose task sleeps 60 s on the target, and one that would run after it. Ctrl-C (the
  // process-wide flag, as the CLI's handler sets it) while the task runs: the phase must return
  // within seconds with exit code 130, ansible-playbook's whole process group must be gone, and
  // the later playbook must never have started.
  using namespace interrupt_test;
  fs::path run_dir = tmp / "run-int";
  RunnerOptions o = prepare(run_dir);
  o.cancel = util::interrupt_flag();
  const std::string sleep_arg =
      "60." +
      std::to_string(100000 + ::getpid() % 100000);  // unique: found by its argv on the target
  ASSERT_TRUE(util::write_file_atomic(
                  run_dir / "sleepy.yml",
                  "---\n- name: Sleepy\n  hosts: base\n  gather_facts: false\n  tasks:\n"
                  "    - name: Sleep a minute\n      ansible.builtin.command: sleep " +
                      sleep_arg + "\n      changed_when: false\n")
                  .ok());
  ASSERT_TRUE(
      util::write_file_atomic(run_dir / "later.yml",
                              "---\n- name: Later\n  hosts: base\n  gather_facts: false\n  tasks:\n"
                              "    - name: Mark\n      ansible.builtin.file:\n        path: " +
                                  (run_dir / "later.mark").string() +
                                  "\n        state: touch\n        mode: \"0644\"\n")
          .ok());
  util::clear_interrupt();

  pid_t pgid = -1;
  pid_t remote_sleep = -1;
  std::chrono::steady_clock::time_point raised;
  std::thread ctrl_c([&] {
    // The moment the task runs on the target: its `sleep 60.417` exists.
    bool running = wait_until(
        [&] {
          auto p = pids_where([&](const std::vector<std::string>& a) {
            return a.size() == 2 && a[0] == "sleep" && a[1] == sleep_arg;
          });
          if (!p.empty()) remote_sleep = p.front();
          return !p.empty();
        },
        120s);
    // One process for both steps (RunnerOptions::merge): the playbook that imports them.
    auto ap = pids_where([&](const std::vector<std::string>& a) {
      return argv_contains(a, "ansible-playbook") &&
             argv_contains(a, (run_dir / "software/playbooks.yml").string());
    });
    if (!ap.empty()) pgid = ::getpgid(ap.front());
    raised = std::chrono::steady_clock::now();
    util::request_interrupt();
    (void)running;
  });
  auto all = run_all(o,
                     {{"sleepy", run_dir / "sleepy.yml", {}, {}},
                      {"later", run_dir / "later.yml", {"sleepy"}, {}}},
                     nullptr);
  auto returned = std::chrono::steady_clock::now();
  ctrl_c.join();
  util::clear_interrupt();
  ASSERT_GT(remote_sleep, 0) << "the sleeping task never started";
  ASSERT_GT(pgid, 0) << "ansible-playbook for software/playbooks.yml not found";
  const double ms = ms_between(raised, returned);
  print_measure("software", "interrupt_to_return", ms);

  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.error().exit_code, continuum::ExitCode::interrupted);
  EXPECT_NE(all.error().message.find("interrupted"), std::string::npos) << all.error().message;
  EXPECT_NE(all.error().message.find("not started: later"), std::string::npos)
      << all.error().message;
  EXPECT_LT(ms, 5000) << "the phase would otherwise run 60 s";
  EXPECT_FALSE(group_alive(pgid)) << "ansible-playbook's process group " << pgid << " survived";
  EXPECT_FALSE(fs::exists(run_dir / "software/later.log"));
  EXPECT_FALSE(fs::exists(run_dir / "later.mark"));
  auto log = util::read_file(run_dir / "software/sleepy.log");
  ASSERT_TRUE(log.ok());
  EXPECT_NE(log->find("(interrupted)"), std::string::npos) << *log;

  EXPECT_TRUE(close_control_masters(o.software_dir / "cp").ok());
  // The task's own `sleep` ran under the target's sshd, which Ansible does not signal: end it by
  // the PID found above (it is ours), if it is still that process.
  auto a = proc_argv(remote_sleep);
  if (a.size() == 2 && a[1] == sleep_arg) ::kill(remote_sleep, SIGTERM);
}

TEST_F(SoftwareAnsible, RunDirectoryWithSpacesAndPercentWorks) {
  // A configuration named "my 100% exp.cfg" gives run directories like this one; the key path
  // carries a space and a % too. The generated ansible.cfg must get ansible-playbook through the
  // pinned known_hosts, the key and the ControlPath socket directory inside that path.
  fs::path run_dir = tmp / "my 100% exp_1";
  plan::Plan p;
  config::Config c;
  infra::Deployment d;
  layout(p, c, d, run_dir);
  fs::path key = run_dir / "key 5%";
  fs::copy_file(tmp / "id", key);
  fs::permissions(key, fs::perms::owner_read | fs::perms::owner_write);
  auto inv = make_inventory(p, c, d);
  ASSERT_TRUE(inv.ok());
  ASSERT_TRUE(util::write_file_atomic(run_dir / "software/inventory.yml", *inv).ok());
  AnsibleSettings s;
  s.software_dir = run_dir / "software";
  s.private_key = key;
  s.known_hosts = d.known_hosts;
  auto cp = make_control_path_dir(s.software_dir);
  ASSERT_TRUE(cp.ok());
  s.control_path_dir = *cp;
  ASSERT_EQ(cp->parent_path(), s.software_dir)
      << "the socket directory should be inside the odd path";
  ASSERT_TRUE(util::write_file_atomic(s.software_dir / "ansible.cfg", make_ansible_cfg(s)).ok());
  RunnerOptions o;
  o.software_dir = s.software_dir;
  o.ansible_cfg = s.software_dir / "ansible.cfg";
  o.netns = ns;
  o.timeout = 300s;
  ASSERT_TRUE(util::write_file_atomic(
                  run_dir / "hello.yml",
                  "---\n- name: Hello\n  hosts: base\n  gather_facts: false\n  tasks:\n"
                  "    - name: Say hello\n      ansible.builtin.command: echo hello-from-target\n"
                  "      changed_when: false\n      register: hello\n"
                  "    - name: Show it\n      ansible.builtin.debug:\n        msg: \"{{ "
                  "hello.stdout }}\"\n")
                  .ok());
  auto r = run_playbook(o, {"hello", run_dir / "hello.yml", {}, {}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto log_text = util::read_file(r->log);
  std::string log = log_text.ok() ? *log_text : std::string();
  EXPECT_TRUE(r->ok()) << log;
  EXPECT_NE(log.find("hello-from-target"), std::string::npos) << log;
  // The SSH master's socket is in the run's own directory (ControlPath resolved, not mangled).
  bool socket_found = false;
  for (const auto& e : fs::directory_iterator(*cp)) socket_found |= fs::is_socket(e.status());
  EXPECT_TRUE(socket_found) << "no ControlMaster socket in " << *cp;
  // ...and the master (its process title names the socket) ends when the phase closes it.
  auto masters = [&] {
    return interrupt_test::pids_where([&](const std::vector<std::string>& a) {
      return interrupt_test::argv_contains(a, cp->string()) &&
             interrupt_test::argv_contains(a, "[mux]");
    });
  };
  EXPECT_FALSE(masters().empty()) << "no SSH master for " << *cp;
  EXPECT_TRUE(close_control_masters(*cp).ok());
  EXPECT_TRUE(interrupt_test::wait_until([&] { return masters().empty(); }, 10s))
      << "the SSH master outlived close_control_masters";
}

}  // namespace
}  // namespace continuum::software

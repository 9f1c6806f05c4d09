// util::ssh_connect / Remote against a REAL OpenSSH server. The test makes its own network
// namespace, starts /usr/sbin/sshd inside it on that namespace's loopback with a host key and an
// authorized_keys file of its own (temp dir, own sshd_config, -D), records the PID, and kills
// that PID at the end. Remote connects through the namespace (SshTarget::netns).
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

#include "continuum/infra/clock.h"
#include "continuum/infra/readiness.h"
#include "continuum/util/files.h"
#include "continuum/util/process.h"
#include "continuum/util/remote_pool.h"
#include "continuum/util/ssh.h"
#include "continuum/util/strings.h"

extern char** environ;

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using continuum::util::ProcessSpec;
using continuum::util::run_process;

namespace {

std::string sh(const std::vector<std::string>& argv) {
  ProcessSpec spec;
  spec.argv = argv;
  spec.timeout = 60s;
  auto r = run_process(spec);
  if (!r || r->exit_code != 0)
    throw std::runtime_error("command failed: " + continuum::util::shell_join(argv) + ": " +
                             (r ? r->err : r.error().message));
  return r->out;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class SshdInNetns : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0 || !fs::exists("/usr/sbin/sshd")) return;
    ns_ = "cnt-ssh-" + std::to_string(::getpid());
    dir_ = fs::temp_directory_path() / ("continuum-ssh-test-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    sh({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "host", "-f",
        (dir_ / "host_key").string()});
    sh({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "other", "-f",
        (dir_ / "other_key").string()});
    sh({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "client", "-f",
        (dir_ / "client_key").string()});
    sh({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "stranger", "-f",
        (dir_ / "stranger_key").string()});
    fs::copy_file(dir_ / "client_key.pub", dir_ / "authorized_keys");
    std::string host_pub = slurp(dir_ / "host_key.pub");
    std::string other_pub = slurp(dir_ / "other_key.pub");
    auto kh_line = [](const std::string& pub) {
      auto w = continuum::util::split(std::string(continuum::util::trim(pub)), ' ');
      return "127.0.0.1 " + w.at(0) + " " + w.at(1) + "\n";
    };
    ASSERT_TRUE(continuum::util::write_file_atomic(dir_ / "known_hosts", kh_line(host_pub)).ok());
    ASSERT_TRUE(
        continuum::util::write_file_atomic(dir_ / "wrong_known_hosts", kh_line(other_pub)).ok());
    ASSERT_TRUE(continuum::util::write_file_atomic(dir_ / "other_host_known_hosts",
                                                   "127.0.0.2 " + kh_line(host_pub).substr(10))
                    .ok());
    std::ofstream(dir_ / "sshd_config")
        << "Port 22\nListenAddress 127.0.0.1\nHostKey " << (dir_ / "host_key").string()
        << "\nAuthorizedKeysFile " << (dir_ / "authorized_keys").string()
        << "\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
           "StrictModes no\nPermitRootLogin prohibit-password\nPidFile none\nLogLevel VERBOSE\n";
    fs::create_directories("/run/sshd");  // privilege separation directory sshd insists on

    sh({"ip", "netns", "add", ns_});
    sh({"ip", "-n", ns_, "link", "set", "lo", "up"});
    // `ip netns exec` execs sshd in place, so the PID we get is sshd's own.
    std::string log = (dir_ / "sshd.log").string();
    std::vector<std::string> argv = {"ip",
                                     "netns",
                                     "exec",
                                     ns_,
                                     "/usr/sbin/sshd",
                                     "-D",
                                     "-e",
                                     "-f",
                                     (dir_ / "sshd_config").string(),
                                     "-E",
                                     log};
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    ASSERT_EQ(posix_spawnp(&sshd_pid_, "ip", nullptr, nullptr, cargv.data(), environ), 0);
  }

  static void TearDownTestSuite() {
    if (sshd_pid_ > 0) {
      ::kill(sshd_pid_, SIGTERM);
      int st;
      ::waitpid(sshd_pid_, &st, 0);
      sshd_pid_ = -1;
    }
    if (!ns_.empty()) {
      ProcessSpec spec;
      spec.argv = {"ip", "netns", "del", ns_};
      (void)run_process(spec);
    }
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespace, sshd)";
    if (!fs::exists("/usr/sbin/sshd")) GTEST_SKIP() << "openssh-server is not installed";
    ASSERT_GT(sshd_pid_, 0);
  }

  static continuum::util::SshTarget target() {
    continuum::util::SshTarget t;
    t.host = "127.0.0.1";
    t.user = "root";
    t.private_key = dir_ / "client_key";
    t.known_hosts = dir_ / "known_hosts";
    t.netns = ns_;
    return t;
  }

  /// sshd needs a moment to bind: poll with a deadline instead of sleeping.
  static continuum::util::RemotePtr connect_when_up(const continuum::util::SshTarget& t) {
    auto deadline = std::chrono::steady_clock::now() + 20s;
    std::string last;
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = continuum::util::ssh_connect(t, 5s);
      if (r) return std::move(r).value();
      last = r.error().message;
      std::this_thread::sleep_for(50ms);
    }
    ADD_FAILURE() << "sshd never accepted: " << last << "\nsshd log:\n" << slurp(dir_ / "sshd.log");
    return nullptr;
  }

  static inline std::string ns_;
  static inline fs::path dir_;
  static inline pid_t sshd_pid_ = -1;
};

TEST_F(SshdInNetns, ExecCapturesStdoutStderrAndExitCode) {
  auto remote = connect_when_up(target());
  ASSERT_TRUE(remote);
  auto r = remote->exec("echo out; echo err >&2; printf '%s' \"$(id -un)\"; exit 3", 20s);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_FALSE(r->timed_out);
  EXPECT_EQ(r->out, "out\nroot");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_NE(remote->describe().find("root@127.0.0.1:22"), std::string::npos);

  // A second command on the same session, with more output than one SSH window.
  auto big = remote->exec("head -c 300000 /dev/zero | tr '\\0' x", 20s);
  ASSERT_TRUE(big.ok()) << big.error().message;
  EXPECT_EQ(big->exit_code, 0);
  EXPECT_EQ(big->out, std::string(300000, 'x'));
}

TEST_F(SshdInNetns, ExecTimesOut) {
  auto remote = connect_when_up(target());
  ASSERT_TRUE(remote);
  // The timeout covers opening the channel too, which takes seconds on a loaded host: 15 s is
  // ample for "started" to arrive, and far shorter than the sleep.
  auto t0 = std::chrono::steady_clock::now();
  auto r = remote->exec("echo started; sleep 120", 15s);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->exit_code, -1);
  EXPECT_EQ(r->out, "started\n") << "err: " << r->err;
  EXPECT_GE(took, 15s);
  EXPECT_LT(took, 45s);
  // The session is still usable after a timed-out command.
  auto again = remote->exec("echo fine", 60s);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->out, "fine\n");
}

TEST_F(SshdInNetns, ExchangeLinesTakesTurnsOverOneChannel) {
  auto remote = connect_when_up(target());
  ASSERT_TRUE(remote);
  // A counter that answers each line: the answers prove one process served every turn.
  auto turns =
      remote->exchange_lines("n=0; while read -r l; do n=$((n+1)); echo \"turn $n\"; done", 4, 20s);
  ASSERT_TRUE(turns.ok()) << turns.error().message;
  ASSERT_EQ(turns->size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ((*turns)[i].answer, "turn " + std::to_string(i + 1));
    EXPECT_LE((*turns)[i].sent, (*turns)[i].received);
    if (i > 0) {
      EXPECT_LE((*turns)[i - 1].received, (*turns)[i].sent);
    }
  }
  // The guest clock program itself, against this host's clock: within a few ms.
  auto clock = remote->exchange_lines(continuum::infra::clock_echo_command(), 5, 20s);
  ASSERT_TRUE(clock.ok()) << clock.error().message;
  auto e = continuum::infra::offset_from_sample(clock->back().sent, clock->back().answer,
                                                clock->back().received);
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_LT(std::fabs(e->offset_ms), 1.0 + e->rtt_ms) << "same machine, same clock";
  // A command that stops answering is an error naming how far it got, not a hang.
  auto short_lived = remote->exchange_lines("read -r l; echo one", 3, 20s);
  ASSERT_FALSE(short_lived.ok());
  EXPECT_NE(short_lived.error().message.find("ended after 1 of 3 answers"), std::string::npos)
      << short_lived.error().message;
  // The session still works afterwards.
  auto again = remote->exec("echo fine", 20s);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->out, "fine\n");
}

TEST_F(SshdInNetns, UploadIsAtomicAndQuoted) {
  auto remote = connect_when_up(target());
  ASSERT_TRUE(remote);
  // A path with a space and a quote: must arrive as one file, not be split by the remote shell.
  fs::path up = dir_ / "up dir";
  fs::create_directories(up);
  std::string remote_path = (up / "it's a file.txt").string();
  std::string content = "line 1\n$(touch /tmp/continuum-pwned) `x` 'q' \"d\"\n";
  content += std::string(100000, 'z');
  ASSERT_TRUE(remote->upload(content, remote_path, 0640).ok());
  EXPECT_EQ(slurp(remote_path), content);
  EXPECT_EQ(fs::status(remote_path).permissions(),
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  EXPECT_FALSE(fs::exists("/tmp/continuum-pwned"));
  // No temp file left beside it.
  int entries = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(up)) ++entries;
  EXPECT_EQ(entries, 1);
  // Upload into a missing directory fails with a message naming the path.
  auto bad = remote->upload("x", (dir_ / "missing" / "f").string(), 0600);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("missing/f"), std::string::npos);
}

TEST_F(SshdInNetns, WrongPinnedHostKeyIsRejected) {
  ASSERT_TRUE(connect_when_up(target()));  // the server is up: the failures below are about keys
  auto t = target();
  t.known_hosts = dir_ / "wrong_known_hosts";
  auto r = continuum::util::ssh_connect(t, 10s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("host key"), std::string::npos) << r.error().message;
  // Rejecting must not have "learned" the key: the file is unchanged.
  EXPECT_EQ(slurp(t.known_hosts).find(continuum::util::split(slurp(dir_ / "host_key.pub"), ' ')[1]),
            std::string::npos);
}

TEST_F(SshdInNetns, UnknownHostIsRejected) {
  ASSERT_TRUE(connect_when_up(target()));
  auto t = target();
  t.known_hosts = dir_ / "other_host_known_hosts";  // the right key, but pinned for another host
  auto r = continuum::util::ssh_connect(t, 10s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("host key rejected"), std::string::npos) << r.error().message;
  std::string before = slurp(t.known_hosts);
  EXPECT_EQ(before.find("127.0.0.1 "), std::string::npos);  // not appended (no TOFU)

  t.known_hosts = dir_ / "no_such_known_hosts";
  auto r2 = continuum::util::ssh_connect(t, 10s);
  ASSERT_FALSE(r2.ok());
  EXPECT_FALSE(fs::exists(t.known_hosts));
}

TEST_F(SshdInNetns, UnauthorizedClientKeyIsRejected) {
  ASSERT_TRUE(connect_when_up(target()));
  auto t = target();
  t.private_key = dir_ / "stranger_key";
  auto r = continuum::util::ssh_connect(t, 10s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("authentication failed"), std::string::npos)
      << r.error().message;
}

TEST_F(SshdInNetns, NamespaceIsRequiredToReachTheServer) {
  // The same target without the namespace goes to the host's own loopback, where this test's
  // sshd does not listen: either nothing answers or another server with a key we did not pin.
  ASSERT_TRUE(connect_when_up(target()));
  auto t = target();
  t.netns = "";
  auto r = continuum::util::ssh_connect(t, 5s);
  EXPECT_FALSE(r.ok());
  t.netns = "continuum-no-such-namespace";
  auto r2 = continuum::util::ssh_connect(t, 5s);
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.error().message.find("continuum-no-such-namespace"), std::string::npos);
}

TEST_F(SshdInNetns, ReadinessWaitsForAllAndNamesTheSilentVm) {
  ASSERT_TRUE(connect_when_up(target()));
  continuum::infra::ReadyTarget up{"vm-up", target(), "", {}};
  auto silent_ssh = target();
  silent_ssh.port = 2222;  // nothing listens there in the namespace
  fs::path console = dir_ / "silent.console.log";
  std::ofstream(console) << "\x1b[0;32m  OK  \x1b[0m] early line\r\n"
                         << "filler\n"
                         << "initrd: cannot mount /dev/vda\r\n";
  continuum::infra::ReadyTarget silent{"vm-silent", silent_ssh, console, {}};
  continuum::infra::ReadyOptions o;
  o.timeout = std::chrono::seconds(40);  // generous: a login takes seconds on a loaded host
  o.poll_interval = 200ms;
  o.connect_timeout = 10s;
  o.console_tail_lines = 2;
  std::vector<std::string> ready_names;
  std::mutex mu;
  o.on_ready = [&](const std::string& n, double) {
    std::lock_guard<std::mutex> l(mu);
    ready_names.push_back(n);
  };

  auto ok = continuum::infra::wait_ready({up}, o);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  ASSERT_EQ(ok->size(), 1u);
  EXPECT_TRUE((*ok)[0].ready);
  EXPECT_LT((*ok)[0].seconds, 40.0);

  auto t0 = std::chrono::steady_clock::now();
  auto bad = continuum::infra::wait_ready({up, silent}, o);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(bad.ok());
  const std::string& m = bad.error().message;
  EXPECT_NE(m.find("1 of 2 VMs"), std::string::npos) << m;
  EXPECT_NE(m.find("vm-silent"), std::string::npos) << m;
  EXPECT_EQ(m.find("vm-up ("), std::string::npos) << m;  // the ready one is not blamed
  // The console tail: last 2 lines, terminal escapes and CRs removed.
  EXPECT_NE(m.find("initrd: cannot mount /dev/vda"), std::string::npos) << m;
  EXPECT_NE(m.find("filler"), std::string::npos) << m;
  EXPECT_EQ(m.find("early line"), std::string::npos) << m;
  EXPECT_EQ(m.find('\x1b'), std::string::npos) << m;
  EXPECT_EQ(m.find('\r'), std::string::npos) << m;
  // Concurrent: the whole wait is one deadline, not the sum of two.
  EXPECT_LT(took, 75s);
  EXPECT_EQ(std::count(ready_names.begin(), ready_names.end(), "vm-up"), 2);
}

/// The client side of the session that runs the command: "IP PORT" of $SSH_CONNECTION. Two
/// commands on one session give the same, two sessions give two source ports.
std::string client_of(continuum::util::Remote& r) {
  auto res = r.exec("set -- $SSH_CONNECTION; echo \"$1 $2\"", 20s);
  if (!res.ok()) return "error: " + res.error().message;
  return std::string(continuum::util::trim(res->out));
}

/// A session from `pool` and the client side of its connection ("" and a failure if none).
std::pair<continuum::util::RemotePtr, std::string> lease(continuum::util::RemotePool& pool,
                                                         const continuum::util::SshTarget& t) {
  auto r = pool.get(t, 10s);
  if (!r.ok()) {
    ADD_FAILURE() << r.error().message;
    return {nullptr, ""};
  }
  std::string client = client_of(**r);
  EXPECT_EQ(client.rfind("127.0.0.1 ", 0), 0u) << client;
  return {std::move(*r), client};
}

TEST_F(SshdInNetns, PoolReusesASessionAndOpensAnotherForAConcurrentUser) {
  ASSERT_TRUE(connect_when_up(target()));
  continuum::util::RemotePool pool;
  const std::string first = lease(pool, target()).second;  // back in the pool at once
  ASSERT_FALSE(first.empty());
  auto again = pool.get(target(), 10s);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(client_of(**again), first);  // the same TCP connection: no second handshake
  {
    // While `again` is out, a second user of the same guest gets a session of its own.
    auto other = pool.get(target(), 10s);
    ASSERT_TRUE(other.ok()) << other.error().message;
    EXPECT_NE(client_of(**other), first);
  }
  auto s = pool.stats();
  EXPECT_EQ(s.connects, 2);
  EXPECT_EQ(s.reuses, 1);
  EXPECT_EQ(s.dropped, 0);
  // A different target (another known_hosts file) never shares a session.
  auto t2 = target();
  t2.known_hosts = dir_ / "wrong_known_hosts";
  auto refused = pool.get(t2, 10s);
  ASSERT_FALSE(refused.ok());  // its pinned key differs: a new handshake, which fails
}

TEST_F(SshdInNetns, PoolDropsASessionWhoseConnectionBroke) {
  ASSERT_TRUE(connect_when_up(target()));
  continuum::util::RemotePool pool;
  std::string first;
  {
    auto [a, client] = lease(pool, target());
    ASSERT_TRUE(a);
    first = client;
    // End this session's sshd process: the connection is gone under the Remote.
    (void)a->exec("kill -9 $PPID", 10s);
    auto after = a->exec("echo still", 10s);
    EXPECT_FALSE(after.ok());
  }
  EXPECT_EQ(pool.stats().dropped, 1);
  const std::string second = lease(pool, target()).second;
  EXPECT_NE(second, first);
  EXPECT_EQ(pool.stats().connects, 2);
}

// After close() (the software phase may have added the login user to a group, which a session
// opened earlier would not have), no session from before is handed out again: neither an idle
// one nor one that was out during close() and came back after it.
TEST_F(SshdInNetns, PoolHandsOutNoSessionFromBeforeClose) {
  ASSERT_TRUE(connect_when_up(target()));
  continuum::util::RemotePool pool;
  auto [out, out_client] = lease(pool, target());
  ASSERT_TRUE(out);
  const std::string idle_client = lease(pool, target()).second;  // a second one, now idle
  ASSERT_NE(idle_client, out_client);
  pool.close();
  out.reset();  // back after close(): not taken
  const std::string after = lease(pool, target()).second;
  EXPECT_NE(after, out_client);
  EXPECT_NE(after, idle_client);
  EXPECT_EQ(pool.stats().connects, 3);
  EXPECT_EQ(lease(pool, target()).second, after);  // and the new one is reused as usual
}

TEST_F(SshdInNetns, ReadinessLoginIsKeptForTheNextPhase) {
  ASSERT_TRUE(connect_when_up(target()));
  continuum::util::RemotePool pool;
  continuum::infra::ReadyOptions o;
  o.timeout = std::chrono::seconds(40);
  o.pool = &pool;
  auto ok = continuum::infra::wait_ready({{"vm-up", target(), "", {}}}, o);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  auto r = pool.get(target(), 10s);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(client_of(**r), client_of(**r));
  EXPECT_EQ(pool.stats().connects, 0);  // the login's session, not a new one
  EXPECT_EQ(pool.stats().reuses, 1);
}

}  // namespace

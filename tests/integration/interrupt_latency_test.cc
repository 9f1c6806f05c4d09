// Ctrl-C during the clock alignment and the SSH readiness wait, with the real libssh client against
// a guest that accepted the TCP connection but never sends its SSH banner (a stuck or very slow
// guest: a TCG guest on a busy host took over 10 s for its banner). A listener on 127.0.0.1 made by
// the test plays that guest. Without the interrupt the clock phase waits out its 20 s timeout per
// connect and the readiness wait its 30 s per attempt; with it both must return within a second.
// The software, benchmark and network phases: software_ansible_test, benchmark_ssh_test,
// netem_netns_test; the whole binary while a VM boots: tests/e2e/interrupt_test.cc.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "continuum/infra/clock.h"
#include "continuum/infra/readiness.h"
#include "continuum/util/files.h"
#include "continuum/util/interrupt.h"
#include "integration/interrupt_support.h"

using namespace continuum;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

/// A TCP listener on 127.0.0.1 that accepts and then says nothing. accepted() turns true at the
/// first connection, the moment a client is waiting for the banner.
class SilentGuest {
 public:
  SilentGuest() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
          ::listen(fd_, 16) == 0;
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;  // shutdown
        conns_.push_back(c);
        accepted_ = true;
      }
    });
  }
  ~SilentGuest() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
    for (int c : conns_) ::close(c);
  }
  bool ok() const { return ok_; }
  int port() const { return port_; }
  bool accepted() const { return accepted_; }

 private:
  int fd_ = -1;
  bool ok_ = false;
  int port_ = 0;
  std::atomic<bool> accepted_{false};
  std::vector<int> conns_;
  std::thread thread_;
};

struct Fixture {
  fs::path dir;
  Fixture() {
    char t[] = "/tmp/cntm-int-XXXXXX";
    dir = ::mkdtemp(t);
    // Any pinned key: the connect never gets as far as checking it.
    (void)util::write_file_atomic(
        dir / "known_hosts",
        "127.0.0.1 ssh-ed25519 "
        "AAAAC3NzaC1lZDI1NTE5AAAAIHh0aGlzIGlzIG5vdCBhIHJlYWwga2V5IGF0IGFsbC4u\n");
    (void)util::write_file_atomic(dir / "id", "not used\n");
  }
  ~Fixture() { fs::remove_all(dir); }
};

}  // namespace

TEST(InterruptLatency, ClockPhaseReturnsPromptlyWhileAGuestWithholdsItsBanner) {
  using namespace interrupt_test;
  SilentGuest guest;
  ASSERT_TRUE(guest.ok());
  Fixture f;
  infra::Deployment d;
  d.private_key = f.dir / "id";
  d.known_hosts = f.dir / "known_hosts";
  for (int i = 0; i < 2; ++i) {
    infra::DeployedNode n;
    n.id = "cloud" + std::to_string(i);
    n.name = n.id + "_test";
    n.tier = "cloud";
    n.ip = "127.0.0.1";
    n.ssh_user = "nobody";
    n.ssh_port = guest.port();
    d.nodes.push_back(n);
  }
  util::clear_interrupt();
  std::chrono::steady_clock::time_point raised;
  std::thread ctrl_c([&] {
    wait_until([&] { return guest.accepted(); }, 30s);
    raised = std::chrono::steady_clock::now();
    util::request_interrupt();
  });
  auto t0 = std::chrono::steady_clock::now();
  auto results = infra::sync_clocks(d, "", nullptr);  // ClockOptions: 20 s timeout, cancel = Ctrl-C
  auto returned = std::chrono::steady_clock::now();
  ctrl_c.join();
  util::clear_interrupt();
  ASSERT_TRUE(guest.accepted());
  const double ms = ms_between(raised, returned);
  print_measure("clocks", "interrupt_to_return", ms);
  EXPECT_LT(ms, 1000) << "the clock phase would otherwise wait 20 s";
  EXPECT_LT(ms_between(t0, returned), 10000);
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    EXPECT_NE(r.error.find("interrupted"), std::string::npos) << r.node_id << ": " << r.error;
    EXPECT_FALSE(r.stepped);
  }
}

TEST(InterruptLatency, ReadinessWaitEndsPromptlyInTheMiddleOfAConnect) {
  using namespace interrupt_test;
  SilentGuest guest;
  ASSERT_TRUE(guest.ok());
  Fixture f;
  infra::ReadyTarget t;
  t.name = "vm-silent";
  t.ssh.host = "127.0.0.1";
  t.ssh.port = guest.port();
  t.ssh.user = "nobody";
  t.ssh.private_key = f.dir / "id";
  t.ssh.known_hosts = f.dir / "known_hosts";
  // Control: without an interrupt the silent guest really holds an attempt until its timeout.
  {
    infra::ReadyOptions quick;
    quick.timeout = 2s;
    quick.connect_timeout = 1500ms;
    auto t0 = std::chrono::steady_clock::now();
    auto r = infra::wait_ready({t}, quick);
    ASSERT_FALSE(r.ok());
    EXPECT_GE(ms_between(t0, std::chrono::steady_clock::now()), 1400) << r.error().message;
    EXPECT_NE(r.error().message.find("no answer within"), std::string::npos) << r.error().message;
  }
  infra::ReadyOptions o;
  o.timeout = 600s;
  o.connect_timeout = 30s;
  std::atomic<bool> cancel{false};
  o.cancel = &cancel;
  std::chrono::steady_clock::time_point raised;
  std::thread ctrl_c([&] {
    wait_until([&] { return guest.accepted(); }, 30s);
    raised = std::chrono::steady_clock::now();
    cancel = true;
  });
  auto r = infra::wait_ready({t}, o);
  auto returned = std::chrono::steady_clock::now();
  ctrl_c.join();
  ASSERT_TRUE(guest.accepted());
  const double ms = ms_between(raised, returned);
  print_measure("readiness", "interrupt_to_return", ms);
  EXPECT_LT(ms, 1000) << "an attempt would otherwise wait 30 s for the banner";
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().exit_code, continuum::ExitCode::interrupted);
  EXPECT_NE(r.error().message.find("interrupted while waiting for an SSH login to vm-silent"),
            std::string::npos)
      << r.error().message;
}

// guest_internet = nat for real: continuum's managed network XML started by the real libvirtd in
// the test's network namespace (tests/e2e/harness.h), with an "uplink" and a "guest" the test makes
// itself, and no VM (a guest is a namespace whose veth joins the network's bridge, which is what a
// VM's tap does).
//
//   guest netns  192.168.100.2/16 --veth-- [bridge of the libvirt network, 192.168.100.1]
//   test netns (libvirtd, its iptables)  10.231.0.1/24 --veth-- uplink netns 10.231.0.2/24,
//                                                              "remote host" 198.51.100.7/32
//
// The uplink namespace has no route back to 192.168.0.0/16: a guest's ping of 198.51.100.7 is
// answered only if libvirt masqueraded it to 10.231.0.1. With <forward mode='nat'/> it is; the
// isolated network (guest_internet = none) drops it. libvirt's firewall rules are checked to be in
// the test's namespace, and the host's nat table is unchanged. Every address is inside namespaces
// this test made.
#include <gtest/gtest.h>

#include "continuum/infra/hypervisor.h"
#include "continuum/infra/network_xml.h"
#include "e2e/harness.h"

using namespace continuum;
using namespace continuum::e2e;

namespace {

class GuestNat : public LibvirtNetnsTest {
 protected:
  void TearDown() override {
    if (hv_) {
      (void)hv_->destroy_network(net_.name);
      (void)hv_->undefine_network(net_.name);
      hv_.reset();  // close the connection while libvirtd still answers (else SIGPIPE at exit)
    }
    for (const auto& ns : {guest_ns_, up_ns_})
      if (!ns.empty()) run({"ip", "netns", "del", ns});
    LibvirtNetnsTest::TearDown();
  }

  /// `ip ARGS...` that must succeed.
  void ip(std::vector<std::string> args) {
    args.insert(args.begin(), "ip");
    auto r = run(args);
    ASSERT_EQ(r.exit_code, 0) << util::join(args, " ") << ": " << r.err;
  }

  /// Starts the network with `forward` and plugs the guest namespace into its bridge.
  void start_network(const std::string& forward) {
    net_.forward = forward;
    ASSERT_TRUE(hv_->define_network(net_.name, infra::network_xml(net_)).ok());
    auto st = hv_->start_network(net_.name);
    ASSERT_TRUE(st.ok()) << st.error().message;
    // The veth's namespace end went with the bridge's last stop (or was never made).
    run({"ip", "-n", ns_, "link", "del", "cnt-g1"});
    ip({"-n", guest_ns_, "link", "add", "cnt-g0", "type", "veth", "peer", "name", "cnt-g1", "netns",
        ns_});
    ip({"-n", ns_, "link", "set", "cnt-g1", "master", net_.bridge, "up"});
    ip({"-n", guest_ns_, "addr", "add", "192.168.100.2/16", "dev", "cnt-g0"});
    ip({"-n", guest_ns_, "link", "set", "cnt-g0", "up"});
    ip({"-n", guest_ns_, "route", "add", "default", "via", net_.gateway});
  }

  void stop_network() {
    ASSERT_TRUE(hv_->destroy_network(net_.name).ok());
    ASSERT_TRUE(hv_->undefine_network(net_.name).ok());
    run({"ip", "-n", guest_ns_, "link", "del", "cnt-g0"});
  }

  /// The host's nat table without iptables-save's timestamp comments.
  static std::string host_nat_table() {
    std::string out;
    for (const auto& l : util::split(run({"iptables-save", "-t", "nat"}).out, '\n'))
      if (!l.starts_with("#")) out += l + "\n";
    return out;
  }

  bool guest_pings_remote() {
    auto r =
        run({"ip", "netns", "exec", guest_ns_, "ping", "-n", "-c", "2", "-W", "2", "198.51.100.7"},
            30s);
    std::printf("  [ping] exit %d\n%s%s", r.exit_code, r.out.c_str(), r.err.c_str());
    return r.exit_code == 0;
  }

  plan::Network net_;
  std::string guest_ns_, up_ns_;
  infra::HypervisorPtr hv_;
};

TEST_F(GuestNat, NatNetworkMasqueradesGuestsToTheUplinkAndNoneIsolatesThem) {
  guest_ns_ = ns_ + "-g";
  up_ns_ = ns_ + "-u";
  ip({"netns", "add", guest_ns_});
  ip({"netns", "add", up_ns_});
  ip({"-n", guest_ns_, "link", "set", "lo", "up"});
  ip({"-n", up_ns_, "link", "set", "lo", "up"});
  // The uplink: the test netns's default route leads to the "remote host" in up_ns_.
  ip({"-n", ns_, "link", "add", "cnt-u0", "type", "veth", "peer", "name", "cnt-u1", "netns",
      up_ns_});
  ip({"-n", ns_, "addr", "add", "10.231.0.1/24", "dev", "cnt-u0"});
  ip({"-n", ns_, "link", "set", "cnt-u0", "up"});
  ip({"-n", ns_, "route", "add", "default", "via", "10.231.0.2"});
  ip({"-n", up_ns_, "addr", "add", "10.231.0.2/24", "dev", "cnt-u1"});
  ip({"-n", up_ns_, "link", "set", "cnt-u1", "up"});
  ip({"-n", up_ns_, "addr", "add", "198.51.100.7/32", "dev", "lo"});
  ASSERT_NE(run({"ip", "-n", up_ns_, "route", "get", "192.168.100.2"}).exit_code, 0)
      << "the uplink must have no route back to the guests, or the ping proves nothing";

  const std::string host_nat_before = host_nat_table();

  net_.mode = "managed";
  net_.name = "continuum-nat-e2e";
  net_.bridge = "cntm-nate2e";
  net_.prefix = "192.168";
  net_.middle = 100;
  net_.gateway = "192.168.100.1";
  net_.prefix_len = 16;
  auto hv = infra::connect_libvirt("qemu:///system");
  ASSERT_TRUE(hv.ok()) << hv.error().message;
  hv_ = *hv;

  // 1. guest_internet = nat (the default).
  auto t0 = Clock::now();
  ASSERT_NO_FATAL_FAILURE(start_network("nat"));
  timing("nat_network_start", secs(Clock::now() - t0));
  auto rules = run({"ip", "netns", "exec", ns_, "iptables-save", "-t", "nat"});
  ASSERT_EQ(rules.exit_code, 0) << rules.err;
  EXPECT_NE(rules.out.find("-s 192.168.0.0/16 ! -d 192.168.0.0/16 -j MASQUERADE"),
            std::string::npos)
      << "libvirt's NAT rules are not in the test's namespace:\n"
      << rules.out;
  EXPECT_EQ(host_nat_table(), host_nat_before) << "the host's nat table changed";
  EXPECT_TRUE(guest_pings_remote()) << "NAT network: the guest does not reach the uplink";
  ASSERT_NO_FATAL_FAILURE(stop_network());

  // 2. guest_internet = none: the same guest, the same uplink, no way out.
  ASSERT_NO_FATAL_FAILURE(start_network(""));
  EXPECT_FALSE(guest_pings_remote()) << "isolated network: the guest reached the uplink";
  // ... while the host side of the bridge still answers (guests reach the host).
  auto gw = run(
      {"ip", "netns", "exec", guest_ns_, "ping", "-n", "-c", "1", "-W", "2", net_.gateway}, 30s);
  EXPECT_EQ(gw.exit_code, 0) << gw.out << gw.err;
  ASSERT_NO_FATAL_FAILURE(stop_network());
}

}  // namespace

// The managed network's tunnel between hosts: the URI parsing that finds a host's SSH login, the
// device name and VNI, and the commands each end runs (as argv: no value is pasted into a shell
// line; over SSH they are quoted by util::shell_join).
#include "continuum/infra/tunnel.h"

#include <gtest/gtest.h>

#include "continuum/util/strings.h"

namespace continuum::infra {
namespace {

TEST(Tunnel, UriHostFindsTheLoginOfARemoteHypervisor) {
  auto h = uri_host("qemu+ssh://root@192.168.100.250/system?no_tty=1");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->user, "root");
  EXPECT_EQ(h->host, "192.168.100.250");
  EXPECT_EQ(h->port, 22);
  auto p = uri_host("qemu+ssh://node3:2222/system");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->user, "");
  EXPECT_EQ(p->host, "node3");
  EXPECT_EQ(p->port, 2222);
  EXPECT_FALSE(uri_host("qemu:///system"));
  EXPECT_FALSE(uri_host("test:///default"));
}

TEST(Tunnel, DeviceAndVniFollowTheBridgeOnEveryHost) {
  EXPECT_EQ(tunnel_device("cntm-1a2b3c4d"), "cntx-1a2b3c4d");
  EXPECT_LE(tunnel_device("a-very-long-bridge-name").size(), 15u);
  EXPECT_EQ(tunnel_vni("cntm-1a2b3c4d"), tunnel_vni("cntm-1a2b3c4d"));
  EXPECT_NE(tunnel_vni("cntm-1a2b3c4d"), tunnel_vni("cntm-1a2b3c4e"));
  EXPECT_GT(tunnel_vni("cntm-1a2b3c4d"), 0);
  EXPECT_LT(tunnel_vni("cntm-1a2b3c4d"), 1 << 24);
}

TEST(Tunnel, EachEndFloodsToEveryOtherHost) {
  TunnelEnd end{"qemu:///system", "10.0.0.1", {"10.0.0.2", "10.0.0.3"}};
  auto c = tunnel_commands(end, "cntm-1a2b3c4d");
  ASSERT_EQ(c.size(), 5u);
  const std::string vni = std::to_string(tunnel_vni("cntm-1a2b3c4d"));
  EXPECT_EQ(util::join(c[0], " "), "ip link add cntx-1a2b3c4d mtu 1500 type vxlan id " + vni +
                                       " dstport 4789 local 10.0.0.1");
  EXPECT_EQ(util::join(c[1], " "),
            "bridge fdb append 00:00:00:00:00:00 dev cntx-1a2b3c4d dst 10.0.0.2");
  EXPECT_EQ(util::join(c[2], " "),
            "bridge fdb append 00:00:00:00:00:00 dev cntx-1a2b3c4d dst 10.0.0.3");
  EXPECT_EQ(util::join(c[3], " "), "ip link set cntx-1a2b3c4d master cntm-1a2b3c4d");
  EXPECT_EQ(util::join(c[4], " "), "ip link set cntx-1a2b3c4d up");
  EXPECT_EQ(util::join(tunnel_remove_command("cntx-1a2b3c4d"), " "), "ip link del cntx-1a2b3c4d");
}

TEST(Tunnel, RemovingADeviceThatIsGoneIsFine) {
  util::ExecResult gone;
  gone.exit_code = 1;
  gone.err = "Cannot find device \"cntx-1a2b3c4d\"\n";
  EXPECT_TRUE(device_absent(gone));
  util::ExecResult denied;
  denied.exit_code = 2;
  denied.err = "RTNETLINK answers: Operation not permitted\n";
  EXPECT_FALSE(device_absent(denied));
}

TEST(Tunnel, LocalAddressIsTheSourceOfTheRouteToThePeer) {
  auto a = local_address_towards("127.0.0.1");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(*a, "127.0.0.1");
  auto r = resolve_ipv4("127.0.0.1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "127.0.0.1");
}

}  // namespace
}  // namespace continuum::infra

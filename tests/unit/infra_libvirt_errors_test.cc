// libvirt errors that name the fix (infra::explain_libvirt_error): the messages are libvirt 9's
// own, as a new user meets them (no libvirtd, no virtlogd, a socket of root's, the missing
// /var/lib/libvirt/dnsmasq of a host where libvirt never ran a DHCP network); one goes through
// the real libvirt client to a socket that is not there.
#include <gtest/gtest.h>

#include "continuum/infra/hypervisor.h"

namespace continuum::infra {
namespace {

bool has(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(LibvirtErrors, NoLibvirtdSaysHowToStartItWithAndWithoutSystemd) {
  const std::string m =
      "cannot connect to libvirt at qemu:///system: Failed to connect socket to "
      "'/var/run/libvirt/libvirt-sock': No such file or directory";
  std::string e = explain_libvirt_error("qemu:///system", m);
  EXPECT_EQ(e.rfind(m, 0), 0u) << "libvirt's own text comes first";
  EXPECT_TRUE(has(e, "libvirtd is not running:")) << e;
  EXPECT_TRUE(has(e, "`systemctl start libvirtd`")) << e;
  EXPECT_TRUE(has(e, "`virtlogd -d && libvirtd -d`")) << e;
  // A stale socket file: "Connection refused" is the same cause.
  EXPECT_TRUE(has(explain_libvirt_error("qemu:///system",
                                        "Failed to connect socket to "
                                        "'/var/run/libvirt/libvirt-sock': Connection refused"),
                  "libvirtd is not running"));
  // A remote hypervisor: the hint says where.
  EXPECT_TRUE(
      has(explain_libvirt_error("qemu+tcp://node7:16509/system",
                                "Failed to connect socket to 'node7:16509': Connection refused"),
          "libvirtd is not running on node7:16509:"));
}

TEST(LibvirtErrors, NoVirtlogdAtDomainStart) {
  std::string e = explain_libvirt_error(
      "qemu:///system",
      "start domain cloud0_alice on qemu:///system: Failed to connect socket to "
      "'/run/libvirt/virtlogd-sock': No such file or directory");
  EXPECT_TRUE(has(e, "virtlogd is not running")) << e;
  EXPECT_TRUE(has(e, "`systemctl start virtlogd`")) << e;
  EXPECT_TRUE(has(e, "`virtlogd -d`")) << e;
  EXPECT_FALSE(has(e, "libvirtd is not running")) << e;
}

TEST(LibvirtErrors, SocketOfAnotherUserNamesTheGroup) {
  std::string e = explain_libvirt_error(
      "qemu:///system",
      "Failed to connect socket to '/var/run/libvirt/libvirt-sock': Permission denied");
  EXPECT_TRUE(has(e, "libvirt group")) << e;
  EXPECT_FALSE(has(e, "not running")) << e;
}

TEST(LibvirtErrors, MissingDnsmasqDirectoryNamesTheDirectoryAndTheMkdir) {
  // libvirt 9.0 at the first domain start on a managed network, measured on a host without
  // /var/lib/libvirt/dnsmasq.
  std::string e = explain_libvirt_error(
      "qemu:///system",
      "start domain cloud0_alice on qemu:///system: Failed to create file "
      "'/var/lib/libvirt/dnsmasq/cntm-1a2b3c4d.macs.new': No such file or directory");
  EXPECT_TRUE(has(e, "the directory /var/lib/libvirt/dnsmasq is missing")) << e;
  EXPECT_TRUE(has(e, "`mkdir -p /var/lib/libvirt/dnsmasq`")) << e;
}

TEST(LibvirtErrors, RemoteHostWhoseKeyIsNotPinnedSaysHowToPinIt) {
  const std::string uri = "qemu+ssh://root@10.0.0.2/system?no_tty=1";
  const std::string e = explain_libvirt_error(
      uri, "cannot connect to libvirt at " + uri +
               ": Cannot recv data: Host key verification failed.: Connection reset by peer");
  EXPECT_TRUE(has(e, "the SSH host key of root@10.0.0.2 is not pinned")) << e;
  EXPECT_TRUE(has(e, "`ssh-keyscan -t ed25519 10.0.0.2 >> ~/.ssh/known_hosts`")) << e;
  const std::string k = explain_libvirt_error(
      uri, "Cannot recv data: root@10.0.0.2: Permission denied (publickey).: Connection reset");
  EXPECT_TRUE(has(k, "SSH key is not authorised on root@10.0.0.2")) << k;
  // On this machine the same words are not about SSH.
  const std::string local = "Host key verification failed";
  EXPECT_EQ(explain_libvirt_error("qemu:///system", local), local);
}

TEST(LibvirtErrors, OtherErrorsAreUnchanged) {
  const std::string m = "define domain x on qemu:///system: XML error: bad thing";
  EXPECT_EQ(explain_libvirt_error("qemu:///system", m), m);
  // A file libvirt cannot create for another reason is not a missing directory.
  const std::string p =
      "Failed to create file '/var/lib/libvirt/dnsmasq/x.macs.new': Permission denied";
  EXPECT_EQ(explain_libvirt_error("qemu:///system", p), p);
}

TEST(LibvirtErrors, RealConnectionToAMissingSocketCarriesTheHint) {
  auto h = connect_libvirt("qemu:///system?socket=/nonexistent-continuum-test/libvirt-sock");
  ASSERT_FALSE(h.ok());
  EXPECT_TRUE(has(h.error().message,
                  "Failed to connect socket to '/nonexistent-continuum-test/libvirt-sock'"))
      << h.error().message;
  EXPECT_TRUE(has(h.error().message, "libvirtd is not running")) << h.error().message;
}

}  // namespace
}  // namespace continuum::infra

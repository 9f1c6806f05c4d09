#pragma once
// The managed network over several hosts: the libvirt network's bridge on every host (with the
// gateway address on this machine only), joined by a VXLAN device on each host whose flooding
// list names every other host (head-end replication, no multicast on the LAN needed). The
// devices are made with `ip` and `bridge` on each host, over SSH for a remote one, and recorded in
// the ledger (kind link), so destroy, rollback and Ctrl-C remove them on every host.
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "continuum/infra/hypervisor.h"
#include "continuum/util/expected.h"
#include "continuum/util/ssh.h"

namespace continuum::infra {

/// Runs one command (argv, never a shell line built from values) on the host behind a libvirt
/// URI: on this machine for a local URI, over SSH for qemu+ssh:// (as the URI's user, with
/// `sudo -n` unless that is root). An Error only when the command could not be run.
using HostCommand = std::function<Expected<util::ExecResult>(const std::string& uri,
                                                             const std::vector<std::string>& argv)>;

/// The default HostCommand: local commands as processes; remote ones over one SSH session per
/// host (libssh), with this user's key (~/.ssh/id_ed25519, id_ecdsa or id_rsa, from the passwd
/// home as OpenSSH) and the host key checked against ~/.ssh/known_hosts, as libvirt's own ssh
/// transport does: an unpinned host is refused.
HostCommand ssh_host_command(const std::string& netns = "");

/// One host's end of the tunnel.
struct TunnelEnd {
  std::string uri;                 ///< the host's libvirt URI
  std::string underlay;            ///< its address on the hosts' LAN
  std::vector<std::string> peers;  ///< the other hosts' addresses
};

/// The VXLAN device's name and VNI for a managed network's bridge ("cntm-1a2b3c4d" ->
/// "cntx-1a2b3c4d", VNI from the same hash; never 0).
std::string tunnel_device(const std::string& bridge);
int tunnel_vni(const std::string& bridge);

/// The commands that make `end`'s device and attach it to `bridge`: add (MTU 1500: the outer
/// packet is fragmented on the LAN rather than a guest's full-size frame dropped at the bridge),
/// one all-zero flooding entry per peer, master, up.
std::vector<std::vector<std::string>> tunnel_commands(const TunnelEnd& end,
                                                      const std::string& bridge);
/// `ip link del DEVICE`.
std::vector<std::string> tunnel_remove_command(const std::string& device);
/// Whether a failed `ip link del` said the device is not there (removal is idempotent).
bool device_absent(const util::ExecResult& r);

/// The address this machine uses to reach `peer` (`ip -4 route get PEER`'s src).
Expected<std::string> local_address_towards(const std::string& peer);
/// `host` as an IPv4 address (getaddrinfo), the LAN address its tunnel end uses.
Expected<std::string> resolve_ipv4(const std::string& host);

}  // namespace continuum::infra

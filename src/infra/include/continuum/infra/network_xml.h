#pragma once
// libvirt network XML for network_mode = managed: a bridge of continuum's own, with the host side
// at prefix.middle.1/16, no DHCP (guests get static addresses from their seeds) and no DNS (so no
// dnsmasq). With plan.network.forward = "nat" ([infrastructure] guest_internet = nat, the default)
// it has <forward mode='nat'/>: libvirt masquerades the guests' traffic to the host's uplink, as
// the original's libvirt NAT network does. Without it the network is isolated: guests reach each
// other and the host, never the outside. Bridge mode needs no network XML (an existing bridge is
// used).
#include <string>

#include "continuum/plan/plan.h"

namespace continuum::infra {

/// The network XML for a managed network (plan.network.mode == "managed").
std::string network_xml(const plan::Network& net);

/// The same network on another host of a multi-host run: the bridge only (same name), no
/// address and no forwarding, since the gateway and the NAT are on this machine's bridge, which
/// the hosts' VXLAN joins it to (tunnel.h).
std::string network_xml_l2(const plan::Network& net);

}  // namespace continuum::infra

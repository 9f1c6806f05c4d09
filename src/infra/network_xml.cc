#include "continuum/infra/network_xml.h"

#include "xml_writer.h"

namespace continuum::infra {

std::string network_xml(const plan::Network& net) {
  detail::XmlWriter w;
  w.open("network");
  w.leaf("name", net.name);
  // NAT as libvirt's default network does it: masquerading to whatever route the host has, no
  // <nat> port range or dev pinned, so it follows the host's uplink.
  if (!net.forward.empty()) w.empty("forward", {{"mode", net.forward}});
  // STP off and no forward delay: the bridge forwards at once, so a guest's first packets are not
  // lost while the port is "learning".
  w.empty("bridge", {{"name", net.bridge}, {"stp", "off"}, {"delay", "0"}});
  w.empty("dns", {{"enable", "no"}});
  w.empty("ip", {{"address", net.gateway}, {"prefix", std::to_string(net.prefix_len)}});
  w.close();
  return w.str();
}

std::string network_xml_l2(const plan::Network& net) {
  detail::XmlWriter w;
  w.open("network");
  w.leaf("name", net.name);
  w.empty("bridge", {{"name", net.bridge}, {"stp", "off"}, {"delay", "0"}});
  w.empty("dns", {{"enable", "no"}});
  w.close();
  return w.str();
}

}  // namespace continuum::infra

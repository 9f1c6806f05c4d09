#include "continuum/infra/domain_xml.h"

#include <cstdio>

#include "continuum/util/strings.h"
#include "xml_writer.h"

namespace continuum::infra {

std::string mac_address(const plan::Node& node) {
  auto parts = util::split(node.ip, '.');
  int o[3] = {0, 0, 0};
  if (parts.size() == 4) {
    for (int i = 0; i < 3; ++i) {
      try {
        o[i] = std::stoi(parts[static_cast<size_t>(i) + 1]) & 0xff;
      } catch (...) {
        o[i] = 0;
      }
    }
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "52:54:00:%02x:%02x:%02x", o[0], o[1], o[2]);
  return buf;
}

namespace {

using detail::XmlWriter;

/// Memory, vCPUs and their tuning.
void resources(XmlWriter& w, const plan::Node& node, const DomainParams& p) {
  w.leaf("memory", std::to_string(node.memory_mib), {{"unit", "MiB"}});
  // virtiofs maps guest RAM into virtiofsd, so the memory must be shared (memfd) — without it
  // libvirt refuses the <filesystem> device.
  if (!p.shares.empty()) {
    w.open("memoryBacking");
    w.empty("source", {{"type", "memfd"}});
    w.empty("access", {{"mode", "shared"}});
    w.close();
  }
  w.leaf("vcpu", std::to_string(node.cores), {{"placement", "static"}});
  bool quota = node.cputune_quota > 0 && node.cputune_period > 0;
  if (quota || !node.pinned_cpus.empty()) {
    w.open("cputune");
    for (size_t i = 0; i < node.pinned_cpus.size(); ++i)
      w.empty("vcpupin",
              {{"vcpu", std::to_string(i)}, {"cpuset", std::to_string(node.pinned_cpus[i])}});
    if (quota) {
      w.leaf("period", std::to_string(node.cputune_period));
      w.leaf("quota", std::to_string(node.cputune_quota));
    }
    w.close();
  }
}

/// Boot (a kernel given directly, or the disk) and lifecycle.
void boot(XmlWriter& w, const DomainParams& p) {
  w.open("os");
  w.leaf("type", "hvm", {{"arch", "x86_64"}, {"machine", "pc"}});
  if (!p.kernel.empty()) {
    w.leaf("kernel", p.kernel.string());
    if (!p.initrd.empty()) w.leaf("initrd", p.initrd.string());
    if (!p.cmdline.empty()) w.leaf("cmdline", p.cmdline);
  } else {
    w.empty("boot", {{"dev", "hd"}});
  }
  w.close();
  w.open("features");
  w.empty("acpi");
  w.close();
  w.leaf("on_poweroff", "destroy");
  w.leaf("on_reboot", "restart");
  w.leaf("on_crash", "destroy");
}

/// The overlay, the seed and the virtiofs shares.
void storage(XmlWriter& w, const plan::Node& node, const DomainParams& p) {
  // The overlay: VMs are disposable, so host-side write caching is safe ('unsafe' skips flushes;
  // the lab measured it as the fastest under TCG). iotune throttles in QEMU's block layer.
  w.open("disk", {{"type", "file"}, {"device", "disk"}});
  w.empty("driver", {{"name", "qemu"}, {"type", "qcow2"}, {"cache", "unsafe"}});
  w.empty("source", {{"file", p.disk.string()}});
  w.empty("target", {{"dev", "vda"}, {"bus", "virtio"}});
  if (node.read_bytes_sec > 0 || node.write_bytes_sec > 0) {
    w.open("iotune");
    if (node.read_bytes_sec > 0) w.leaf("read_bytes_sec", std::to_string(node.read_bytes_sec));
    if (node.write_bytes_sec > 0) w.leaf("write_bytes_sec", std::to_string(node.write_bytes_sec));
    w.close();
  }
  w.close();

  // The seed is a virtio disk rather than a CD-ROM, so the guest needs no SATA/IDE driver.
  if (!p.seed.empty()) {
    w.open("disk", {{"type", "file"}, {"device", "disk"}});
    w.empty("driver", {{"name", "qemu"}, {"type", "raw"}});
    w.empty("source", {{"file", p.seed.string()}});
    w.empty("target", {{"dev", "vdb"}, {"bus", "virtio"}});
    w.empty("readonly");
    w.close();
  }

  for (size_t i = 0; i < p.shares.size(); ++i) {
    w.open("filesystem", {{"type", "mount"}, {"accessmode", "passthrough"}});
    w.empty("driver", {{"type", "virtiofs"}});
    w.empty("source", {{"dir", p.shares[i].host_dir.string()}});
    w.empty("target", {{"dir", p.shares[i].tag}});
    w.close();
  }
}

/// The NIC, on the managed network or the user's bridge.
void interface(XmlWriter& w, const plan::Node& node, const plan::Network& net,
               const DomainParams& p) {
  std::string mac = p.mac.empty() ? mac_address(node) : p.mac;
  if (net.mode == "bridge") {
    w.open("interface", {{"type", "bridge"}});
    w.empty("mac", {{"address", mac}});
    w.empty("source", {{"bridge", net.bridge}});
  } else {
    w.open("interface", {{"type", "network"}});
    w.empty("mac", {{"address", mac}});
    w.empty("source", {{"network", net.name}});
  }
  w.empty("model", {{"type", "virtio"}});
  w.close();
}

/// Console, entropy, no balloon.
void console_and_misc(XmlWriter& w, const DomainParams& p) {
  // The serial console is the first place to look when a guest is silent: always logged.
  w.open("serial", {{"type", "pty"}});
  if (!p.console_log.empty()) w.empty("log", {{"file", p.console_log.string()}, {"append", "off"}});
  w.empty("target", {{"port", "0"}});
  w.close();
  w.open("console", {{"type", "pty"}});
  w.empty("target", {{"type", "serial"}, {"port", "0"}});
  w.close();
  w.open("rng", {{"model", "virtio"}});
  w.leaf("backend", "/dev/urandom", {{"model", "random"}});
  w.close();
  w.empty("memballoon", {{"model", "none"}});
}

}  // namespace

std::string domain_xml(const plan::Node& node, const plan::Network& net, const DomainParams& p) {
  XmlWriter w;
  w.open("domain", {{"type", domain_type(p.accelerator)}});
  w.leaf("name", node.name);
  w.leaf("title", node.id + " (" + config::tier_name(node.tier) + ")");
  resources(w, node, p);
  boot(w, p);
  w.open("devices");
  storage(w, node, p);
  interface(w, node, net, p);
  console_and_misc(w, p);
  w.close();  // devices
  w.close();  // domain
  return w.str();
}

}  // namespace continuum::infra

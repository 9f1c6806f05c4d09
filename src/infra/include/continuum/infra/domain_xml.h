#pragma once
// libvirt domain XML for one VM, generated from the plan (docs/original.md §4.5, with the
// original's MB/s-vs-bytes/s mistake fixed: Node already carries bytes/s). Pure: same inputs, same
// bytes, so golden tests pin the output without touching libvirt.
#include <filesystem>
#include <string>
#include <vector>

#include "continuum/infra/hypervisor.h"
#include "continuum/plan/plan.h"

namespace continuum::infra {

/// A host directory shared into the guest with virtiofs (mount tag `tag`).
struct Share {
  std::filesystem::path host_dir;
  std::string tag;
};

/// Everything about a domain that is not in the plan: where its files are and how it boots.
struct DomainParams {
  Accelerator accelerator = Accelerator::tcg;
  std::filesystem::path disk;         ///< the VM's qcow2 overlay
  std::filesystem::path seed;         ///< cloud-init NoCloud seed image (raw); "" = none
  std::filesystem::path console_log;  ///< serial console is logged here
  std::filesystem::path kernel;       ///< direct kernel boot when set (offline image)
  std::filesystem::path initrd;
  std::string cmdline;
  std::vector<Share> shares;  ///< virtiofs; needs shared memfd memory (added when set)
  std::string mac;            ///< "" = mac_address(node)
};

/// A stable, locally administered MAC for a node, from its IP: 52:54:00 + the IP's last three
/// octets (unique within a plan's /16). Seeds match the guest NIC by this MAC.
std::string mac_address(const plan::Node& node);

/// The domain XML (libvirt schema; validated by virt-xml-validate in tests).
std::string domain_xml(const plan::Node& node, const plan::Network& net, const DomainParams& p);

}  // namespace continuum::infra

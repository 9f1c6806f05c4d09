#pragma once
// Steps of plan::make, one per file, so each rule of the original (docs/original.md §4.1, §4.2,
// §5.1) can be read and tested on its own.
#include <string>
#include <vector>

#include "continuum/config/config.h"
#include "continuum/plan/plan.h"
#include "continuum/util/expected.h"

namespace continuum::plan::detail {

/// One VM to place: its tier and cores, in placement order (cloud, edge, endpoint).
struct Slot {
  Tier tier = Tier::cloud;
  int cores = 0;
  size_t host = 0;               ///< filled by place()
  std::vector<int> pinned_cpus;  ///< filled by place() with cpu_pin
};

/// The local host and every external_physical_machines entry, with their core counts.
Expected<std::vector<Host>> make_hosts(const config::Config& cfg, const Environment& env);

/// Places the slots on the hosts (docs/original.md §4.1) and fills Host::used_cores.
Status place(bool cpu_pin, std::vector<Slot>& slots, std::vector<Host>& hosts);

/// True when a control-plane VM (cloud_controller) is created (docs/original.md §4.2).
bool wants_controller(const config::Config& cfg);

/// Turns placed slots into named nodes with addresses (docs/original.md §4.2): tier-major order,
/// host order within a tier, addresses prefix.middle.2.. wrapping after .251.
Expected<std::vector<Node>> name_nodes(const config::Config& cfg, const std::string& user,
                                       const std::vector<Slot>& slots,
                                       const std::vector<Host>& hosts);

/// "continuum-<user>" network with a bridge name that fits IFNAMSIZ, or the configured bridge.
Network make_network(const config::Config& cfg, const std::string& user);

/// Tier links and node pair links (docs/original.md §5.1 plus the new keys and [link A B]).
Status make_links(const config::Config& cfg, Plan& p);

/// Playbook folder names in run order.

}  // namespace continuum::plan::detail

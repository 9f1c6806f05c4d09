// VM names, login users and addresses (docs/original.md §4.2), and the libvirt network
// (docs/design.md §5).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

#include "continuum/util/hash.h"
#include "internal.h"

namespace continuum::plan::detail {

bool wants_controller(const config::Config& cfg) {
  // Upstream: mode != endpoint, not infra_only, resource manager != mist (and host 0 carries at
  // least one cloud VM, which name_nodes checks). Without a [benchmark] there is no RM at all.
  if (cfg.infrastructure.infra_only || !cfg.benchmark) return false;
  if (cfg.mode() == Tier::endpoint) return false;
  return cfg.benchmark->resource_manager != config::ResourceManager::mist;
}

namespace {

std::string strip_underscores(const std::string& s) {
  std::string out;
  for (char c : s)
    if (c != '_') out += c;
  return out;
}

const config::TierSpec& spec(const config::Config& cfg, Tier t) {
  switch (t) {
    case Tier::cloud:
      return cfg.infrastructure.cloud;
    case Tier::edge:
      return cfg.infrastructure.edge;
    case Tier::endpoint:
      return cfg.infrastructure.endpoint;
  }
  return cfg.infrastructure.cloud;
}

}  // namespace

Expected<std::vector<Node>> name_nodes(const config::Config& cfg, const std::string& user,
                                       const std::vector<Slot>& slots,
                                       const std::vector<Host>& hosts) {
  if (user.empty()) return make_error("planning needs a user name for the VM names");
  const auto& infra = cfg.infrastructure;
  bool controller = false;
  if (wants_controller(cfg)) {
    for (const Slot& s : slots)
      if (s.tier == Tier::cloud && s.host == 0) controller = true;
    // Upstream then silently deploys no control plane and hangs waiting for its join command;
    // this only happens when cpu_pin leaves no room for a cloud VM on the local host.
    if (!controller)
      return make_error(
          "resource_manager = " + std::string(config::name(cfg.benchmark->resource_manager)) +
              " needs its control plane (cloud_controller) on the local host, but no "
              "cloud VM is placed there: a cloud VM needs " +
              std::to_string(infra.cloud.cores) + " pinned cores and the local host has " +
              std::to_string(hosts[0].physical_cores) +
              " (cpu_pin = True); lower cloud_cores or set cpu_pin = False",
          ExitCode::usage);
  }

  // Upstream iterates hosts and keeps one counter per tier across them, so names and addresses
  // run tier by tier (cloud, edge, endpoint) and, within a tier, host by host.
  std::vector<Node> nodes;
  int middle = infra.middle_ip;
  int post = 2;
  bool controller_done = !controller;
  for (Tier tier : {Tier::cloud, Tier::edge, Tier::endpoint}) {
    int index = 0;
    const config::TierSpec& ts = spec(cfg, tier);
    for (size_t h = 0; h < hosts.size(); ++h) {
      for (const Slot& s : slots) {
        if (s.tier != tier || s.host != h) continue;
        Node n;
        n.tier = tier;
        n.host = h;
        if (!controller_done && tier == Tier::cloud) {
          n.controller = true;
          n.id = "cloud_controller";
          n.index = 0;
          controller_done = true;
        } else {
          n.index = index++;
          n.id = std::string(config::tier_name(tier)) + std::to_string(n.index);
        }
        n.name = n.id + "_" + user;
        n.hostname = strip_underscores(n.name);
        n.ssh_user = n.name;
        n.cores = s.cores;
        n.memory_mib = ts.memory_gb * 1024;
        n.quota = ts.quota;
        n.cputune_period = 100000;
        // Upstream truncates int(100000 * quota); rounding keeps 0.57 at 57000 instead of 56999.
        n.cputune_quota = static_cast<int>(std::lround(100000.0 * ts.quota));
        n.pinned_cpus = s.pinned_cpus;
        // The original documents MB/s but hands the number to libvirt as bytes/s; MB = 10^6 here.
        n.read_bytes_sec = static_cast<uint64_t>(ts.read_speed_mb) * 1000000ULL;
        n.write_bytes_sec = static_cast<uint64_t>(ts.write_speed_mb) * 1000000ULL;
        if (middle > 254)
          return make_error("not enough addresses: " + std::to_string(slots.size()) +
                                " VMs starting at " + infra.prefix_ip + "." +
                                std::to_string(infra.middle_ip) + ".2 run past " + infra.prefix_ip +
                                ".254.251 (250 addresses per middleIP value); lower middleIP",
                            ExitCode::usage);
        n.ip = infra.prefix_ip + "." + std::to_string(middle) + "." + std::to_string(post);
        // .2 to .251 are used, then the next middle value (upstream postfixIP_lower/upper 2/252).
        if (++post == 252) {
          post = 2;
          ++middle;
        }
        nodes.push_back(std::move(n));
      }
    }
  }
  return nodes;
}

Network make_network(const config::Config& cfg, const std::string& user) {
  const auto& infra = cfg.infrastructure;
  Network net;
  net.prefix = infra.prefix_ip;
  net.middle = infra.middle_ip;
  net.prefix_len = 16;
  if (infra.network_mode == "bridge") {
    net.mode = "bridge";
    net.bridge = infra.bridge_name;
    return net;  // the gateway is whatever the host's bridge routes through, found at deploy time
  }
  net.mode = "managed";
  net.name = "continuum-" + user;
  // Interface names are limited to 15 characters (IFNAMSIZ - 1) and user names are not, so the
  // bridge gets a short stable name derived from the network name (FNV-1a, 32 bit).
  char buf[16];
  std::snprintf(buf, sizeof buf, "cntm-%08x", util::fnv1a32(net.name));
  net.bridge = buf;
  net.gateway = infra.prefix_ip + "." + std::to_string(infra.middle_ip) + ".1";
  net.forward = infra.guest_internet == "nat" ? "nat" : "";
  return net;
}

}  // namespace continuum::plan::detail

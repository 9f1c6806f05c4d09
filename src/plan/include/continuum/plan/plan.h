#pragma once
// The Plan: everything a run will create and do, computed purely from a Config and a few facts
// about the hosts (docs/design.md §2). Deterministic: the same inputs give the same plan, byte for
// byte in JSON. `continuum plan` prints it; infra/software/benchmark consume it.
#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "continuum/config/config.h"
#include "continuum/util/expected.h"

namespace continuum::plan {

using config::Tier;

/// A physical machine that runs VMs: index 0 is the local host.
struct Host {
  std::string name;         ///< "local" or the external_physical_machines entry (user@host)
  std::string libvirt_uri;  ///< qemu:///system (or libvirt_uri) locally,
                            ///< qemu+ssh://user@host/system remotely
  int physical_cores = 0;
  int used_cores =
      0;  ///< sum of the cores of the VMs placed here (may exceed physical without cpu_pin)
};

struct Node {
  std::string id;        ///< cloud_controller, cloud0, edge1, endpoint3 (user-independent)
  std::string name;      ///< VM/domain name as upstream: cloud_controller_<user>, cloud0_<user>
  std::string hostname;  ///< name with '_' removed (upstream)
  std::string ssh_user;  ///< login user in the guest = name (upstream)
  Tier tier = Tier::cloud;
  bool controller = false;
  int index = 0;    ///< within its tier (cloud workers from 0; controller 0)
  size_t host = 0;  ///< index into Plan::hosts
  int cores = 0;
  int memory_mib = 0;
  double quota = 1.0;
  int cputune_period = 100000;
  int cputune_quota = 0;         ///< int(100000 * quota)
  std::vector<int> pinned_cpus;  ///< cpu_pin: one host core per vCPU; else empty
  uint64_t read_bytes_sec = 0;   ///< MB/s * 1000000 (the original forgot the conversion)
  uint64_t write_bytes_sec = 0;
  std::string ip;  ///< prefixIP.middle.post
};

/// Emulated link values between two groups (tiers) or two nodes. Latencies are as configured:
/// one way per direction unless Plan::latency_is_rtt (the original applies the delay on egress
/// at both ends, so the round trip is about 2 x avg).
struct Link {
  std::string a, b;  ///< tier_links: tier names ("cloud", "edge", "endpoint");
                     ///< pair_links: node ids, a before b in plan order
  double latency_avg_ms = 0;
  double latency_var_ms = 0;
  double throughput_mbit = 1000;
  double loss_pct = 0;
  bool shaped = true;  ///< false: left alone (endpoint<->endpoint upstream)
};

struct Network {
  std::string mode;  ///< managed | bridge
  std::string name;  ///< libvirt network name (managed): continuum-<user>; "" in bridge mode
  std::string
      bridge;  ///< bridge device: managed cntm-<8 hex> (<= 15 chars, IFNAMSIZ), else bridge_name
  std::string prefix;  ///< prefixIP, e.g. 192.168
  int middle = 100;
  std::string gateway;  ///< host side address of the bridge (managed: prefix.middle.1);
                        ///< "" in bridge mode (found on the host at deploy time, as upstream)
  int prefix_len = 16;
  /// managed only: "nat" (libvirt NAT to the host's uplink, [infrastructure] guest_internet = nat)
  /// or "" (isolated: the guests reach each other and the host only).
  std::string forward;
};

/// One ansible-playbook run of the software phase, decided from the configuration
/// (docs/original.md §6.4 for the original's order).
struct PlaybookStep {
  std::string name;                         ///< unique; also software/<name>.log
  std::string file;                         ///< under the playbooks directory, e.g. base/base.yml
  std::vector<std::string> after;           ///< steps that must succeed before this one starts
  std::map<std::string, std::string> vars;  ///< extra vars the configuration decides
};

struct Plan {
  std::string config_name;  ///< file stem, e.g. bench_cloud
  std::string user;
  std::string mode;  ///< cloud | edge | endpoint (upstream derived mode)
  std::vector<Host> hosts;
  std::vector<Node> nodes;  ///< controller, cloud workers, edges, endpoints (upstream order)
  Network network;
  bool network_emulation = false;
  bool latency_is_rtt = false;  ///< configured latencies are round trips: apply half per end
  bool network_verify = true;   ///< measure the RTT matrix after applying netem
  bool network_strict = false;  ///< a measured link off by > max(2 ms, 20 %) is an error
  bool netperf = false;         ///< the netperf TCP_RR/TCP_STREAM matrix after netem
  int netperf_seconds = 10;
  /// One per tier pair with nodes on both sides (same tier: >= 2 nodes), in the order
  /// cloud-cloud, edge-edge, cloud-edge, cloud-endpoint, edge-endpoint, endpoint-endpoint.
  /// Empty without network_emulation. endpoint-endpoint has shaped = false unless endpoint_* keys
  /// are set (the original never shapes it).
  std::vector<Link> tier_links;
  /// [link A B] overrides expanded to node pairs (a tier name on one side means every node of
  /// that tier), each holding the complete effective values. Sorted by plan order of (a, b).
  std::vector<Link> pair_links;
  /// The software phase: every ansible-playbook run, in an order that satisfies `after`
  /// (independent steps run concurrently). Empty with infra_only.
  std::vector<PlaybookStep> playbooks;
  std::string application;  ///< "" when none
  int repeats = 1;
  std::vector<std::string> workloads;  ///< [workload NAME] names
  /// Node by id (cloud0) or VM name (cloud0_<user>); nullptr when absent.
  const Node* find(const std::string& id_or_name) const;
  /// The tier link between two tiers (either order); nullptr when there is none.
  const Link* tier_link(Tier a, Tier b) const;
  /// Effective link between two nodes (pair override > tier link). nullptr: not shaped.
  const Link* link_between(const Node& a, const Node& b) const;
};

/// Facts about the machines, gathered by the caller (so make() stays pure).
struct Environment {
  std::string user;                 ///< login name of whoever runs continuum (the `_<user>` suffix)
  int local_cores = 0;              ///< physical cores of the local host (> 0)
  std::vector<int> external_cores;  ///< per external_physical_machines entry
};

/// The software phase's playbook steps for a configuration (part of make(); pure). Empty with
/// infra_only or without [benchmark].
std::vector<PlaybookStep> playbook_steps(const config::Config& cfg);

/// Builds the plan. Pure and deterministic. Errors (cpu_pin VMs that do not fit, a [link] naming
/// a node the plan does not have, the address range running out) have exit code 2.
Expected<Plan> make(const config::Config& cfg, const Environment& env);

/// The whole plan as JSON (schema in docs/plan-schema.md) and back.
nlohmann::json to_json(const Plan& p);
Expected<Plan> from_json(const nlohmann::json& j);

/// Human-readable summary: header, hosts, nodes, links, playbooks and benchmark.
std::string summary(const Plan& p);

}  // namespace continuum::plan

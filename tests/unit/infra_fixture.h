#pragma once
// Plans for infrastructure tests, built by hand so these tests do not depend on config parsing:
// bench_cloud as the original names and addresses it (docs/original.md §8.3), an edge config with
// cpu_pin and disk throttling, and N-VM plans for the libvirt test driver.
#include <string>

#include "continuum/plan/plan.h"

namespace continuum::testing {

inline plan::Node make_node(const std::string& id, const std::string& user, config::Tier tier,
                            int index, int cores, int memory_mib, double quota,
                            const std::string& ip) {
  plan::Node n;
  n.id = id;
  n.name = id + "_" + user;
  n.hostname = n.name;
  std::erase(n.hostname, '_');
  n.ssh_user = n.name;
  n.tier = tier;
  n.index = index;
  n.cores = cores;
  n.memory_mib = memory_mib;
  n.quota = quota;
  n.cputune_period = 100000;
  n.cputune_quota = static_cast<int>(100000 * quota);
  n.ip = ip;
  return n;
}

inline plan::Plan base_plan(const std::string& config_name, const std::string& user) {
  plan::Plan p;
  p.config_name = config_name;
  p.user = user;
  p.mode = "cloud";
  p.hosts.push_back(plan::Host{"local", "qemu:///system", 2});
  p.network.mode = "managed";
  p.network.name = "continuum-" + user;
  p.network.bridge = "cntm-1a2b3c4d";
  p.network.prefix = "192.168";
  p.network.middle = 100;
  p.network.gateway = "192.168.100.1";
  p.network.prefix_len = 16;
  p.network.forward = "nat";
  return p;
}

/// configuration/bench_cloud.cfg: controller + 1 cloud worker (4 cores, 4 GB, quota 1.0) and one
/// endpoint (1 core, 1 GB, quota 0.5).
inline plan::Plan bench_cloud_plan(const std::string& user = "alice") {
  using config::Tier;
  plan::Plan p = base_plan("bench_cloud", user);
  auto c = make_node("cloud_controller", user, Tier::cloud, 0, 4, 4096, 1.0, "192.168.100.2");
  c.controller = true;
  p.nodes.push_back(c);
  p.nodes.push_back(make_node("cloud0", user, Tier::cloud, 0, 4, 4096, 1.0, "192.168.100.3"));
  p.nodes.push_back(make_node("endpoint0", user, Tier::endpoint, 0, 1, 1024, 0.5, "192.168.100.4"));
  return p;
}

/// An edge deployment with cpu_pin, disk limits (MB/s converted to bytes/s) and virtiofs.
inline plan::Plan edge_plan(const std::string& user = "alice") {
  using config::Tier;
  plan::Plan p = base_plan("edge_pinned", user);
  p.mode = "edge";
  auto c = make_node("cloud_controller", user, Tier::cloud, 0, 2, 2048, 1.0, "192.168.100.2");
  c.controller = true;
  c.pinned_cpus = {0, 1};
  p.nodes.push_back(c);
  auto e = make_node("edge0", user, Tier::edge, 0, 2, 1024, 0.5, "192.168.100.3");
  e.pinned_cpus = {2, 3};
  e.read_bytes_sec = 100ull * 1000000;
  e.write_bytes_sec = 50ull * 1000000;
  p.nodes.push_back(e);
  auto ep = make_node("endpoint0", user, Tier::endpoint, 0, 1, 512, 0.25, "192.168.100.4");
  ep.pinned_cpus = {4};
  ep.read_bytes_sec = 20ull * 1000000;
  p.nodes.push_back(ep);
  return p;
}

/// n small endpoint VMs (for the test driver and benchmarks); addresses as the original counts.
inline plan::Plan many_plan(int n, const std::string& user, const std::string& uri) {
  using config::Tier;
  plan::Plan p = base_plan("many", user);
  p.mode = "endpoint";
  p.hosts.front().libvirt_uri = uri;
  int middle = 100, post = 2;
  for (int i = 0; i < n; ++i) {
    p.nodes.push_back(make_node("endpoint" + std::to_string(i), user, Tier::endpoint, i, 1, 256,
                                1.0,
                                "192.168." + std::to_string(middle) + "." + std::to_string(post)));
    if (++post == 252) post = 2, ++middle;
  }
  return p;
}

}  // namespace continuum::testing

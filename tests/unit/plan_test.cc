// plan::make on hand-built configurations (the shipped configs are loaded in plan_configs_test).
#include "continuum/plan/plan.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace continuum::plan {
namespace {

using config::Config;

config::TierSpec tier(int nodes, int cores, int memory_gb, double quota) {
  config::TierSpec t;
  t.nodes = nodes;
  t.cores = cores;
  t.memory_gb = memory_gb;
  t.quota = quota;
  return t;
}

config::Benchmark benchmark(const std::string& rm,
                            const std::string& app = "image_classification") {
  config::Benchmark b;
  b.resource_manager = *continuum::config::resource_manager_named(rm);
  b.application = *continuum::config::application_named(app);
  b.frequency = 5;
  return b;
}

/// configuration/bench_cloud.cfg by hand (docs/original.md §8.3).
Config bench_cloud() {
  Config c;
  c.file = "configuration/bench_cloud.cfg";
  c.infrastructure.provider = continuum::config::Provider::qemu;
  c.infrastructure.cloud = tier(2, 4, 4, 1.0);
  c.infrastructure.endpoint = tier(1, 1, 1, 0.5);
  c.infrastructure.network_emulation = true;
  c.infrastructure.wireless_network_preset = "4g";
  c.benchmark = benchmark("kubernetes");
  return c;
}

Config bench_edge() {
  Config c;
  c.file = "configuration/bench_edge.cfg";
  c.infrastructure.provider = continuum::config::Provider::qemu;
  c.infrastructure.cloud = tier(1, 4, 4, 1.0);
  c.infrastructure.edge = tier(1, 2, 2, 0.75);
  c.infrastructure.endpoint = tier(1, 1, 1, 0.5);
  c.infrastructure.network_emulation = true;
  c.benchmark = benchmark("kubeedge");
  return c;
}

Config bench_endpoint() {
  Config c;
  c.file = "configuration/bench_endpoint.cfg";
  c.infrastructure.provider = continuum::config::Provider::qemu;
  c.infrastructure.endpoint = tier(1, 1, 1, 0.5);
  c.infrastructure.network_emulation = true;
  c.benchmark = benchmark("none");
  return c;
}

Environment env(int local = 8, std::vector<int> external = {}) {
  return Environment{"test", local, std::move(external)};
}

Plan must_make(const Config& c, const Environment& e) {
  auto p = make(c, e);
  EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message);
  if (!p.ok()) return Plan{};
  return std::move(p).value();
}

std::vector<std::string> ids(const Plan& p) {
  std::vector<std::string> out;
  for (const Node& n : p.nodes) out.push_back(n.id);
  return out;
}

int count_on(const Plan& p, size_t host, Tier t) {
  int n = 0;
  for (const Node& node : p.nodes) n += node.host == host && node.tier == t;
  return n;
}

// --- names and addresses -------------------------------------------------------------------

TEST(PlanNames, BenchCloudMatchesUpstream) {
  Plan p = must_make(bench_cloud(), env());
  ASSERT_EQ(p.nodes.size(), 3u);
  EXPECT_EQ(p.config_name, "bench_cloud");
  EXPECT_EQ(p.mode, "cloud");
  const Node& ctl = p.nodes[0];
  EXPECT_EQ(ctl.id, "cloud_controller");
  EXPECT_EQ(ctl.name, "cloud_controller_test");
  EXPECT_EQ(ctl.hostname, "cloudcontrollertest");
  EXPECT_EQ(ctl.ssh_user, "cloud_controller_test");
  EXPECT_TRUE(ctl.controller);
  EXPECT_EQ(ctl.ip, "192.168.100.2");
  EXPECT_EQ(p.nodes[1].name, "cloud0_test");
  EXPECT_EQ(p.nodes[1].hostname, "cloud0test");
  EXPECT_FALSE(p.nodes[1].controller);
  EXPECT_EQ(p.nodes[1].ip, "192.168.100.3");
  EXPECT_EQ(p.nodes[2].name, "endpoint0_test");
  EXPECT_EQ(p.nodes[2].tier, Tier::endpoint);
  EXPECT_EQ(p.nodes[2].ip, "192.168.100.4");
  EXPECT_EQ(p.find("cloud0"), &p.nodes[1]);
  EXPECT_EQ(p.find("endpoint0_test"), &p.nodes[2]);
  EXPECT_EQ(p.find("edge0"), nullptr);
}

TEST(PlanNames, BenchEdgeHasControllerThenEdgeThenEndpoint) {
  Plan p = must_make(bench_edge(), env());
  EXPECT_EQ(p.mode, "edge");
  EXPECT_EQ(ids(p), (std::vector<std::string>{"cloud_controller", "edge0", "endpoint0"}));
  EXPECT_EQ(p.nodes[0].ip, "192.168.100.2");
  EXPECT_EQ(p.nodes[1].ip, "192.168.100.3");
  EXPECT_EQ(p.nodes[1].hostname, "edge0test");
  EXPECT_EQ(p.nodes[2].ip, "192.168.100.4");
}

TEST(PlanNames, EndpointModeHasNoController) {
  Plan p = must_make(bench_endpoint(), env());
  EXPECT_EQ(p.mode, "endpoint");
  EXPECT_EQ(ids(p), (std::vector<std::string>{"endpoint0"}));
  EXPECT_EQ(p.nodes[0].ip, "192.168.100.2");
}

Config mist_config(int edges, int endpoints) {
  Config c;
  c.file = "mist.cfg";
  c.infrastructure.provider = continuum::config::Provider::qemu;
  c.infrastructure.edge = tier(edges, 2, 2, 1.0);
  c.infrastructure.endpoint = tier(endpoints, 1, 1, 0.5);
  c.benchmark = benchmark("mist");
  return c;
}

TEST(PlanNames, MistAndInfraOnlyHaveNoController) {
  EXPECT_EQ(ids(must_make(mist_config(2, 2), env())),
            (std::vector<std::string>{"edge0", "edge1", "endpoint0", "endpoint1"}));

  Config infra = bench_cloud();
  infra.infrastructure.infra_only = true;
  infra.benchmark.reset();
  Plan p = must_make(infra, env());
  EXPECT_EQ(ids(p), (std::vector<std::string>{"cloud0", "cloud1", "endpoint0"}));
  EXPECT_TRUE(p.playbooks.empty());
  EXPECT_EQ(p.application, "");
}

TEST(PlanNames, PrefixAndMiddleAreUsed) {
  Config c = bench_cloud();
  c.infrastructure.prefix_ip = "10.20";
  c.infrastructure.middle_ip = 7;
  Plan p = must_make(c, env());
  EXPECT_EQ(p.nodes[0].ip, "10.20.7.2");
  EXPECT_EQ(p.nodes[2].ip, "10.20.7.4");
  EXPECT_EQ(p.network.gateway, "10.20.7.1");
}

Config endpoints_only(int n) {
  Config c;
  c.file = "many.cfg";
  c.infrastructure.provider = continuum::config::Provider::qemu;
  c.infrastructure.endpoint = tier(n, 1, 1, 0.5);
  c.benchmark = benchmark("none");
  return c;
}

TEST(PlanNames, AddressesWrapAfter251ToTheNextMiddleValue) {
  Plan p = must_make(endpoints_only(300), env());
  ASSERT_EQ(p.nodes.size(), 300u);
  EXPECT_EQ(p.nodes[0].ip, "192.168.100.2");
  EXPECT_EQ(p.nodes[249].ip, "192.168.100.251");
  EXPECT_EQ(p.nodes[250].id, "endpoint250");
  EXPECT_EQ(p.nodes[250].ip, "192.168.101.2");
  EXPECT_EQ(p.nodes[299].ip, "192.168.101.51");
  std::set<std::string> unique;
  for (const Node& n : p.nodes) unique.insert(n.ip);
  EXPECT_EQ(unique.size(), 300u);
}

TEST(PlanNames, AddressRangeRunningOutIsAnError) {
  Config c = endpoints_only(251);
  c.infrastructure.middle_ip = 254;
  auto p = make(c, env());
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().exit_code, continuum::ExitCode::usage);
  EXPECT_NE(p.error().message.find("not enough addresses"), std::string::npos) << p.error().message;

  c.infrastructure.endpoint.nodes = 250;  // exactly .254.2 - .254.251
  Plan ok = must_make(c, env());
  EXPECT_EQ(ok.nodes.back().ip, "192.168.254.251");
}

// --- resources -----------------------------------------------------------------------------

TEST(PlanResources, MemoryQuotaAndDiskSpeedsAreConverted) {
  Config c = bench_edge();
  c.infrastructure.edge.read_speed_mb = 100;
  c.infrastructure.edge.write_speed_mb = 50;
  Plan p = must_make(c, env());
  const Node& edge = *p.find("edge0");
  EXPECT_EQ(edge.cores, 2);
  EXPECT_EQ(edge.memory_mib, 2048);
  EXPECT_DOUBLE_EQ(edge.quota, 0.75);
  EXPECT_EQ(edge.cputune_period, 100000);
  EXPECT_EQ(edge.cputune_quota, 75000);
  EXPECT_EQ(edge.read_bytes_sec, 100000000u);  // MB = 10^6 bytes
  EXPECT_EQ(edge.write_bytes_sec, 50000000u);
  EXPECT_TRUE(edge.pinned_cpus.empty());
  const Node& ep = *p.find("endpoint0");
  EXPECT_EQ(ep.cputune_quota, 50000);
  EXPECT_EQ(ep.read_bytes_sec, 0u);  // 0 = unlimited
  EXPECT_EQ(p.find("cloud_controller")->memory_mib, 4096);
}

// --- hosts and placement -------------------------------------------------------------------

/// experiment_large_deployments/cloud.cfg: 11 cloud (4 cores) + 40 endpoints on 3 hosts.
Config large_cloud() {
  Config c;
  c.file = "experiment_large_deployments/cloud.cfg";
  c.infrastructure.provider = continuum::config::Provider::qemu;
  c.infrastructure.cloud = tier(11, 4, 4, 1.0);
  c.infrastructure.endpoint = tier(40, 1, 1, 0.5);
  c.infrastructure.external_physical_machines = {"matthijs@node3", "matthijs@node4"};
  c.infrastructure.network_emulation = true;
  c.benchmark = benchmark("kubernetes");
  return c;
}

TEST(PlanPlacement, FiftyOneVmsOverThreeHostsLeastLoadedFirst) {
  Plan p = must_make(large_cloud(), env(16, {16, 16}));
  ASSERT_EQ(p.nodes.size(), 51u);
  ASSERT_EQ(p.hosts.size(), 3u);
  EXPECT_EQ(p.hosts[0].name, "local");
  EXPECT_EQ(p.hosts[0].libvirt_uri, "qemu:///system");
  EXPECT_EQ(p.hosts[1].libvirt_uri, "qemu+ssh://matthijs@node3/system?no_tty=1");
  EXPECT_EQ(p.hosts[2].libvirt_uri, "qemu+ssh://matthijs@node4/system?no_tty=1");
  // Clouds round-robin (4,4,3), then endpoints fill node4 up to 16 cores, then round-robin.
  EXPECT_EQ(count_on(p, 0, Tier::cloud), 4);
  EXPECT_EQ(count_on(p, 1, Tier::cloud), 4);
  EXPECT_EQ(count_on(p, 2, Tier::cloud), 3);
  EXPECT_EQ(count_on(p, 0, Tier::endpoint), 12);
  EXPECT_EQ(count_on(p, 1, Tier::endpoint), 12);
  EXPECT_EQ(count_on(p, 2, Tier::endpoint), 16);
  EXPECT_EQ(p.hosts[0].used_cores, 28);
  EXPECT_EQ(p.hosts[1].used_cores, 28);
  EXPECT_EQ(p.hosts[2].used_cores, 28);
  // Names are tier by tier, host by host: the controller and cloud0-2 on local, cloud3-6 on
  // node3, cloud7-9 on node4; addresses follow the same order.
  EXPECT_EQ(p.nodes[0].id, "cloud_controller");
  EXPECT_EQ(p.find("cloud2")->host, 0u);
  EXPECT_EQ(p.find("cloud3")->host, 1u);
  EXPECT_EQ(p.find("cloud6")->host, 1u);
  EXPECT_EQ(p.find("cloud7")->host, 2u);
  EXPECT_EQ(p.find("cloud9")->ip, "192.168.100.12");
  EXPECT_EQ(p.find("endpoint0")->ip, "192.168.100.13");
  EXPECT_EQ(p.find("endpoint0")->host, 0u);
  EXPECT_EQ(p.find("endpoint11")->host, 0u);
  EXPECT_EQ(p.find("endpoint12")->host, 1u);
  EXPECT_EQ(p.find("endpoint24")->host, 2u);
  EXPECT_EQ(p.find("endpoint39")->ip, "192.168.100.52");
}

TEST(PlanPlacement, RatioDecidesAndFirstHostWinsTies) {
  Config c = endpoints_only(3);
  c.infrastructure.external_physical_machines = {"u@big"};
  // Host 0 has 2 cores, host 1 has 4. used/physical: 0/2 = 0/4 -> local (tie); 1/2 > 0/4 -> big;
  // 1/2 > 1/4 -> big. (Counting VMs instead of the ratio would give 2:1.)
  Plan p = must_make(c, env(2, {4}));
  EXPECT_EQ(p.hosts[0].used_cores, 1);
  EXPECT_EQ(p.hosts[1].used_cores, 2);
  // A fourth VM meets a tie, 1/2 = 2/4, which the first host wins (the last host would make 1:3).
  c.infrastructure.endpoint.nodes = 4;
  Plan q = must_make(c, env(2, {4}));
  EXPECT_EQ(q.hosts[0].used_cores, 2);
  EXPECT_EQ(q.hosts[1].used_cores, 2);
  // Names run host by host within a tier: endpoint0-1 local, endpoint2-3 on big.
  std::vector<size_t> hosts;
  for (const Node& n : q.nodes) hosts.push_back(n.host);
  EXPECT_EQ(hosts, (std::vector<size_t>{0, 0, 1, 1}));
}

TEST(PlanPlacement, OversubscriptionIsAllowedWithoutCpuPin) {
  Plan p = must_make(large_cloud(), env(2, {2, 2}));
  EXPECT_EQ(p.nodes.size(), 51u);
  EXPECT_EQ(p.hosts[0].used_cores + p.hosts[1].used_cores + p.hosts[2].used_cores, 11 * 4 + 40);
}

TEST(PlanPlacement, CpuPinFillsHostsGreedilyWithPinnedCores) {
  Config c = bench_cloud();
  c.infrastructure.cpu_pin = true;
  c.infrastructure.endpoint.nodes = 3;
  c.infrastructure.endpoint.cores = 2;
  c.infrastructure.external_physical_machines = {"u@h1"};
  Plan p = must_make(c, env(8, {8}));
  EXPECT_EQ(p.find("cloud_controller")->host, 0u);
  EXPECT_EQ(p.find("cloud_controller")->pinned_cpus, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(p.find("cloud0")->pinned_cpus, (std::vector<int>{4, 5, 6, 7}));
  EXPECT_EQ(p.find("endpoint0")->host, 1u);
  EXPECT_EQ(p.find("endpoint0")->pinned_cpus, (std::vector<int>{0, 1}));  // counter per host
  EXPECT_EQ(p.find("endpoint2")->pinned_cpus, (std::vector<int>{4, 5}));
  EXPECT_EQ(p.hosts[1].used_cores, 6);
}

TEST(PlanPlacement, CpuPinNeverRevisitsAHost) {
  Config c = bench_cloud();
  c.infrastructure.cpu_pin = true;
  c.infrastructure.endpoint.nodes = 2;
  c.infrastructure.external_physical_machines = {"u@h1"};
  Plan p = must_make(c, env(6, {8}));
  EXPECT_EQ(p.find("cloud_controller")->host, 0u);
  EXPECT_EQ(p.find("cloud0")->host, 1u);  // 4 + 4 > 6
  EXPECT_EQ(p.find("cloud0")->pinned_cpus, (std::vector<int>{0, 1, 2, 3}));
  // Two local cores are still free, but the greedy scheduler has moved on.
  EXPECT_EQ(p.find("endpoint0")->host, 1u);
  EXPECT_EQ(p.find("endpoint0")->pinned_cpus, (std::vector<int>{4}));
  EXPECT_EQ(p.find("endpoint1")->pinned_cpus, (std::vector<int>{5}));
}

TEST(PlanPlacement, CpuPinOverflowNamesWhatIsMissing) {
  Config c = bench_cloud();
  c.infrastructure.cpu_pin = true;
  c.infrastructure.endpoint.nodes = 2;
  c.infrastructure.external_physical_machines = {"u@h1"};
  auto p = make(c, env(4, {4}));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().exit_code, continuum::ExitCode::usage);
  const std::string& m = p.error().message;
  EXPECT_NE(m.find("2 of 4 VMs are left"), std::string::npos) << m;
  EXPECT_NE(m.find("2 endpoint VMs of 1 core"), std::string::npos) << m;
  EXPECT_NE(m.find("need 2 more physical cores (10 in all, 8 available)"), std::string::npos) << m;
  EXPECT_NE(m.find("local 4 of 4 cores pinned"), std::string::npos) << m;
  EXPECT_NE(m.find("u@h1 4 of 4 cores pinned"), std::string::npos) << m;
}

TEST(PlanPlacement, CpuPinWithoutRoomForTheControllerLocallyIsAnError) {
  Config c = bench_cloud();
  c.infrastructure.cpu_pin = true;
  c.infrastructure.external_physical_machines = {"u@h1"};
  auto p = make(c, env(2, {16}));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().exit_code, continuum::ExitCode::usage);
  EXPECT_NE(p.error().message.find("cloud_controller"), std::string::npos) << p.error().message;
}

TEST(PlanPlacement, HostFactsAreChecked) {
  Config c = large_cloud();
  EXPECT_FALSE(make(c, env(8, {8})).ok());  // one count for two machines
  EXPECT_FALSE(make(c, env(0, {8, 8})).ok());
  Config gcp = bench_cloud();
  gcp.infrastructure.provider = continuum::config::Provider::gcp;
  auto p = make(gcp, env());
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().exit_code, continuum::ExitCode::usage);
}

TEST(PlanPlacement, LocalLibvirtUriComesFromTheConfig) {
  Config c = bench_cloud();
  c.infrastructure.libvirt_uri = "test:///default";
  EXPECT_EQ(must_make(c, env()).hosts[0].libvirt_uri, "test:///default");
}

// --- network -------------------------------------------------------------------------------

TEST(PlanNetwork, ManagedNetworkHasShortBridgeName) {
  Plan p = must_make(bench_cloud(), Environment{"a_rather_long_user_name", 8, {}});
  EXPECT_EQ(p.network.mode, "managed");
  EXPECT_EQ(p.network.name, "continuum-a_rather_long_user_name");
  EXPECT_LE(p.network.bridge.size(), 15u);
  EXPECT_EQ(p.network.bridge.rfind("cntm-", 0), 0u);
  EXPECT_EQ(p.network.gateway, "192.168.100.1");
  EXPECT_EQ(p.network.prefix_len, 16);
  Plan other = must_make(bench_cloud(), Environment{"someone_else", 8, {}});
  EXPECT_NE(other.network.bridge, p.network.bridge);
}

TEST(PlanNetwork, GuestInternetNatIsTheDefaultAndNoneIsolates) {
  EXPECT_EQ(must_make(bench_cloud(), env()).network.forward, "nat");
  Config c = bench_cloud();
  c.infrastructure.guest_internet = "none";
  Plan p = must_make(c, env());
  EXPECT_EQ(p.network.forward, "");
  // The plan's JSON carries it both ways.
  auto back = from_json(to_json(must_make(bench_cloud(), env())));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->network.forward, "nat");
}

TEST(PlanNetwork, BridgeModeUsesTheConfiguredBridge) {
  Config c = bench_cloud();
  c.infrastructure.network_mode = "bridge";
  c.infrastructure.bridge_name = "br0";
  Plan p = must_make(c, env());
  EXPECT_EQ(p.network.mode, "bridge");
  EXPECT_EQ(p.network.bridge, "br0");
  EXPECT_EQ(p.network.name, "");
}

// --- links ---------------------------------------------------------------------------------

void expect_link(const Link* l, double avg, double var, double mbit, double loss = 0) {
  ASSERT_NE(l, nullptr);
  EXPECT_TRUE(l->shaped);
  EXPECT_DOUBLE_EQ(l->latency_avg_ms, avg);
  EXPECT_DOUBLE_EQ(l->latency_var_ms, var);
  EXPECT_DOUBLE_EQ(l->throughput_mbit, mbit);
  EXPECT_DOUBLE_EQ(l->loss_pct, loss);
}

TEST(PlanLinks, FourGPresetAndTierDefaults) {
  Plan p = must_make(bench_cloud(), env());
  ASSERT_EQ(p.tier_links.size(), 2u);  // cloud-cloud, cloud-endpoint (one endpoint: no ep-ep)
  expect_link(p.tier_link(Tier::cloud, Tier::cloud), 0, 0, 1000);
  expect_link(p.tier_link(Tier::endpoint, Tier::cloud), 45, 5, 7.21);
  expect_link(p.link_between(*p.find("cloud0"), *p.find("endpoint0")), 45, 5, 7.21);
  expect_link(p.link_between(*p.find("cloud0"), *p.find("cloud_controller")), 0, 0, 1000);
  EXPECT_EQ(p.link_between(*p.find("cloud0"), *p.find("cloud0")), nullptr);

  Plan e = must_make(bench_edge(), env());
  expect_link(e.tier_link(Tier::cloud, Tier::edge), 7.5, 2.5, 1000);
  expect_link(e.tier_link(Tier::edge, Tier::endpoint), 7.5, 2.5, 7.21);
  expect_link(e.tier_link(Tier::cloud, Tier::endpoint), 45, 5, 7.21);
  EXPECT_EQ(e.tier_link(Tier::edge, Tier::edge), nullptr);  // one edge
}

TEST(PlanLinks, FiveGPreset) {
  Config c = bench_edge();
  c.infrastructure.edge.nodes = 2;
  c.infrastructure.wireless_network_preset = "5g";
  Plan p = must_make(c, env());
  expect_link(p.tier_link(Tier::cloud, Tier::endpoint), 45, 5, 29.66);
  expect_link(p.tier_link(Tier::edge, Tier::endpoint), 7.5, 2.5, 29.66);
  expect_link(p.tier_link(Tier::edge, Tier::edge), 7.5, 2.5, 1000);
  expect_link(p.tier_link(Tier::cloud, Tier::edge), 7.5, 2.5, 1000);
}

TEST(PlanLinks, OverridesReplaceSingleComponents) {
  Config c = bench_edge();
  c.infrastructure.edge_endpoint_link.latency_avg = 12.5;  // tests/qemu/04_infraonly-all.cfg
  c.infrastructure.cloud_edge_link.throughput = 900;
  c.infrastructure.cloud_endpoint_link.latency_var = 0;  // 0 is a value, not "unset"
  c.infrastructure.cloud_endpoint_link.loss = 1.5;
  Plan p = must_make(c, env());
  expect_link(p.tier_link(Tier::edge, Tier::endpoint), 12.5, 2.5, 7.21);
  expect_link(p.tier_link(Tier::cloud, Tier::edge), 7.5, 2.5, 900);
  expect_link(p.tier_link(Tier::cloud, Tier::endpoint), 45, 0, 7.21, 1.5);
}

TEST(PlanLinks, EndpointToEndpointIsUnshapedUnlessConfigured) {
  Config c = bench_cloud();
  c.infrastructure.endpoint.nodes = 2;
  Plan p = must_make(c, env());
  const Link* ee = p.tier_link(Tier::endpoint, Tier::endpoint);
  ASSERT_NE(ee, nullptr);
  EXPECT_FALSE(ee->shaped);
  EXPECT_EQ(p.link_between(*p.find("endpoint0"), *p.find("endpoint1")), nullptr);

  c.infrastructure.endpoint_link.latency_avg = 3;
  Plan q = must_make(c, env());
  expect_link(q.link_between(*q.find("endpoint0"), *q.find("endpoint1")), 3, 0, 1000);
}

TEST(PlanLinks, LatencyIsRttIsRecorded) {
  Config c = bench_cloud();
  c.infrastructure.latency_is_rtt = true;
  EXPECT_TRUE(must_make(c, env()).latency_is_rtt);
  EXPECT_FALSE(must_make(bench_cloud(), env()).latency_is_rtt);
}

config::PairOverride pair(std::string a, std::string b, int line) {
  config::PairOverride o;
  o.a = std::move(a);
  o.b = std::move(b);
  o.where = {"links.cfg", line};
  return o;
}

TEST(PlanLinks, PairOverridesBeatTierLinks) {
  Config c = bench_cloud();
  c.infrastructure.endpoint.nodes = 3;
  auto node_node = pair("cloud0", "endpoint0", 30);
  node_node.values.latency_avg = 100;
  auto node_tier = pair("endpoint1", "cloud", 20);  // every cloud node with endpoint1
  node_tier.values.throughput = 2;
  node_tier.values.loss = 5;
  auto node_node_2 = pair("endpoint1_test", "cloud0", 40);  // VM names work too
  node_node_2.values.throughput = 3;
  c.infrastructure.pair_overrides = {node_node, node_tier, node_node_2};
  Plan p = must_make(c, env());

  auto between = [&](const char* a, const char* b) {
    return p.link_between(*p.find(a), *p.find(b));
  };
  expect_link(between("endpoint0", "cloud0"), 100, 5, 7.21);
  expect_link(between("cloud_controller", "endpoint0"), 45, 5, 7.21);  // tier link
  expect_link(between("cloud_controller", "endpoint1"), 45, 5, 2, 5);
  expect_link(between("cloud0", "endpoint1"), 45, 5, 3, 5);  // node-node wins the component
  expect_link(between("cloud0", "endpoint2"), 45, 5, 7.21);
  ASSERT_EQ(p.pair_links.size(), 3u);
  EXPECT_EQ(p.pair_links[0].a, "cloud_controller");
  EXPECT_EQ(p.pair_links[0].b, "endpoint1");

  // A pair override shapes endpoint<->endpoint even though the tier link is not shaped.
  auto ee = pair("endpoint0", "endpoint2", 50);
  ee.values.latency_avg = 4;
  c.infrastructure.pair_overrides = {ee};
  Plan q = must_make(c, env());
  expect_link(q.link_between(*q.find("endpoint2"), *q.find("endpoint0")), 4, 0, 1000);
  EXPECT_EQ(q.link_between(*q.find("endpoint1"), *q.find("endpoint0")), nullptr);
}

TEST(PlanLinks, TierPairSectionActsLikeTheOverrideKeys) {
  Config c = bench_cloud();
  auto o = pair("endpoint", "cloud", 10);
  o.values.latency_avg = 20;
  c.infrastructure.pair_overrides = {o};
  Plan p = must_make(c, env());
  expect_link(p.tier_link(Tier::cloud, Tier::endpoint), 20, 5, 7.21);
  EXPECT_TRUE(p.pair_links.empty());
}

TEST(PlanLinks, UnknownNodeInLinkSectionIsAnErrorWithItsLocation) {
  Config c = bench_cloud();
  c.infrastructure.pair_overrides = {pair("cloud0", "endpont0", 17)};
  auto p = make(c, env());
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().exit_code, continuum::ExitCode::usage);
  const std::string& m = p.error().message;
  EXPECT_NE(m.find("links.cfg:17: [link cloud0 endpont0]: no node 'endpont0'"), std::string::npos)
      << m;
  EXPECT_NE(m.find("did you mean 'endpoint0'"), std::string::npos) << m;

  c.infrastructure.pair_overrides = {pair("edge", "cloud0", 18)};
  auto q = make(c, env());
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.error().message.find("tier 'edge' has no nodes"), std::string::npos)
      << q.error().message;

  c.infrastructure.pair_overrides = {pair("cloud0", "cloud0", 19)};
  EXPECT_FALSE(make(c, env()).ok());

  // Still checked when emulation is off (the section would silently do nothing otherwise).
  c.infrastructure.network_emulation = false;
  c.infrastructure.pair_overrides = {pair("cloud9", "endpoint0", 20)};
  EXPECT_FALSE(make(c, env()).ok());
}

TEST(PlanLinks, NoEmulationMeansNoLinks) {
  Config c = bench_cloud();
  c.infrastructure.network_emulation = false;
  c.infrastructure.pair_overrides = {pair("cloud0", "endpoint0", 3)};
  Plan p = must_make(c, env());
  EXPECT_TRUE(p.tier_links.empty());
  EXPECT_TRUE(p.pair_links.empty());
  EXPECT_EQ(p.link_between(p.nodes[0], p.nodes[2]), nullptr);
}

// --- playbooks and benchmark ---------------------------------------------------------------

std::vector<std::string> step_names(const Plan& p) {
  std::vector<std::string> n;
  for (const auto& st : p.playbooks) n.push_back(st.name);
  return n;
}

const PlaybookStep* step(const Plan& p, const std::string& name) {
  for (const auto& st : p.playbooks)
    if (st.name == name) return &st;
  return nullptr;
}

TEST(PlanPlaybooks, RunOrderFollowsTheConfiguration) {
  using V = std::vector<std::string>;
  // The steps the software phase runs, as `continuum plan` shows them: one list, decided here.
  EXPECT_EQ(step_names(must_make(bench_cloud(), env())),
            (V{"base", "mosquitto", "container_runtime", "kubernetes_install", "kubernetes_control",
               "kubernetes_workers", "application"}));
  EXPECT_EQ(step_names(must_make(bench_edge(), env())),
            (V{"base", "mosquitto", "container_runtime", "kubeedge_install", "kubeedge_control",
               "kubeedge_edges", "kubeedge_control_log", "kubeedge_edge_log", "application"}));
  EXPECT_EQ(step_names(must_make(bench_endpoint(), env())),
            (V{"base", "mosquitto", "application"}));
  // mist: the programs come in container images; Docker is set up and pulls them instead.
  Plan mp = must_make(mist_config(1, 1), env());
  EXPECT_EQ(step_names(mp), (V{"base", "mosquitto", "mist", "docker"}));
  EXPECT_EQ(step(mp, "docker")->file, "docker/docker.yml");
  EXPECT_EQ(step(mp, "docker")->after, V{"base"});
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(CONTINUUM_SOURCE_DIR) /
                                      "playbooks/docker/docker.yml"));

  Config openfaas = bench_cloud();
  openfaas.benchmark->observability = true;
  openfaas.execution_model = config::ExecutionModel{"openfaas"};
  openfaas.energy.enabled = true;
  openfaas.energy.exporter = continuum::config::Exporter::guest;
  Plan of = must_make(openfaas, env());
  EXPECT_EQ(step_names(of),
            (V{"base", "mosquitto", "container_runtime", "kubernetes_install", "kubernetes_control",
               "kubernetes_workers", "observability", "openfaas", "scaphandre", "application"}));
  EXPECT_EQ(step(of, "observability")->after, V{"kubernetes_workers"});
  EXPECT_EQ(step(of, "openfaas")->after, V{"observability"});
  EXPECT_EQ(step(of, "application")->after, V{"mosquitto"});
  EXPECT_EQ(step(of, "scaphandre")->vars.at("scaphandre_port"),
            std::to_string(openfaas.energy.guest_port));
  EXPECT_EQ(step(of, "kubernetes_control")->file, "kubernetes/control.yml");
  // Every step's playbook is shipped.
  for (const auto& st : of.playbooks)
    EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(CONTINUUM_SOURCE_DIR) / "playbooks" /
                                        st.file))
        << st.file;

  Config rm_only = bench_cloud();
  rm_only.benchmark->resource_manager_only = true;
  rm_only.benchmark->application = config::Application::none;
  Plan p = must_make(rm_only, env());
  EXPECT_EQ(step_names(p), (V{"base", "mosquitto", "container_runtime", "kubernetes_install",
                              "kubernetes_control", "kubernetes_workers"}));
  EXPECT_EQ(p.application, "");
}

TEST(PlanBenchmark, ApplicationRepeatsAndWorkloads) {
  Config c = bench_cloud();
  c.benchmark->repeat = 5;
  config::SshWorkload w;
  w.name = "queries";
  c.workloads.push_back(w);
  w.name = "warm";
  c.workloads.push_back(w);
  Plan p = must_make(c, env());
  EXPECT_EQ(p.application, "image_classification");
  EXPECT_EQ(p.repeats, 5);
  EXPECT_EQ(p.workloads, (std::vector<std::string>{"queries", "warm"}));
}

// --- JSON and summary ----------------------------------------------------------------------

Config everything() {
  Config c = large_cloud();
  c.infrastructure.cpu_pin = true;
  c.infrastructure.endpoint.read_speed_mb = 20;
  c.infrastructure.endpoint_link.loss = 0.5;
  c.infrastructure.latency_is_rtt = true;
  auto o = pair("cloud1", "endpoint", 4);
  o.values.latency_avg = 33.3;
  c.infrastructure.pair_overrides = {o};
  c.benchmark->repeat = 3;
  config::SshWorkload w;
  w.name = "q1";
  c.workloads.push_back(w);
  return c;
}

TEST(PlanJson, RoundTripsExactly) {
  for (const Config& c : {bench_cloud(), bench_edge(), bench_endpoint(), everything()}) {
    Plan p = must_make(
        c, env(32, std::vector<int>(c.infrastructure.external_physical_machines.size(), 32)));
    nlohmann::json j = to_json(p);
    auto back = from_json(nlohmann::json::parse(j.dump()));
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(to_json(*back), j) << c.file;
    EXPECT_EQ(to_json(*back).dump(2), j.dump(2));
  }
}

TEST(PlanJson, FieldsAreAsDocumented) {
  Plan p = must_make(everything(), env(32, {32, 32}));
  nlohmann::json j = to_json(p);
  EXPECT_EQ(j["schema_version"], 1);
  EXPECT_EQ(j["nodes"][0]["name"], "cloud_controller_test");
  EXPECT_EQ(j["nodes"][0]["tier"], "cloud");
  EXPECT_EQ(j["nodes"][0]["pinned_cpus"], nlohmann::json({0, 1, 2, 3}));
  EXPECT_EQ(j["nodes"][50]["read_bytes_sec"], 20000000);
  EXPECT_EQ(j["hosts"][1]["libvirt_uri"], "qemu+ssh://matthijs@node3/system?no_tty=1");
  EXPECT_EQ(j["latency_is_rtt"], true);
  EXPECT_EQ(j["pair_links"].size(), 40u);
  EXPECT_DOUBLE_EQ(j["pair_links"][0]["latency_avg_ms"].get<double>(), 33.3);
}

TEST(PlanJson, IsDeterministic) {
  EXPECT_EQ(to_json(must_make(everything(), env(32, {32, 32}))).dump(),
            to_json(must_make(everything(), env(32, {32, 32}))).dump());
}

TEST(PlanJson, BadInputNamesTheField) {
  nlohmann::json j = to_json(must_make(bench_cloud(), env()));
  auto broken = j;
  broken["nodes"][1].erase("ip");
  auto r = from_json(broken);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("nodes[1].ip: missing"), std::string::npos) << r.error().message;

  broken = j;
  broken["nodes"][0]["cores"] = "four";
  r = from_json(broken);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("nodes[0].cores: expected an integer"), std::string::npos);

  broken = j;
  broken["nodes"][0]["tier"] = "fog";
  EXPECT_FALSE(from_json(broken).ok());
  broken = j;
  broken["nodes"][0]["host"] = 7;
  EXPECT_FALSE(from_json(broken).ok());
  broken = j;
  broken["schema_version"] = 99;
  EXPECT_FALSE(from_json(broken).ok());
  EXPECT_FALSE(from_json(nlohmann::json::array()).ok());
}

TEST(PlanSummary, ShowsNodesLinksPlaybooksAndBenchmark) {
  std::string s = summary(must_make(bench_cloud(), env()));
  EXPECT_NE(s.find("Plan for bench_cloud: 3 VMs on 1 host"), std::string::npos) << s;
  EXPECT_NE(
      s.find("cloud_controller_test  cloud     local  4      4096 MiB  1      192.168.100.2  -"),
      std::string::npos)
      << s;
  EXPECT_NE(s.find("cloud  endpoint  45 ms        5 ms  7.21 Mbit/s  0 %"), std::string::npos) << s;
  EXPECT_NE(s.find("Playbooks:\n  base (base/base.yml)\n  mosquitto (mosquitto/mosquitto.yml), "
                   "after base\n"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("application  image_classification"), std::string::npos) << s;

  std::string pinned = summary(must_make(everything(), env(32, {32, 32})));
  EXPECT_NE(pinned.find("0-3"), std::string::npos);
  EXPECT_NE(pinned.find("20/- MB/s"), std::string::npos) << pinned;
  EXPECT_NE(pinned.find("latency is the round trip"), std::string::npos);
}

}  // namespace
}  // namespace continuum::plan

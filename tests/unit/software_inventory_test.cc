// Inventory, ansible.cfg and playbook selection of the software phase (docs/software.md).
// Plans are built by hand here with the original's naming and addressing (upstream-spec §4.2),
// so these tests pin the software module's output, not the planner's.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <set>

#include "continuum/plan/plan.h"
#include "continuum/software/inventory.h"
#include "continuum/software/software.h"
#include "continuum/util/files.h"

namespace continuum::software {
namespace {

const std::filesystem::path kGolden =
    std::filesystem::path(CONTINUUM_SOURCE_DIR) / "tests/data/golden/inventory";

config::Config make_config(int cloud, int edge, int endpoint, const std::string& rm) {
  config::Config c;
  c.infrastructure.provider = "qemu";
  c.infrastructure.cloud.nodes = cloud;
  c.infrastructure.edge.nodes = edge;
  c.infrastructure.endpoint.nodes = endpoint;
  config::Benchmark b;
  b.resource_manager = rm;
  b.application = "image_classification";
  b.frequency = 5;
  c.benchmark = b;
  return c;
}

struct Layout {
  plan::Plan plan;
  infra::Deployment dep;
};

// Nodes as the original names and numbers them: controller (when there is a resource manager
// other than mist/none and cloud nodes), cloud workers, edges, endpoints; addresses from .2.
Layout make_layout(const config::Config& c, const std::string& user = "alice") {
  Layout l;
  plan::Plan& p = l.plan;
  p.user = user;
  p.mode = c.infrastructure.edge.nodes > 0 ? "edge" : c.infrastructure.cloud.nodes > 0 ? "cloud" : "endpoint";
  p.network.mode = "managed";
  p.network.prefix = "192.168";
  p.network.middle = 100;
  p.network.gateway = "192.168.100.1";
  const std::string rm = c.benchmark ? c.benchmark->resource_manager : "";
  const bool controller = c.infrastructure.cloud.nodes > 0 && rm != "mist" && rm != "none";
  int ip = 2;
  auto add = [&](std::string id, config::Tier tier, bool ctl, int index) {
    plan::Node n;
    n.id = id;
    n.name = id + "_" + user;
    n.ssh_user = n.name;
    n.tier = tier;
    n.controller = ctl;
    n.index = index;
    n.ip = "192.168.100." + std::to_string(ip++);
    p.nodes.push_back(n);
    l.dep.nodes.push_back({n.id, n.name, config::tier_name(tier), n.ip, n.ssh_user, 22, "", 0});
  };
  int workers = c.infrastructure.cloud.nodes - (controller ? 1 : 0);
  if (controller) add("cloud_controller", config::Tier::cloud, true, 0);
  for (int i = 0; i < workers; ++i) add("cloud" + std::to_string(i), config::Tier::cloud, false, i);
  for (int i = 0; i < c.infrastructure.edge.nodes; ++i) add("edge" + std::to_string(i), config::Tier::edge, false, i);
  for (int i = 0; i < c.infrastructure.endpoint.nodes; ++i)
    add("endpoint" + std::to_string(i), config::Tier::endpoint, false, i);
  l.dep.run_dir = "/runs/test";
  l.dep.private_key = "/home/alice/.ssh/id_rsa_continuum";
  l.dep.known_hosts = "/runs/test/known_hosts";
  return l;
}

void check_golden(const std::string& name, const std::string& text) {
  auto path = kGolden / (name + ".yml");
  if (std::getenv("CONTINUUM_UPDATE_GOLDEN")) {
    ASSERT_TRUE(util::write_file_atomic(path, text).ok());
    return;
  }
  auto want = util::read_file(path);
  ASSERT_TRUE(want.ok()) << want.error().message << " (set CONTINUUM_UPDATE_GOLDEN=1 to create)";
  EXPECT_EQ(*want, text) << "golden " << path;
}

std::set<std::string> group_hosts(const YAML::Node& inv, const std::string& group) {
  std::set<std::string> hosts;
  for (const auto& h : inv["all"]["children"][group]["hosts"]) hosts.insert(h.first.as<std::string>());
  return hosts;
}

TEST(SoftwareInventory, BenchCloudGolden) {
  auto c = make_config(2, 0, 1, "kubernetes");
  auto l = make_layout(c);
  auto inv = make_inventory(l.plan, c, l.dep);
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  check_golden("bench_cloud", *inv);
  YAML::Node y = YAML::Load(*inv);
  EXPECT_EQ(group_hosts(y, "cloudcontroller"), std::set<std::string>{"cloud_controller_alice"});
  EXPECT_EQ(group_hosts(y, "clouds"), std::set<std::string>{"cloud0_alice"});
  EXPECT_EQ(group_hosts(y, "endpoints"), std::set<std::string>{"endpoint0_alice"});
  EXPECT_EQ(group_hosts(y, "brokers"), (std::set<std::string>{"cloud0_alice", "endpoint0_alice"}));
  EXPECT_EQ(y["all"]["vars"]["cloud_ip"].as<std::string>(), "192.168.100.2");
  EXPECT_EQ(y["all"]["vars"]["registry_ip"].as<std::string>(), "192.168.100.1:5000");
  auto cc = y["all"]["children"]["cloudcontroller"]["vars"];
  EXPECT_EQ(cc["cloud_mode"].as<std::string>(), "1");
  EXPECT_EQ(cc["kubeversion"].as<std::string>(), "1.27.0");
  EXPECT_EQ(cc["kubeversion_major"].as<std::string>(), "v1.27");
  EXPECT_EQ(y["all"]["children"]["base_cloud"]["vars"]["kubeversionstrp"].as<std::string>(), "v1270");
  auto h = y["all"]["hosts"]["cloud0_alice"];
  EXPECT_EQ(h["ansible_host"].as<std::string>(), "192.168.100.3");
  EXPECT_EQ(h["ansible_user"].as<std::string>(), "cloud0_alice");
  EXPECT_EQ(h["username"].as<std::string>(), "cloud0_alice");
}

TEST(SoftwareInventory, BenchEdgeGolden) {
  auto c = make_config(1, 1, 1, "kubeedge");
  auto l = make_layout(c);
  auto inv = make_inventory(l.plan, c, l.dep);
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  check_golden("bench_edge", *inv);
  YAML::Node y = YAML::Load(*inv);
  EXPECT_TRUE(group_hosts(y, "clouds").empty());
  EXPECT_EQ(group_hosts(y, "edges"), std::set<std::string>{"edge0_alice"});
  EXPECT_EQ(group_hosts(y, "workers"), std::set<std::string>{"edge0_alice"});
  EXPECT_EQ(y["all"]["children"]["cloudcontroller"]["vars"]["cloud_mode"].as<std::string>(), "0");
  EXPECT_EQ(y["all"]["vars"]["cloud_ip"].as<std::string>(), "192.168.100.2");
}

TEST(SoftwareInventory, MistGolden) {
  auto c = make_config(0, 2, 4, "mist");
  auto l = make_layout(c);
  auto inv = make_inventory(l.plan, c, l.dep);
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  check_golden("mist", *inv);
  YAML::Node y = YAML::Load(*inv);
  EXPECT_TRUE(group_hosts(y, "cloudcontroller").empty());
  EXPECT_FALSE(y["all"]["vars"]["cloud_ip"]);       // mist: no control plane, as the original
  EXPECT_FALSE(y["all"]["vars"]["registry_ip"]);
  EXPECT_EQ(group_hosts(y, "brokers").size(), 6u);
}

TEST(SoftwareInventory, FiftyOneVmsGolden) {
  // experiment_large_deployments/edge_large.cfg: 1 cloud, 10 edges, 40 endpoints.
  auto c = make_config(1, 10, 40, "kubeedge");
  auto l = make_layout(c);
  auto inv = make_inventory(l.plan, c, l.dep);
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  check_golden("edge_large_51", *inv);
  YAML::Node y = YAML::Load(*inv);
  EXPECT_EQ(y["all"]["hosts"].size(), 51u);
  EXPECT_EQ(group_hosts(y, "base").size(), 51u);
  EXPECT_EQ(group_hosts(y, "endpoints").size(), 40u);
  EXPECT_EQ(group_hosts(y, "brokers").size(), 50u);
  EXPECT_EQ(y["all"]["hosts"]["endpoint39_alice"]["ansible_host"].as<std::string>(), "192.168.100.52");
}

TEST(SoftwareInventory, NodeMissingFromDeploymentIsAnError) {
  auto c = make_config(2, 0, 1, "kubernetes");
  auto l = make_layout(c);
  l.dep.nodes.pop_back();
  auto inv = make_inventory(l.plan, c, l.dep);
  ASSERT_FALSE(inv.ok());
  EXPECT_NE(inv.error().message.find("endpoint0"), std::string::npos) << inv.error().message;
}

TEST(SoftwareInventory, AnsibleCfgPinsHostKeysAndUsesRunControlPath) {
  AnsibleSettings s;
  s.software_dir = "/runs/r/software";
  s.private_key = "/k/id";
  s.known_hosts = "/runs/r/known_hosts";
  s.control_path_dir = "/runs/r/software/cp";
  std::string cfg = make_ansible_cfg(s);
  EXPECT_NE(cfg.find("inventory = /runs/r/software/inventory.yml\n"), std::string::npos);
  EXPECT_NE(cfg.find("-o UserKnownHostsFile=/runs/r/known_hosts"), std::string::npos);
  EXPECT_NE(cfg.find("-o StrictHostKeyChecking=yes"), std::string::npos);
  EXPECT_NE(cfg.find("host_key_checking = True"), std::string::npos);
  EXPECT_EQ(cfg.find("StrictHostKeyChecking=no"), std::string::npos);
  EXPECT_EQ(cfg.find("/dev/null"), std::string::npos);
  EXPECT_NE(cfg.find("control_path_dir = /runs/r/software/cp\n"), std::string::npos);
  EXPECT_NE(cfg.find("pipelining = True"), std::string::npos);
  EXPECT_NE(cfg.find("gathering = explicit"), std::string::npos);
  EXPECT_NE(cfg.find("private_key_file = /k/id"), std::string::npos);
}

TEST(SoftwareInventory, ControlPathDirFallsBackToTmpForLongRunDirs) {
  auto tmp = std::filesystem::temp_directory_path() / ("cntm-cp-" + std::to_string(::getpid()));
  auto short_dir = make_control_path_dir(tmp / "software");
  ASSERT_TRUE(short_dir.ok());
  EXPECT_EQ(*short_dir, tmp / "software" / "cp");
  auto long_sw = tmp / std::string(90, 'x') / "software";
  auto long_dir = make_control_path_dir(long_sw);
  ASSERT_TRUE(long_dir.ok());
  EXPECT_EQ(long_dir->parent_path(), "/tmp");
  EXPECT_LE(long_dir->string().size() + 58, 107u);
  EXPECT_TRUE(close_control_masters(*long_dir).ok());
  EXPECT_FALSE(std::filesystem::exists(*long_dir));
  std::filesystem::remove_all(tmp);
}

std::vector<std::string> names(const std::vector<PlaybookRun>& runs) {
  std::vector<std::string> n;
  for (const auto& r : runs) n.push_back(r.name);
  return n;
}

const PlaybookRun* find(const std::vector<PlaybookRun>& runs, const std::string& name) {
  for (const auto& r : runs)
    if (r.name == name) return &r;
  return nullptr;
}

TEST(SoftwarePlaybooks, KubernetesOrderControlPlaneBeforeWorkers) {
  auto c = make_config(2, 0, 1, "kubernetes");
  c.benchmark->observability = true;
  auto runs = playbooks_for(c, "/p");
  EXPECT_EQ(names(runs), (std::vector<std::string>{"base", "mosquitto", "container_runtime",
                                                   "kubernetes_install", "kubernetes_control",
                                                   "kubernetes_workers", "observability",
                                                   "application"}));
  EXPECT_EQ(find(runs, "kubernetes_workers")->after, std::vector<std::string>{"kubernetes_control"});
  EXPECT_EQ(find(runs, "observability")->after, std::vector<std::string>{"kubernetes_workers"});
  EXPECT_EQ(find(runs, "kubernetes_control")->file, "/p/kubernetes/control.yml");
  for (const auto& r : runs)
    EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(CONTINUUM_SOURCE_DIR) / "playbooks" /
                                        r.file.lexically_relative("/p")))
        << r.file;
}

TEST(SoftwarePlaybooks, KubeEdgeAndMistAndOpenfaasAndEnergy) {
  auto edge = playbooks_for(make_config(1, 1, 1, "kubeedge"), "/p");
  EXPECT_EQ(find(edge, "kubeedge_edge_log")->after, std::vector<std::string>{"kubeedge_control_log"});
  auto mist = playbooks_for(make_config(0, 2, 4, "mist"), "/p");
  EXPECT_EQ(names(mist), (std::vector<std::string>{"base", "mosquitto", "mist", "application"}));
  auto c = make_config(2, 0, 1, "kubernetes");
  c.execution_model = config::ExecutionModel{"openfaas"};
  c.energy.enabled = true;
  c.energy.exporter = "guest";
  auto of = playbooks_for(c, "/p");
  EXPECT_EQ(find(of, "openfaas")->after, std::vector<std::string>{"kubernetes_workers"});
  ASSERT_NE(find(of, "scaphandre"), nullptr);
  for (const auto& r : of)
    EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(CONTINUUM_SOURCE_DIR) / "playbooks" /
                                        r.file.lexically_relative("/p")))
        << r.file;
}

TEST(SoftwarePlaybooks, InfraOnlyAndResourceManagerOnly) {
  auto c = make_config(2, 0, 1, "kubernetes");
  c.infrastructure.infra_only = true;
  EXPECT_TRUE(playbooks_for(c, "/p").empty());
  auto rmo = make_config(2, 0, 1, "kubernetes");
  rmo.benchmark->resource_manager_only = true;
  auto runs = playbooks_for(rmo, "/p");
  EXPECT_EQ(find(runs, "application"), nullptr);
  EXPECT_NE(find(runs, "kubernetes_workers"), nullptr);
  EXPECT_NE(find(runs, "mosquitto"), nullptr);  // the original still runs the endpoint playbook
}

}  // namespace
}  // namespace continuum::software

namespace continuum::software {
namespace {

// The shipped configurations through the real config::load and plan::make: the inventory groups
// follow the plan, and the planner's playbook folders are exactly the folders of the steps the
// software phase runs.
Layout from_config(const std::string& name, config::Config& cfg) {
  auto c = config::load(std::filesystem::path(CONTINUUM_SOURCE_DIR) / "configuration" / name);
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  cfg = *c;
  plan::Environment env;
  env.user = "alice";
  env.local_cores = 64;
  env.external_cores.assign(cfg.infrastructure.external_physical_machines.size(), 64);
  auto p = plan::make(cfg, env);
  EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message);
  Layout l;
  l.plan = *p;
  for (const auto& n : l.plan.nodes)
    l.dep.nodes.push_back({n.id, n.name, config::tier_name(n.tier), n.ip, n.ssh_user, 22, "", 0});
  l.dep.run_dir = "/runs/test";
  l.dep.private_key = "/k";
  l.dep.known_hosts = "/runs/test/known_hosts";
  return l;
}

std::set<std::string> folders(const std::vector<PlaybookRun>& runs) {
  std::set<std::string> f;
  for (const auto& r : runs) f.insert(r.file.parent_path().filename().string());
  return f;
}

TEST(SoftwareInventoryFromConfig, BenchCloudAndBenchEdge) {
  config::Config c;
  Layout cloud = from_config("bench_cloud.cfg", c);
  ASSERT_FALSE(cloud.plan.nodes.empty());
  auto inv = make_inventory(cloud.plan, c, cloud.dep);
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  YAML::Node y = YAML::Load(*inv);
  EXPECT_EQ(group_hosts(y, "cloudcontroller"), std::set<std::string>{"cloud_controller_alice"});
  EXPECT_EQ(group_hosts(y, "clouds"), std::set<std::string>{"cloud0_alice"});
  EXPECT_EQ(group_hosts(y, "endpoints"), std::set<std::string>{"endpoint0_alice"});
  EXPECT_EQ(y["all"]["vars"]["cloud_ip"].as<std::string>(), cloud.plan.nodes.front().ip);
  std::set<std::string> planned(cloud.plan.playbooks.begin(), cloud.plan.playbooks.end());
  EXPECT_EQ(folders(playbooks_for(c, "/p")), planned);

  Layout edge = from_config("bench_edge.cfg", c);
  inv = make_inventory(edge.plan, c, edge.dep);
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  y = YAML::Load(*inv);
  EXPECT_EQ(group_hosts(y, "edges"), std::set<std::string>{"edge0_alice"});
  EXPECT_EQ(group_hosts(y, "workers"), std::set<std::string>{"edge0_alice"});
  planned = {edge.plan.playbooks.begin(), edge.plan.playbooks.end()};
  EXPECT_EQ(folders(playbooks_for(c, "/p")), planned);
}

}  // namespace
}  // namespace continuum::software

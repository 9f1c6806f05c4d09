// Inventory, ansible.cfg and playbook selection of the software phase (docs/software.md).
// Plans are built by hand here with the original's naming and addressing (docs/original.md §4.2),
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
#include "unit/software_fixture.h"

namespace continuum::software {
namespace {

const std::filesystem::path kGolden =
    std::filesystem::path(CONTINUUM_SOURCE_DIR) / "tests/data/golden/inventory";

using fixture::make_config;
using fixture::playbooks_of;

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
  p.mode = c.infrastructure.edge.nodes > 0    ? "edge"
           : c.infrastructure.cloud.nodes > 0 ? "cloud"
                                              : "endpoint";
  p.network.mode = "managed";
  p.network.prefix = "192.168";
  p.network.middle = 100;
  p.network.gateway = "192.168.100.1";
  const auto rm = c.benchmark ? c.benchmark->resource_manager : config::ResourceManager::none;
  const bool controller = c.infrastructure.cloud.nodes > 0 && rm != config::ResourceManager::mist &&
                          rm != config::ResourceManager::none;
  int ip = 2;
  auto add = [&](const std::string& id, config::Tier tier, bool ctl, int index) {
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
  for (int i = 0; i < c.infrastructure.edge.nodes; ++i)
    add("edge" + std::to_string(i), config::Tier::edge, false, i);
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
  for (const auto& h : inv["all"]["children"][group]["hosts"])
    hosts.insert(h.first.as<std::string>());
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
  EXPECT_EQ(y["all"]["children"]["base_cloud"]["vars"]["kubeversionstrp"].as<std::string>(),
            "v1270");
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
  EXPECT_FALSE(y["all"]["vars"]["cloud_ip"]);     // mist: no control plane, as the original
  EXPECT_FALSE(y["all"]["vars"]["registry_ip"]);  // no registry started (yet)
  EXPECT_EQ(group_hosts(y, "brokers").size(), 6u);

  // After the run's containers step: its registry and the images the docker playbook pulls.
  l.dep.registry = "192.168.100.1:5000";
  l.dep.images = {{"subscriber", "192.168.100.1:5000/continuum/image_classification_subscriber:0a"},
                  {"publisher", "192.168.100.1:5000/continuum/image_classification_publisher:1b"}};
  y = YAML::Load(*make_inventory(l.plan, c, l.dep));
  EXPECT_EQ(y["all"]["vars"]["registry_ip"].as<std::string>(), "192.168.100.1:5000");
  EXPECT_EQ(y["all"]["vars"]["image_subscriber"].as<std::string>(),
            "192.168.100.1:5000/continuum/image_classification_subscriber:0a");
  EXPECT_EQ(y["all"]["vars"]["image_publisher"].as<std::string>(),
            "192.168.100.1:5000/continuum/image_classification_publisher:1b");
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
  EXPECT_EQ(y["all"]["hosts"]["endpoint39_alice"]["ansible_host"].as<std::string>(),
            "192.168.100.52");
}

TEST(SoftwareInventory, GuestProxiesAndAptSourceBecomeInventoryVariables) {
  auto c = make_config(2, 0, 1, "kubernetes");
  c.infrastructure.guest_http_proxy = "http://proxy.lab:3128";
  c.infrastructure.guest_https_proxy = "http://proxy.lab:3129";
  c.infrastructure.guest_no_proxy = "registry.lab, .corp";
  c.infrastructure.guest_apt_proxy = "http://10.0.0.1:3142";
  c.infrastructure.guest_apt_mirror = "http://mirror.lab/debian";
  auto l = make_layout(c);
  l.plan.network.prefix_len = 24;
  // The deployment's address wins over the plan's (a bridge network hands out others).
  l.dep.nodes[1].ip = "192.168.100.77";
  auto inv = make_inventory(l.plan, c, l.dep);
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  YAML::Node v = YAML::Load(*inv)["all"]["vars"];
  YAML::Node env = v["continuum_proxy_env"];
  ASSERT_TRUE(env.IsMap());
  EXPECT_EQ(env.size(), 6u);
  EXPECT_EQ(env["http_proxy"].as<std::string>(), "http://proxy.lab:3128");
  EXPECT_EQ(env["HTTP_PROXY"].as<std::string>(), "http://proxy.lab:3128");
  EXPECT_EQ(env["https_proxy"].as<std::string>(), "http://proxy.lab:3129");
  EXPECT_EQ(env["HTTPS_PROXY"].as<std::string>(), "http://proxy.lab:3129");
  // The user's entries first, then what must never be proxied: the guests, their network and
  // gateway (the registry), Kubernetes' service and pod networks.
  EXPECT_EQ(
      env["no_proxy"].as<std::string>(),
      "registry.lab,.corp,localhost,127.0.0.1,::1,192.168.100.0/24,192.168.100.1,192.168.100.2,"
      "192.168.100.77,192.168.100.4,10.96.0.0/12,10.244.0.0/16,192.168.0.0/16,.svc,.cluster.local");
  EXPECT_EQ(env["NO_PROXY"].as<std::string>(), env["no_proxy"].as<std::string>());
  EXPECT_EQ(v["continuum_apt_proxy"].as<std::string>(), "http://10.0.0.1:3142");
  EXPECT_EQ(v["continuum_apt_mirror"].as<std::string>(), "http://mirror.lab/debian");

  // Only an apt proxy: no proxy environment for the other downloads.
  c.infrastructure.guest_http_proxy.clear();
  c.infrastructure.guest_https_proxy.clear();
  inv = make_inventory(l.plan, c, l.dep);
  ASSERT_TRUE(inv.ok());
  v = YAML::Load(*inv)["all"]["vars"];
  EXPECT_FALSE(v["continuum_proxy_env"]);
  EXPECT_EQ(v["continuum_apt_proxy"].as<std::string>(), "http://10.0.0.1:3142");
}

TEST(SoftwareInventory, GroupsListedInInventoryOrder) {
  auto c = make_config(2, 1, 2, "kubeedge");
  auto l = make_layout(c);
  auto groups = inventory_groups(l.plan);
  std::vector<std::string> names;
  for (const auto& [name, ids] : groups) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"cloudcontroller", "clouds", "edges", "endpoints",
                                             "base", "base_cloud", "base_edge", "base_endpoint",
                                             "workers", "brokers"}));
  EXPECT_EQ(groups[1].second, std::vector<std::string>{"cloud0"});
  EXPECT_EQ(groups[8].second, (std::vector<std::string>{"cloud0", "edge0"}));
  EXPECT_EQ(groups[9].second,
            (std::vector<std::string>{"cloud0", "edge0", "endpoint0", "endpoint1"}));
  EXPECT_EQ(kube_version_vars(c)[1],
            (std::pair<std::string, std::string>{"kubeversion_major", "v1.27"}));
  EXPECT_TRUE(kube_version_vars(make_config(0, 2, 2, "mist")).empty());
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
  EXPECT_NE(cfg.find("-o 'UserKnownHostsFile=\"/runs/r/known_hosts\"'"), std::string::npos) << cfg;
  EXPECT_NE(cfg.find("-o StrictHostKeyChecking=yes"), std::string::npos);
  EXPECT_NE(cfg.find("host_key_checking = True"), std::string::npos);
  EXPECT_EQ(cfg.find("StrictHostKeyChecking=no"), std::string::npos);
  EXPECT_EQ(cfg.find("/dev/null"), std::string::npos);
  EXPECT_NE(cfg.find("control_path_dir = /runs/r/software/cp\n"), std::string::npos);
  EXPECT_NE(cfg.find("pipelining = True"), std::string::npos);
  EXPECT_NE(cfg.find("gathering = explicit"), std::string::npos);
  EXPECT_NE(cfg.find("private_key_file = /k/id"), std::string::npos);
  EXPECT_NE(cfg.find("control_path = /runs/r/software/cp/%%C\n"), std::string::npos) << cfg;
}

TEST(SoftwareInventory, AnsibleCfgQuotesPathsWithSpacesQuotesAndPercent) {
  // What a configuration named "my 100% exp.cfg" puts into the run directory's name. The real
  // ansible-playbook run over such a path: tests/integration/software_ansible_test.cc.
  AnsibleSettings s;
  s.software_dir = "/runs/my 100% exp_2024/software";
  s.private_key = "/keys/it's 5%/id";
  s.known_hosts = "/runs/my 100% exp_2024/known_hosts";
  s.control_path_dir = "/runs/my 100% exp_2024/software/cp";
  std::string cfg = make_ansible_cfg(s);
  // Raw values (Ansible reads ansible.cfg without interpolation).
  EXPECT_NE(cfg.find("inventory = /runs/my 100% exp_2024/software/inventory.yml\n"),
            std::string::npos)
      << cfg;
  EXPECT_NE(cfg.find("control_path_dir = /runs/my 100% exp_2024/software/cp\n"), std::string::npos)
      << cfg;
  // ssh's %-tokens: a literal % is %% for ssh; in control_path Python's formatting doubles it
  // again.
  EXPECT_NE(cfg.find("private_key_file = /keys/it's 5%%/id\n"), std::string::npos) << cfg;
  EXPECT_NE(cfg.find("control_path = /runs/my 100%%%% exp_2024/software/cp/%%C\n"),
            std::string::npos)
      << cfg;
  // One shlex word, one ssh word: -o 'UserKnownHostsFile="/runs/my 100%% exp_2024/known_hosts"'.
  EXPECT_NE(cfg.find("-o 'UserKnownHostsFile=\"/runs/my 100%% exp_2024/known_hosts\"'"),
            std::string::npos)
      << cfg;
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
  auto runs = playbooks_of(c, "/p");
  EXPECT_EQ(names(runs),
            (std::vector<std::string>{"base", "mosquitto", "container_runtime",
                                      "kubernetes_install", "kubernetes_control",
                                      "kubernetes_workers", "observability", "application"}));
  EXPECT_EQ(find(runs, "kubernetes_workers")->after,
            std::vector<std::string>{"kubernetes_control"});
  EXPECT_EQ(find(runs, "observability")->after, std::vector<std::string>{"kubernetes_workers"});
  EXPECT_EQ(find(runs, "kubernetes_control")->file, "/p/kubernetes/control.yml");
  for (const auto& r : runs)
    EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(CONTINUUM_SOURCE_DIR) / "playbooks" /
                                        r.file.lexically_relative("/p")))
        << r.file;
}

TEST(SoftwarePlaybooks, KubeEdgeAndMistAndOpenfaasAndEnergy) {
  auto edge = playbooks_of(make_config(1, 1, 1, "kubeedge"), "/p");
  EXPECT_EQ(find(edge, "kubeedge_edge_log")->after,
            std::vector<std::string>{"kubeedge_control_log"});
  auto mist = playbooks_of(make_config(0, 2, 4, "mist"), "/p");
  EXPECT_EQ(names(mist), (std::vector<std::string>{"base", "mosquitto", "mist", "docker"}));
  auto c = make_config(2, 0, 1, "kubernetes");
  c.execution_model = config::ExecutionModel{"openfaas"};
  c.energy.enabled = true;
  c.energy.exporter = continuum::config::Exporter::guest;
  auto of = playbooks_of(c, "/p");
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
  EXPECT_TRUE(playbooks_of(c, "/p").empty());
  auto rmo = make_config(2, 0, 1, "kubernetes");
  rmo.benchmark->resource_manager_only = true;
  auto runs = playbooks_of(rmo, "/p");
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
  // The plan decides the steps; the software phase runs exactly those, in that order (before,
  // `continuum plan` and the run disagreed on bench_cloud.cfg).
  auto runs = playbooks_for(cloud.plan, "/p");
  ASSERT_EQ(runs.size(), cloud.plan.playbooks.size());
  for (size_t i = 0; i < runs.size(); ++i) {
    EXPECT_EQ(runs[i].name, cloud.plan.playbooks[i].name);
    EXPECT_EQ(runs[i].file, "/p/" + cloud.plan.playbooks[i].file);
    EXPECT_EQ(runs[i].after, cloud.plan.playbooks[i].after);
  }
  EXPECT_EQ(folders(runs), (std::set<std::string>{"base", "mosquitto", "container_runtime",
                                                  "kubernetes", "application"}));

  Layout edge = from_config("bench_edge.cfg", c);
  inv = make_inventory(edge.plan, c, edge.dep);
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  y = YAML::Load(*inv);
  EXPECT_EQ(group_hosts(y, "edges"), std::set<std::string>{"edge0_alice"});
  EXPECT_EQ(group_hosts(y, "workers"), std::set<std::string>{"edge0_alice"});
  EXPECT_EQ(
      folders(playbooks_for(edge.plan, "/p")),
      (std::set<std::string>{"base", "mosquitto", "container_runtime", "kubeedge", "application"}));
}

}  // namespace
}  // namespace continuum::software

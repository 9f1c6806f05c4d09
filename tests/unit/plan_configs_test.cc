// plan::make over real configuration files: the ones continuum ships (configuration/) and the
// original's corpus (tests/data/upstream-configs/), loaded with config::load.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "continuum/config/config.h"
#include "continuum/plan/plan.h"

namespace fs = std::filesystem;

namespace continuum::plan {
namespace {

const fs::path kSource = CONTINUUM_SOURCE_DIR;

Environment env_for(const config::Config& c, int cores) {
  return Environment{"test", cores,
                     std::vector<int>(c.infrastructure.external_physical_machines.size(), cores)};
}

std::vector<fs::path> cfg_files(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".cfg") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

/// Checks what every plan must satisfy.
void check_plan(const config::Config& c, const Plan& p, const std::string& what) {
  const auto& infra = c.infrastructure;
  EXPECT_EQ(p.nodes.size(),
            static_cast<size_t>(infra.cloud.nodes + infra.edge.nodes + infra.endpoint.nodes))
      << what;
  std::set<std::string> names, ips;
  int controllers = 0;
  for (const Node& n : p.nodes) {
    names.insert(n.name);
    ips.insert(n.ip);
    controllers += n.controller;
    EXPECT_EQ(n.name, n.id + "_test") << what;
    EXPECT_LT(n.host, p.hosts.size()) << what;
    EXPECT_GT(n.memory_mib, 0) << what;
    if (infra.cpu_pin) {
      EXPECT_EQ(n.pinned_cpus.size(), static_cast<size_t>(n.cores)) << what;
    }
  }
  EXPECT_EQ(names.size(), p.nodes.size()) << what;
  EXPECT_EQ(ips.size(), p.nodes.size()) << what;
  EXPECT_LE(controllers, 1) << what;
  EXPECT_EQ(p.network_emulation, infra.network_emulation) << what;
  if (infra.network_emulation && p.nodes.size() > 1) {
    EXPECT_FALSE(p.tier_links.empty()) << what;
  }
  nlohmann::json j = to_json(p);
  auto back = from_json(nlohmann::json::parse(j.dump()));
  ASSERT_TRUE(back.ok()) << what << ": " << back.error().message;
  EXPECT_EQ(to_json(*back), j) << what;
  EXPECT_FALSE(summary(p).empty());
}

TEST(PlanConfigs, EveryAcceptedQemuConfigurationPlans) {
  int planned = 0, vms = 0;
  for (const fs::path& dir : {kSource / "configuration", kSource / "tests/data/upstream-configs"}) {
    for (const fs::path& f : cfg_files(dir)) {
      auto c = config::load(f);
      if (!c.ok() || c->infrastructure.provider != continuum::config::Provider::qemu) continue;
      // 64 cores per host: every cpu_pin configuration of the corpus fits.
      auto p = make(*c, env_for(*c, 64));
      ASSERT_TRUE(p.ok()) << f << ": " << p.error().message;
      check_plan(*c, *p, f.string());
      ++planned;
      vms += static_cast<int>(p->nodes.size());
    }
  }
  // configuration/ alone has several; the corpus adds dozens. Guard against an empty loop.
  EXPECT_GT(planned, 20);
  EXPECT_GT(vms, planned);
}

Plan plan_file(const fs::path& f, int cores = 16) {
  auto c = config::load(f);
  EXPECT_TRUE(c.ok()) << f << ": " << (c.ok() ? "" : c.error().message);
  if (!c.ok()) return {};
  auto p = make(*c, env_for(*c, cores));
  EXPECT_TRUE(p.ok()) << f << ": " << (p.ok() ? "" : p.error().message);
  return p.ok() ? std::move(p).value() : Plan{};
}

TEST(PlanConfigs, ShippedBenchConfigs) {
  Plan cloud = plan_file(kSource / "configuration/bench_cloud.cfg");
  ASSERT_EQ(cloud.nodes.size(), 3u);
  EXPECT_EQ(cloud.nodes[0].name, "cloud_controller_test");
  EXPECT_EQ(cloud.nodes[0].ip, "192.168.100.2");
  EXPECT_EQ(cloud.nodes[1].ip, "192.168.100.3");
  EXPECT_EQ(cloud.nodes[2].ip, "192.168.100.4");
  ASSERT_NE(cloud.tier_link(Tier::cloud, Tier::endpoint), nullptr);
  EXPECT_DOUBLE_EQ(cloud.tier_link(Tier::cloud, Tier::endpoint)->throughput_mbit, 7.21);

  Plan edge = plan_file(kSource / "configuration/bench_edge.cfg");
  ASSERT_EQ(edge.nodes.size(), 3u);
  EXPECT_EQ(edge.nodes[1].name, "edge0_test");
  EXPECT_EQ(edge.nodes[1].cputune_quota, 75000);

  Plan endpoint = plan_file(kSource / "configuration/bench_endpoint.cfg");
  ASSERT_EQ(endpoint.nodes.size(), 1u);
  EXPECT_EQ(endpoint.nodes[0].name, "endpoint0_test");
  EXPECT_EQ(endpoint.nodes[0].ip, "192.168.100.2");
}

TEST(PlanConfigs, UpstreamTestAllUsesFiveGAndOverrides) {
  // tests/qemu/04_infraonly-all.cfg: 5g, cloud_edge_throughput = 900, edge_endpoint_latency_avg
  // = 12.5.
  Plan p = plan_file(kSource / "tests/data/upstream-configs/tests/qemu/04_infraonly-all.cfg");
  const Link* ce = p.tier_link(Tier::cloud, Tier::edge);
  const Link* ee = p.tier_link(Tier::edge, Tier::endpoint);
  const Link* cp = p.tier_link(Tier::cloud, Tier::endpoint);
  ASSERT_TRUE(ce && ee && cp);
  EXPECT_DOUBLE_EQ(ce->throughput_mbit, 900);
  EXPECT_DOUBLE_EQ(ce->latency_avg_ms, 7.5);
  EXPECT_DOUBLE_EQ(ee->latency_avg_ms, 12.5);
  EXPECT_DOUBLE_EQ(ee->latency_var_ms, 2.5);
  EXPECT_DOUBLE_EQ(ee->throughput_mbit, 29.66);
  EXPECT_DOUBLE_EQ(cp->throughput_mbit, 29.66);
  EXPECT_FALSE(p.nodes[0].controller);  // infra_only
}

TEST(PlanConfigs, UpstreamCpuPinConfigPins) {
  // tests/qemu/02_infraonly-edge.cfg: 2 edges of 2 cores, cpu_pin.
  Plan p = plan_file(kSource / "tests/data/upstream-configs/tests/qemu/02_infraonly-edge.cfg", 4);
  ASSERT_EQ(p.nodes.size(), 2u);
  EXPECT_EQ(p.nodes[0].pinned_cpus, (std::vector<int>{0, 1}));
  EXPECT_EQ(p.nodes[1].pinned_cpus, (std::vector<int>{2, 3}));
  auto c = config::load(kSource / "tests/data/upstream-configs/tests/qemu/02_infraonly-edge.cfg");
  ASSERT_TRUE(c.ok());
  auto overflow = make(*c, env_for(*c, 3));
  ASSERT_FALSE(overflow.ok());
  EXPECT_EQ(overflow.error().exit_code, continuum::ExitCode::usage);
  EXPECT_NE(overflow.error().message.find("1 of 2 VMs are left"), std::string::npos)
      << overflow.error().message;
}

TEST(PlanConfigs, LinkSectionsFromAFile) {
  fs::path dir = fs::temp_directory_path() / ("plan_links_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string base =
      "[infrastructure]\n"
      "provider = qemu\n"
      "cloud_nodes = 2\ncloud_cores = 2\ncloud_memory = 2\ncloud_quota = 1.0\n"
      "endpoint_nodes = 2\nendpoint_cores = 1\nendpoint_memory = 1\nendpoint_quota = 0.5\n"
      "network_emulation = True\n"
      "\n[benchmark]\nresource_manager = kubernetes\n"
      "application = image_classification\nfrequency = 5\n"
      "\n[link cloud0 endpoint1]\nlatency_avg = 80\nloss = 2\n";  // [link] header on line 18
  std::ofstream(dir / "links.cfg") << base;
  auto c = config::load(dir / "links.cfg");
  ASSERT_TRUE(c.ok()) << c.error().message;
  auto p = make(*c, env_for(*c, 8));
  ASSERT_TRUE(p.ok()) << p.error().message;
  const Link* l = p->link_between(*p->find("endpoint1"), *p->find("cloud0"));
  ASSERT_NE(l, nullptr);
  EXPECT_DOUBLE_EQ(l->latency_avg_ms, 80);
  EXPECT_DOUBLE_EQ(l->latency_var_ms, 5);
  EXPECT_DOUBLE_EQ(l->throughput_mbit, 7.21);
  EXPECT_DOUBLE_EQ(l->loss_pct, 2);
  EXPECT_DOUBLE_EQ(p->link_between(*p->find("endpoint0"), *p->find("cloud0"))->latency_avg_ms, 45);

  // A node the plan does not have is refused with the section's location (the loader knows the
  // naming rules too; plan::make repeats the check for configurations built in code).
  std::ofstream(dir / "bad.cfg") << base << "\n[link cloud0 endpoint7]\nlatency_avg = 80\n";
  auto bad = config::load(dir / "bad.cfg");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().exit_code, continuum::ExitCode::usage);
  EXPECT_NE(bad.error().message.find("bad.cfg:22"), std::string::npos) << bad.error().message;
  EXPECT_NE(bad.error().message.find("endpoint7"), std::string::npos) << bad.error().message;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace continuum::plan

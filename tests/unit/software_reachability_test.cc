// The reachability preflight's pure parts (src/software/include/continuum/software/reachability.h):
// the real playbooks/versions.yml, which sources each guest probes for a configuration, proxies and
// no_proxy, the probe's output, and the failure message. The probe itself, over a real sshd in a
// network namespace without an uplink, is tests/integration/software_reachability_test.cc.
#include <gtest/gtest.h>

#include <set>

#include "continuum/software/inventory.h"
#include "continuum/software/reachability.h"
#include "continuum/software/software.h"
#include "continuum/util/files.h"
#include "unit/software_fixture.h"

namespace continuum::software {
namespace {

namespace fs = std::filesystem;
const fs::path kVersions = fs::path(CONTINUUM_SOURCE_DIR) / "playbooks/versions.yml";

using fixture::make_config;
using fixture::playbooks_of;

plan::Plan make_plan(const config::Config& c) {
  plan::Plan p;
  p.user = "alice";
  p.network.prefix = "192.168";
  p.network.middle = 100;
  p.network.gateway = "192.168.100.1";
  p.network.prefix_len = 24;
  const auto rm = c.benchmark->resource_manager;
  const bool controller = c.infrastructure.cloud.nodes > 0 && rm != config::ResourceManager::mist &&
                          rm != config::ResourceManager::none;
  int ip = 2;
  auto add = [&](const std::string& id, config::Tier t, bool ctl) {
    plan::Node n;
    n.id = id;
    n.name = id + "_alice";
    n.tier = t;
    n.controller = ctl;
    n.ip = "192.168.100." + std::to_string(ip++);
    p.nodes.push_back(n);
  };
  if (controller) add("cloud_controller", config::Tier::cloud, true);
  for (int i = 0; i < c.infrastructure.cloud.nodes - (controller ? 1 : 0); ++i)
    add("cloud" + std::to_string(i), config::Tier::cloud, false);
  for (int i = 0; i < c.infrastructure.edge.nodes; ++i)
    add("edge" + std::to_string(i), config::Tier::edge, false);
  for (int i = 0; i < c.infrastructure.endpoint.nodes; ++i)
    add("endpoint" + std::to_string(i), config::Tier::endpoint, false);
  return p;
}

std::vector<std::string> step_names(const config::Config& c) {
  std::vector<std::string> s;
  for (const auto& r : playbooks_of(c, "/p")) s.push_back(r.name);
  return s;
}

const GuestProbes* guest(const std::vector<GuestProbes>& g, const std::string& id) {
  for (const auto& x : g)
    if (x.node_id == id) return &x;
  return nullptr;
}

std::set<std::string> urls(const GuestProbes* g) {
  std::set<std::string> u;
  if (g)
    for (const auto& p : g->probes) u.insert(p.url);
  return u;
}

TEST(Reachability, TemplatesExpandOnlyPlainVariables) {
  std::map<std::string, std::string> v = {{"a", "x{{ b }}"}, {"b", "y"}, {"loop", "{{loop}}"}};
  EXPECT_EQ(expand_template("{{a}}/{{ b }}", v).value(), "xy/y");
  EXPECT_EQ(expand_template("no templates", v).value(), "no templates");
  auto filter = expand_template("{{ a | default('z') }}", v);
  ASSERT_FALSE(filter.ok());
  EXPECT_NE(filter.error().message.find("only {{ variable }}"), std::string::npos)
      << filter.error().message;
  EXPECT_FALSE(expand_template("{{ missing }}", v).ok());
  EXPECT_FALSE(expand_template("{{ a", v).ok());
  EXPECT_NE(expand_template("{{ loop }}", v).error().message.find("cycle"), std::string::npos);
}

TEST(Reachability, ShippedVersionsFileNamesRealStepsAndExpandsForEveryResourceManager) {
  // Every step named in versions.yml is one playbooks_for can select, and with the Kubernetes
  // variables every template expands (strict).
  std::set<std::string> known;
  for (const char* rm : {"kubernetes", "kubeedge", "mist", "none"}) {
    auto c = make_config(rm == std::string("mist") ? 0 : 2,
                         rm == std::string("kubeedge") || rm == std::string("mist") ? 1 : 0, 1, rm);
    c.benchmark->observability = true;
    config::ExecutionModel em;
    em.model = "openfaas";
    c.execution_model = em;
    c.energy.enabled = true;
    c.energy.exporter = continuum::config::Exporter::guest;
    for (const auto& s : step_names(c)) known.insert(s);
  }
  auto kube = make_config(2, 0, 1, "kubernetes");
  std::map<std::string, std::string> extra;
  for (const auto& [k, v] : kube_version_vars(kube)) extra[k] = v;
  auto v = load_versions(kVersions, extra, /*strict=*/true);
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_GT(v->sources.size(), 20u);
  for (const auto& s : v->sources) {
    EXPECT_TRUE(known.count(s.step))
        << "versions.yml names step '" << s.step << "' that no configuration selects";
    EXPECT_TRUE(s.url == "apt" || s.url.rfind("https://", 0) == 0 || s.url.rfind("http://", 0) == 0)
        << s.url;
    EXPECT_EQ(s.url.find("{{"), std::string::npos) << s.url;
  }
  // Without the Kubernetes variables, entries that need them are dropped, the rest load.
  auto plain = load_versions(kVersions);
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_LT(plain->sources.size(), v->sources.size());
  EXPECT_FALSE(load_versions(kVersions, {}, /*strict=*/true).ok());
  // The KubeEdge repository is a pkgs.k8s.io series that exists (v1.24 and newer) and signed.
  EXPECT_EQ(v->vars.at("kubeedge_kubernetes_series"), "v1.24");
  auto install = util::read_file(fs::path(CONTINUUM_SOURCE_DIR) / "playbooks/kubeedge/install.yml");
  ASSERT_TRUE(install.ok());
  EXPECT_EQ(install->find("trusted=yes"), std::string::npos);
  EXPECT_NE(install->find("signed-by="), std::string::npos);
}

TEST(Reachability, BadEntriesNameFileAndEntry) {
  auto dir = fs::temp_directory_path() / ("continuum-reach-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto write = [&](const std::string& text) {
    EXPECT_TRUE(util::write_file_atomic(dir / "v.yml", text).ok());
    return load_versions(dir / "v.yml");
  };
  auto r = write("continuum_sources:\n  - {step: base, hosts: nosuchgroup, url: apt}\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(
      r.error().message.find("continuum_sources[0]: hosts: unknown inventory group 'nosuchgroup'"),
      std::string::npos)
      << r.error().message;
  r = write(
      "continuum_sources:\n  - {step: base, hosts: base, url: apt}\n  - {step: base, hosts: base, "
      "url: ftp://x/}\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("continuum_sources[1]: url 'ftp://x/'"), std::string::npos)
      << r.error().message;
  r = write("continuum_sources:\n  - {step: base, url: apt}\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("'hosts' is missing"), std::string::npos);
  r = write("a: 1\n");
  EXPECT_FALSE(r.ok());
  fs::remove_all(dir);
}

TEST(Reachability, KubernetesGuestsProbeWhatTheirPlaybooksFetch) {
  auto c = make_config(2, 0, 1, "kubernetes");
  auto p = make_plan(c);
  std::map<std::string, std::string> extra;
  for (const auto& [k, v] : kube_version_vars(c)) extra[k] = v;
  auto v = load_versions(kVersions, extra);
  ASSERT_TRUE(v.ok()) << v.error().message;
  auto probes = plan_probes(p, c, nullptr, *v, step_names(c));
  const std::string apt = "http://deb.debian.org/debian/dists/{codename}/InRelease";
  const std::string key = "https://pkgs.k8s.io/core:/stable:/v1.27/deb/Release.key";
  auto ctl = urls(guest(probes, "cloud_controller"));
  EXPECT_TRUE(ctl.count(apt));
  EXPECT_TRUE(ctl.count(key));
  EXPECT_TRUE(ctl.count(
      "https://github.com/flannel-io/flannel/releases/download/v0.25.5/kube-flannel.yml"));
  EXPECT_TRUE(ctl.count("https://registry.k8s.io/v2/"));
  auto worker = urls(guest(probes, "cloud0"));
  EXPECT_TRUE(worker.count(key));
  EXPECT_FALSE(worker.count(
      "https://github.com/flannel-io/flannel/releases/download/v0.25.5/kube-flannel.yml"));
  // The endpoint only runs base, mosquitto and the application: apt, and only if it lacks them.
  const GuestProbes* ep = guest(probes, "endpoint0");
  ASSERT_NE(ep, nullptr);
  ASSERT_EQ(ep->probes.size(), 1u);
  EXPECT_EQ(ep->probes[0].url, apt);
  EXPECT_FALSE(ep->probes[0].always);
  EXPECT_EQ(ep->probes[0].unless,
            (std::vector<std::string>{"/usr/bin/python3", "/usr/sbin/mosquitto"}));
  EXPECT_EQ(ep->probes[0].steps, (std::vector<std::string>{"base", "mosquitto"}));

  // With no playbook downloading anything (infra_only), nothing is probed.
  c.infrastructure.infra_only = true;
  EXPECT_TRUE(plan_probes(p, c, nullptr, *v, step_names(c)).empty());
}

TEST(Reachability, ProxiesMirrorAndNoProxy) {
  EXPECT_TRUE(no_proxy_matches("registry.lab", "a,registry.lab"));
  EXPECT_TRUE(no_proxy_matches("x.corp.example", ".corp.example"));
  EXPECT_TRUE(no_proxy_matches("x.corp.example", "corp.example"));
  EXPECT_FALSE(no_proxy_matches("notcorp.example", "corp.example"));
  EXPECT_TRUE(no_proxy_matches("10.1.2.3", "10.0.0.0/8"));
  EXPECT_FALSE(no_proxy_matches("11.1.2.3", "10.0.0.0/8"));
  EXPECT_TRUE(no_proxy_matches("anything", " * "));
  EXPECT_FALSE(no_proxy_matches("pkgs.k8s.io", ""));

  config::Infrastructure infra;
  infra.guest_http_proxy = "http://proxy:3128";
  infra.guest_https_proxy = "http://proxy:3129";
  EXPECT_EQ(proxy_for("https://pkgs.k8s.io/x", false, infra, ""), "http://proxy:3129");
  EXPECT_EQ(proxy_for("http://deb.debian.org/debian", true, infra, ""), "http://proxy:3128");
  EXPECT_EQ(proxy_for("http://mirror.lab/debian", true, infra, "mirror.lab"), "");
  infra.guest_apt_proxy = "http://10.0.0.1:3142";
  EXPECT_EQ(proxy_for("http://deb.debian.org/debian", true, infra, ""), "http://10.0.0.1:3142");
  EXPECT_EQ(proxy_for("https://github.com/", false, infra, "github.com"), "");

  auto c = make_config(0, 0, 2, "none");
  c.infrastructure.guest_apt_mirror = "http://mirror.lab/debian/";
  c.infrastructure.guest_apt_proxy = "http://10.0.0.1:3142";
  auto p = make_plan(c);
  auto v = load_versions(kVersions);
  ASSERT_TRUE(v.ok());
  auto probes = plan_probes(p, c, nullptr, *v, step_names(c));
  ASSERT_EQ(probes.size(), 2u);
  EXPECT_EQ(probes[0].probes[0].url, "http://mirror.lab/debian/dists/{codename}/InRelease");
  EXPECT_EQ(probes[0].probes[0].proxy, "http://10.0.0.1:3142");
}

TEST(Reachability, ProbeOutputAndCommand) {
  auto r = parse_probe_output(
      "warming up\n[{\"ok\": true, \"skipped\": true}, {\"ok\": false, \"stage\": \"connect\", "
      "\"error\": \"cannot connect to 203.0.113.1:80: Network is unreachable\", \"status\": 0, "
      "\"seconds\": 0.001}]\n",
      2);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE((*r)[0].skipped);
  EXPECT_FALSE((*r)[1].ok);
  EXPECT_EQ((*r)[1].stage, "connect");
  EXPECT_FALSE(parse_probe_output("[]", 1).ok());
  EXPECT_FALSE(parse_probe_output("Traceback (most recent call last):", 1).ok());

  Probe pr;
  pr.url = "http://x/it's";
  std::string cmd = probe_command({pr}, 2.5);
  EXPECT_EQ(cmd.rfind("python3 -c ", 0), 0u);
  EXPECT_NE(cmd.find("\"timeout\":2.5"), std::string::npos);
  EXPECT_NE(cmd.find("it'\\''s"), std::string::npos);  // quoted for the guest's shell
}

TEST(Reachability, MessageNamesVmSourceReasonAndFixes) {
  ReachabilityReport r;
  r.seconds = 0.8;
  Probe key;
  key.url = "https://pkgs.k8s.io/core:/stable:/v1.27/deb/Release.key";
  key.source = key.url;
  key.steps = {"kubernetes_install"};
  Probe apt;
  apt.url = "http://deb.debian.org/debian/dists/{codename}/InRelease";
  apt.source = "apt";
  apt.steps = {"container_runtime", "kubernetes_install"};
  ProbeResult fail;
  fail.error = "cannot resolve pkgs.k8s.io: Temporary failure in name resolution";
  r.unreachable.push_back(
      {"cloud_controller", "cloud_controller_alice", "192.168.100.2", key, fail});
  fail.error = "cannot connect to deb.debian.org:80: Network is unreachable";
  r.unreachable.push_back({"cloud0", "cloud0_alice", "192.168.100.3", apt, fail});
  config::Infrastructure infra;
  infra.guest_internet = "none";
  std::string m = describe_unreachable(r, infra);
  EXPECT_NE(m.find("2 download source(s)"), std::string::npos) << m;
  EXPECT_NE(m.find("cloud_controller_alice (192.168.100.2): "
                   "https://pkgs.k8s.io/core:/stable:/v1.27/deb/Release.key "
                   "[kubernetes_install]: cannot resolve pkgs.k8s.io"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("[container_runtime, kubernetes_install]"), std::string::npos) << m;
  EXPECT_NE(m.find("guest_internet = nat"), std::string::npos) << m;
  EXPECT_NE(m.find("guest_http_proxy / guest_https_proxy"), std::string::npos) << m;
  EXPECT_NE(m.find("guest_apt_proxy"), std::string::npos) << m;
  EXPECT_NE(m.find("guest_apt_mirror"), std::string::npos) << m;
  EXPECT_NE(m.find("reachability_check = False"), std::string::npos) << m;

  infra.guest_internet = "nat";
  EXPECT_NE(describe_unreachable(r, infra).find("give the host an uplink"), std::string::npos);
}

TEST(Reachability, SkippedWhenOffOrNothingToDownload) {
  auto c = make_config(0, 0, 1, "none");
  auto p = make_plan(c);
  infra::Deployment d;
  c.infrastructure.reachability_check = false;
  auto r = check_reachability(p, c, d, nullptr, kVersions);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->skipped);
  EXPECT_EQ(r->skip_reason, "reachability_check = False");
  c.infrastructure.reachability_check = true;
  c.infrastructure.infra_only = true;
  r = check_reachability(p, c, d, nullptr, kVersions);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->skipped);
}

}  // namespace
}  // namespace continuum::software

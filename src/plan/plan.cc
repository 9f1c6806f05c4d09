// plan::make: Config + host facts -> Plan. Each step lives in its own file (internal.h).
#include "continuum/plan/plan.h"

#include <string>

#include "internal.h"

namespace continuum::plan {

const Node* Plan::find(const std::string& id_or_name) const {
  for (const Node& n : nodes)
    if (n.id == id_or_name || n.name == id_or_name) return &n;
  return nullptr;
}

const Link* Plan::tier_link(Tier a, Tier b) const {
  const std::string x = config::tier_name(a), y = config::tier_name(b);
  for (const Link& l : tier_links)
    if ((l.a == x && l.b == y) || (l.a == y && l.b == x)) return &l;
  return nullptr;
}

const Link* Plan::link_between(const Node& a, const Node& b) const {
  if (!network_emulation || a.id == b.id) return nullptr;
  for (const Link& l : pair_links)
    if ((l.a == a.id && l.b == b.id) || (l.a == b.id && l.b == a.id)) return &l;
  const Link* l = tier_link(a.tier, b.tier);
  return l && l->shaped ? l : nullptr;
}

namespace detail {

std::vector<std::string> make_playbooks(const config::Config& cfg) {
  // Folder names under playbooks/, in the order software::install starts them (it reads the
  // same configuration keys). infra_only: VMs only, no software phase (as upstream).
  if (cfg.infrastructure.infra_only || !cfg.benchmark) return {};
  const config::Benchmark& b = *cfg.benchmark;
  const std::string& rm = b.resource_manager;
  std::vector<std::string> out = {"base", "mosquitto"};
  bool kube = rm == "kubernetes" || rm == "kubecontrol" || rm == "kube_kata";
  if (kube || rm == "kubeedge") out.push_back("container_runtime");
  if (kube)
    out.push_back("kubernetes");
  else if (rm == "kubeedge")
    out.push_back("kubeedge");
  else if (rm == "mist")
    out.push_back("mist");
  if (b.observability && (kube || rm == "kubeedge")) out.push_back("observability");
  if (cfg.execution_model && cfg.execution_model->model == "openfaas") out.push_back("openfaas");
  // Scaphandre in the guests reads the host's per-VM energy over virtiofs; the host exporter
  // needs nothing inside the VMs.
  if (cfg.energy.enabled && cfg.energy.exporter == "guest") out.push_back("scaphandre");
  // Only image_classification deploys a program into the guests; the kubecontrol apps (empty,
  // stress, ...) are Kubernetes objects.
  if (!b.resource_manager_only && b.application == "image_classification")
    out.push_back("application");
  return out;
}

}  // namespace detail

Expected<Plan> make(const config::Config& cfg, const Environment& env) {
  const auto& infra = cfg.infrastructure;
  if (!infra.provider.empty() && infra.provider != "qemu")
    return make_error(
        cfg.file.string() + ": provider = " + infra.provider +
            " is accepted for compatibility, but continuum deploys only provider = qemu",
        2);
  Plan p;
  p.config_name = cfg.file.stem().string();
  p.user = env.user;
  p.mode = config::tier_name(cfg.mode());
  p.hosts = TRY(detail::make_hosts(cfg, env));

  std::vector<detail::Slot> slots;
  for (Tier t : {Tier::cloud, Tier::edge, Tier::endpoint}) {
    const config::TierSpec& ts = t == Tier::cloud  ? infra.cloud
                                 : t == Tier::edge ? infra.edge
                                                   : infra.endpoint;
    for (int i = 0; i < ts.nodes; ++i) slots.push_back(detail::Slot{t, ts.cores, 0, {}});
  }
  if (slots.empty())
    return make_error("cloud_nodes + edge_nodes + endpoint_nodes should be > 0", 2);
  TRY_STATUS(detail::place(infra.cpu_pin, slots, p.hosts));
  p.nodes = TRY(detail::name_nodes(cfg, env.user, slots, p.hosts));
  p.network = detail::make_network(cfg, env.user);

  p.network_emulation = infra.network_emulation;
  p.latency_is_rtt = infra.latency_is_rtt;
  p.network_verify = infra.network_verify;
  p.network_strict = infra.network_strict;
  TRY_STATUS(detail::make_links(cfg, p));

  p.playbooks = detail::make_playbooks(cfg);
  if (cfg.benchmark) {
    if (!cfg.benchmark->resource_manager_only) p.application = cfg.benchmark->application;
    p.repeats = cfg.benchmark->repeat;
  }
  for (const auto& w : cfg.workloads) p.workloads.push_back(w.name);
  return p;
}

}  // namespace continuum::plan

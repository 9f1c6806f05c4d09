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

std::vector<PlaybookStep> playbook_steps(const config::Config& cfg) {
  // infra_only: VMs only, no software phase (as the original).
  if (cfg.infrastructure.infra_only || !cfg.benchmark) return {};
  const config::Benchmark& b = *cfg.benchmark;
  const auto rm = b.resource_manager;
  std::vector<PlaybookStep> out;
  auto add = [&](std::string name, std::string file, std::vector<std::string> after) {
    out.push_back({std::move(name), std::move(file), std::move(after), {}});
  };
  add("base", "base/base.yml", {});
  // Brokers: cloud workers, edges and endpoints (the original's install.yml/install_mist.yml and
  // endpoint install.yml all start `mosquitto -d -p 1883`).
  add("mosquitto", "mosquitto/mosquitto.yml", {"base"});

  std::string rm_last;  // the step after which the resource manager is up
  if (config::uses_kubeadm(rm)) {
    add("container_runtime", "container_runtime/containerd.yml", {"base"});
    add("kubernetes_install", "kubernetes/install.yml", {"container_runtime"});
    add("kubernetes_control", "kubernetes/control.yml", {"kubernetes_install"});
    // The original starts workers concurrently and lets them poll for the join command; here
    // they start after the control plane, and the playbook waits for all nodes Ready.
    add("kubernetes_workers", "kubernetes/workers.yml", {"kubernetes_control"});
    rm_last = "kubernetes_workers";
  } else if (rm == config::ResourceManager::kubeedge) {
    add("container_runtime", "container_runtime/containerd.yml", {"base"});
    add("kubeedge_install", "kubeedge/install.yml", {"container_runtime"});
    add("kubeedge_control", "kubeedge/control.yml", {"kubeedge_install"});
    add("kubeedge_edges", "kubeedge/edges.yml", {"kubeedge_control"});
    add("kubeedge_control_log", "kubeedge/control_log.yml", {"kubeedge_edges"});
    add("kubeedge_edge_log", "kubeedge/edge_log.yml", {"kubeedge_control_log"});
    rm_last = "kubeedge_edge_log";
  } else if (rm == config::ResourceManager::mist) {
    add("mist", "mist/mist.yml", {"mosquitto"});
    rm_last = "mist";
  }
  if (b.observability && config::uses_kubernetes(rm)) {
    add("observability", "observability/observability.yml", {rm_last});
    rm_last = "observability";
  }
  if (cfg.execution_model && cfg.execution_model->model == "openfaas")
    add("openfaas", "openfaas/openfaas.yml", {rm_last.empty() ? std::string("base") : rm_last});
  // Scaphandre in the guests reads the host's per-VM energy over virtiofs; the host exporter
  // needs nothing inside the VMs.
  if (cfg.energy.enabled && cfg.energy.exporter == config::Exporter::guest) {
    add("scaphandre", "scaphandre/scaphandre.yml", {"base"});
    out.back().vars["scaphandre_port"] = std::to_string(cfg.energy.guest_port);
    out.back().vars["scaphandre_powercap_path"] = cfg.infrastructure.virtiofs_guest_dir;
    out.back().vars["scaphandre_share_tag"] = config::kVirtiofsTag;
  }
  // Only image_classification deploys a program into the guests; the kubecontrol apps (empty,
  // stress, ...) are Kubernetes objects. It is benchmark preparation: skipped with
  // resource_manager_only, as the original skips its registry and benchmark then.
  // With mist the programs come in container images instead: Docker started, pointed at the
  // run's registry, and the images pulled (the original pulled them into its base images).
  if (config::runs_in_containers(cfg))
    add("docker", "docker/docker.yml", {"base"});
  else if (!b.resource_manager_only && b.application == config::Application::image_classification)
    add("application", "application/image_classification.yml", {"mosquitto"});
  return out;
}

Expected<Plan> make(const config::Config& cfg, const Environment& env) {
  const auto& infra = cfg.infrastructure;
  if (infra.provider != config::Provider::none && infra.provider != config::Provider::qemu)
    return make_error(
        cfg.file.string() + ": provider = " + std::string(config::name(infra.provider)) +
            " is accepted for compatibility, but continuum deploys only provider = qemu",
        ExitCode::usage);
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
    return make_error("cloud_nodes + edge_nodes + endpoint_nodes should be > 0", ExitCode::usage);
  TRY_STATUS(detail::place(infra.cpu_pin, slots, p.hosts));
  p.nodes = TRY(detail::name_nodes(cfg, env.user, slots, p.hosts));
  p.network = detail::make_network(cfg, env.user);

  p.network_emulation = infra.network_emulation;
  p.latency_is_rtt = infra.latency_is_rtt;
  p.network_verify = infra.network_verify;
  p.network_strict = infra.network_strict;
  p.netperf = infra.netperf;
  p.netperf_seconds = infra.netperf_seconds;
  TRY_STATUS(detail::make_links(cfg, p));

  p.playbooks = playbook_steps(cfg);
  if (cfg.benchmark) {
    if (!cfg.benchmark->resource_manager_only)
      p.application = config::name(cfg.benchmark->application);
    p.repeats = cfg.benchmark->repeat;
  }
  for (const auto& w : cfg.workloads) p.workloads.push_back(w.name);
  return p;
}

}  // namespace continuum::plan

#include "continuum/software/software.h"

#include <spdlog/spdlog.h>

#include <cstdlib>

#include "continuum/report/events.h"
#include "continuum/software/inventory.h"
#include "continuum/util/files.h"
#include "continuum/util/interrupt.h"
#include "continuum/util/paths.h"
#include "continuum/util/strings.h"

namespace continuum::software {

std::filesystem::path playbook_root() { return util::data_dir() / "playbooks"; }

std::vector<PlaybookRun> playbooks_for(const config::Config& cfg,
                                       const std::filesystem::path& root) {
  std::vector<PlaybookRun> runs;
  if (cfg.infrastructure.infra_only || !cfg.benchmark) return runs;
  const config::Benchmark& b = *cfg.benchmark;
  const std::string& rm = b.resource_manager;
  auto add = [&](std::string name, const std::string& file, std::vector<std::string> after) {
    runs.push_back({std::move(name), root / file, std::move(after), {}});
  };

  add("base", "base/base.yml", {});
  // Brokers: cloud workers, edges and endpoints (the original's install.yml/install_mist.yml and
  // endpoint install.yml all start `mosquitto -d -p 1883`).
  add("mosquitto", "mosquitto/mosquitto.yml", {"base"});

  std::string rm_last;  // the step after which the resource manager is up
  if (rm == "kubernetes" || rm == "kubecontrol" || rm == "kube_kata") {
    add("container_runtime", "container_runtime/containerd.yml", {"base"});
    add("kubernetes_install", "kubernetes/install.yml", {"container_runtime"});
    add("kubernetes_control", "kubernetes/control.yml", {"kubernetes_install"});
    // The original starts workers concurrently and lets them poll for the join command; here
    // they simply start after the control plane, and the playbook waits for all nodes Ready.
    add("kubernetes_workers", "kubernetes/workers.yml", {"kubernetes_control"});
    rm_last = "kubernetes_workers";
    if (b.observability) {
      add("observability", "observability/observability.yml", {"kubernetes_workers"});
      rm_last = "observability";
    }
  } else if (rm == "kubeedge") {
    add("container_runtime", "container_runtime/containerd.yml", {"base"});
    add("kubeedge_install", "kubeedge/install.yml", {"container_runtime"});
    add("kubeedge_control", "kubeedge/control.yml", {"kubeedge_install"});
    add("kubeedge_edges", "kubeedge/edges.yml", {"kubeedge_control"});
    add("kubeedge_control_log", "kubeedge/control_log.yml", {"kubeedge_edges"});
    add("kubeedge_edge_log", "kubeedge/edge_log.yml", {"kubeedge_control_log"});
    rm_last = "kubeedge_edge_log";
    if (b.observability) {
      add("observability", "observability/observability.yml", {"kubeedge_edge_log"});
      rm_last = "observability";
    }
  } else if (rm == "mist") {
    add("mist", "mist/mist.yml", {"mosquitto"});
    rm_last = "mist";
  }
  if (cfg.execution_model && cfg.execution_model->model == "openfaas") {
    add("openfaas", "openfaas/openfaas.yml", {rm_last.empty() ? std::string("base") : rm_last});
  }
  if (cfg.energy.enabled && cfg.energy.exporter == "guest") {
    add("scaphandre", "scaphandre/scaphandre.yml", {"base"});
    runs.back().extra_vars["scaphandre_port"] = std::to_string(cfg.energy.guest_port);
    runs.back().extra_vars["scaphandre_powercap_path"] = cfg.infrastructure.virtiofs_guest_dir;
  }
  // The application is benchmark preparation: skipped with resource_manager_only, as the
  // original skips its registry and benchmark then.
  if (!b.resource_manager_only && b.application == "image_classification")
    add("application", "application/image_classification.yml", {"mosquitto"});
  return runs;
}

Status install(const plan::Plan& plan, const config::Config& cfg, const infra::Deployment& dep,
               const std::filesystem::path& run_dir, report::EventLog* events) {
  if (cfg.infrastructure.infra_only || !cfg.benchmark) {
    spdlog::info("software: infra_only, no software installed");
    return {};
  }
  const std::filesystem::path sw = run_dir / "software";
  if (events) events->emit("software", "start");
  auto t0 = std::chrono::steady_clock::now();

  std::string inventory = TRY(make_inventory(plan, cfg, dep));
  TRY_STATUS(util::write_file_atomic(sw / "inventory.yml", inventory));
  auto cp_dir = TRY(make_control_path_dir(sw));
  AnsibleSettings s;
  s.software_dir = sw;
  s.private_key = dep.private_key;
  s.known_hosts = dep.known_hosts.empty() ? run_dir / "known_hosts" : dep.known_hosts;
  s.control_path_dir = cp_dir;
  TRY_STATUS(util::write_file_atomic(sw / "ansible.cfg", make_ansible_cfg(s)));

  RunnerOptions opt;
  opt.software_dir = sw;
  opt.ansible_cfg = sw / "ansible.cfg";
  opt.netns = dep.netns;
  opt.timeout = std::chrono::seconds(
      cfg.benchmark->playbook_timeout > 0 ? cfg.benchmark->playbook_timeout : 3600);
  opt.cancel = util::interrupt_flag();  // Ctrl-C stops the running playbooks and starts no more

  std::vector<PlaybookRun> runs = playbooks_for(cfg, playbook_root());
  // The guest programs built or installed with continuum (util/paths.h); a guest image that
  // already has them skips the copy.
  const std::filesystem::path app_bin = util::app_dir();
  for (PlaybookRun& r : runs)
    if (r.name == "application" && !app_bin.empty())
      r.extra_vars["continuum_app_bin"] = app_bin.string();
  std::vector<std::string> names;
  for (const auto& r : runs) names.push_back(r.name);
  spdlog::info("software: {} playbook(s): {}", runs.size(), util::join(names, ", "));

  auto results = run_all(opt, runs, events);
  Status closed = close_control_masters(cp_dir);
  if (!closed.ok()) spdlog::warn("software: {}", closed.error().message);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (events)
    events->emit("software", "end", "", -1, "", {{"ok", results.ok()}, {"seconds", secs}});
  if (!results.ok()) {
    spdlog::error("software phase failed; logs and inventory kept in {}", sw.string());
    return std::move(results).error();
  }
  for (const auto& r : *results) spdlog::info("software: {:<24} {:>7.1f} s", r.name, r.seconds);
  spdlog::info("software phase done in {:.1f} s", secs);
  return {};
}

}  // namespace continuum::software

// config::preflight: the configurations the original accepts that this build cannot run, and the
// accepted keys that have no effect here. Each rule names the key a user changes to fix it; the
// reasons are the code paths of this build (src/benchmark, src/software, src/infra), which
// docs/compatibility.md tabulates.
#include "continuum/config/preflight.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "continuum/util/process.h"
#include "continuum/util/strings.h"

namespace continuum::config {
namespace {

// Builds the messages, each starting "FILE:LINE: [section] key = value" from where the key was set.
class Messages {
 public:
  Messages(const Config& c, Preflight& out) : c_(c), out_(out) {}

  void refuse(const std::string& section, const std::string& key, const std::string& fallback,
              const std::string& why) {
    refusals_.push_back({line(section, key),
                         head(section, key, fallback) + ": not supported by this build: " + why});
  }
  /// What this build could run but this host lacks (a program the configuration names).
  void unavailable(const std::string& section, const std::string& key, const std::string& fallback,
                   const std::string& why) {
    refusals_.push_back(
        {line(section, key), head(section, key, fallback) + ": cannot run on this host: " + why});
  }
  void no_effect(const std::string& section, const std::string& key, const std::string& why) {
    notes_.push_back({line(section, key),
                      head(section, key, "") + ": accepted for compatibility; no effect: " + why});
  }
  void differs(const std::string& section, const std::string& key, const std::string& fallback,
               const std::string& how) {
    notes_.push_back({line(section, key),
                      head(section, key, fallback) +
                          ": accepted for compatibility; differs from the original: " + how});
  }
  /// Moves the messages into the result, in file order as config::load reports its errors.
  void finish() {
    for (auto* v : {&refusals_, &notes_})
      std::stable_sort(v->begin(), v->end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [_, t] : refusals_) out_.refusals.push_back(std::move(t));
    for (auto& [_, t] : notes_) out_.notes.push_back(std::move(t));
  }
  bool present(const std::string& section, const std::string& key) const {
    return c_.where.count(section + "." + key) > 0;
  }

 private:
  std::string head(const std::string& section, const std::string& key,
                   const std::string& fallback) const {
    auto it = c_.where.find(section + "." + key);
    if (it == c_.where.end())
      return c_.file.string() + ": [" + section + "] " + key + " = " + fallback;
    const Location& l = it->second;
    return l.file + ":" + std::to_string(l.line) + ": [" + section + "] " +
           (l.key.empty() ? key : l.key) + " = " + l.value;
  }

  int line(const std::string& section, const std::string& key) const {
    auto it = c_.where.find(section + "." + key);
    return it == c_.where.end() ? 0 : it->second.line;
  }

  const Config& c_;
  Preflight& out_;
  std::vector<std::pair<int, std::string>> refusals_, notes_;
};

// Steps that download from the internet in the guests (apt repositories, release archives,
// container images); base, mosquitto, mist and the application use only the guest image.
bool downloads(const Config& c) {
  if (c.infrastructure.infra_only || !c.benchmark) return false;
  const Benchmark& b = *c.benchmark;
  if (uses_kubernetes(b.resource_manager)) return true;  // containerd, kubeadm/keadm, CNI, images
  return c.execution_model && c.execution_model->model == "openfaas";
}

void infrastructure_rules(const Config& c, Messages& m) {
  const Infrastructure& i = c.infrastructure;
  if (i.provider == Provider::gcp || i.provider == Provider::aws)
    m.refuse("infrastructure", "provider", std::string(name(i.provider)),
             "continuum creates its VMs with QEMU/libvirt on this host only; the " +
                 std::string(name(i.provider)) +
                 "_* keys are checked for compatibility, but this build has no " +
                 (i.provider == Provider::gcp ? std::string("Google Cloud") : std::string("AWS")) +
                 " deployment; use provider = qemu (the tier sizes stay; the " +
                 std::string(name(i.provider)) + "_* keys are then ignored)");
  // VMs on other hosts (qemu+ssh://): their disks, seeds and kernel are libvirt volumes there,
  // the network is the user's bridge on every host or continuum's own joined by a VXLAN, but a
  // virtiofs share is a directory on this machine.
  if (!i.external_physical_machines.empty()) {
    const std::string machines = util::join(i.external_physical_machines, ",");
    if (i.virtiofs)
      m.refuse("infrastructure", "external_physical_machines", machines,
               "virtiofs shares are directories on this machine, which VMs on other hosts "
               "cannot mount; set virtiofs = False or remove external_physical_machines");
  }
  // netperf is packaged from Debian 13 on; of the offline images only `energy` is Debian 13.
  if (i.netperf && i.base_image.empty() && !i.image_variant.empty() && i.image_variant != "energy")
    m.refuse("infrastructure", "netperf", "True",
             "the netperf matrix needs netperf in the guests, which only Debian 13 packages; the "
             "image_variant " +
                 i.image_variant +
                 " is Debian 12 without it. Set image_variant = energy (Debian 13 with netperf "
                 "and iperf3) or leave image_variant empty");
  else if (i.netperf && i.base_image.empty() && i.image_variant.empty() && runs_in_containers(c))
    m.refuse("infrastructure", "netperf", "True",
             "the netperf matrix needs netperf in the guests, and this benchmark runs containers, "
             "so the guests boot the docker image (Debian 12, no netperf); run the netperf matrix "
             "in an infra_only run of the same infrastructure");
  if (i.provider == Provider::qemu && i.network_mode == "managed" && i.guest_internet == "none" &&
      downloads(c) && i.guest_http_proxy.empty() && i.guest_https_proxy.empty() &&
      i.guest_apt_proxy.empty() && i.guest_apt_mirror.empty())
    m.refuse("infrastructure", "guest_internet", i.guest_internet,
             "the guests are isolated, and the " +
                 std::string(name(c.benchmark->resource_manager)) +
                 (c.execution_model ? std::string(" and openfaas") : std::string()) +
                 " playbooks download packages and container images; set guest_internet = nat, or "
                 "guest_http_proxy/guest_https_proxy (and guest_apt_proxy or guest_apt_mirror) to "
                 "sources "
                 "the guests can reach");
  if (m.present("infrastructure", "middleip_base"))
    m.no_effect("infrastructure", "middleip_base",
                "the original booted base-image VMs in this subnet to install software once; "
                "continuum builds "
                "its base image offline (`continuum image build`) and boots no base-image VM");
}

// The application this build runs: image_classification with resource_manager = none (programs
// over SSH) or mist (containers).
bool runs_application(const Benchmark& b) {
  return !b.resource_manager_only && b.application == Application::image_classification &&
         (b.resource_manager == ResourceManager::none ||
          b.resource_manager == ResourceManager::mist);
}

bool in_containers(const Benchmark& b) {
  return runs_application(b) && b.resource_manager == ResourceManager::mist;
}

void runtime_rules(const Benchmark& b, Messages& m) {
  if (b.resource_manager == ResourceManager::kube_kata && b.runtime != "runc")
    m.refuse("benchmark", "runtime", b.runtime,
             "Kata Containers is not installed by this build (the cluster is stock Kubernetes with "
             "containerd "
             "and runc), so the " +
                 b.runtime + " runtime class would not exist; use runtime = runc");
}

void application_rules(const Benchmark& b, bool openfaas, Messages& m) {
  const auto rm = b.resource_manager;
  const auto app = b.application;
  if (app == Application::empty || app == Application::empty_kata || app == Application::stress ||
      app == Application::mem_usage)
    m.refuse("benchmark", "application", std::string(name(app)),
             "the original's control-plane benchmark (pods of " + std::string(name(app)) +
                 " timed through Kubernetes binaries "
                 "instrumented by its authors, which were never published) is not implemented; "
                 "to install the "
                 "cluster only, remove application and set resource_manager_only = True; to "
                 "benchmark, use "
                 "application = image_classification with resource_manager = none");
  if (openfaas && app != Application::none)
    m.refuse("execution_model", "model", "openfaas",
             "the OpenFaaS benchmark (the classifier deployed as a function, the endpoints "
             "calling it over "
             "HTTP) is not implemented; remove the [execution_model] section, or set "
             "resource_manager_only "
             "= True and remove application to install Kubernetes and OpenFaaS only");
  if (app == Application::image_classification && uses_kubernetes(rm))
    m.refuse("benchmark", "resource_manager", std::string(name(rm)),
             "image_classification with resource_manager = " + std::string(name(rm)) +
                 " runs the original's worker containers as Kubernetes Jobs, which needs "
                 "Kubernetes' packages and images from the internet in the guests and has not run "
                 "here; the same container endpoints and images run with resource_manager = mist "
                 "(workers in docker on the edge nodes); or use resource_manager = none, or "
                 "resource_manager_only = True without application to install " +
                 std::string(name(rm)) + " only");
  if (app == Application::image_classification && rm == ResourceManager::mist &&
      b.applications_per_worker != 1)
    m.refuse("benchmark", "applications_per_worker", std::to_string(b.applications_per_worker),
             "several worker containers on one edge would share its broker's topic, so each "
             "would receive every endpoint's frames (the original processed them twice); use "
             "applications_per_worker = 1 (for more workers, more edge nodes)");
  if (runs_application(b) && b.direct_offload && b.applications_per_worker != 1)
    m.refuse(
        "benchmark", "applications_per_worker", std::to_string(b.applications_per_worker),
        "direct_offload runs one worker program per cloud or edge node; several applications per "
        "worker are not implemented; use applications_per_worker = 1 (for more workers, more "
        "cloud or "
        "edge nodes)");
}

void resource_manager_notes(const Benchmark& b, Messages& m) {
  const auto rm = b.resource_manager;
  if (rm == ResourceManager::kubecontrol || rm == ResourceManager::kube_kata)
    m.differs("benchmark", "resource_manager", std::string(name(rm)),
              "installs stock Kubernetes " + b.kube_version +
                  " as resource_manager = kubernetes does; the "
                  "original's " +
                  std::string(name(rm)) +
                  " replaced the node binaries with unpublished instrumented builds" +
                  (rm == ResourceManager::kube_kata ? std::string(" and added Kata Containers")
                                                    : std::string()));
  if (m.present("benchmark", "kube_deployment"))
    m.no_effect("benchmark", "kube_deployment",
                "used only by the kubecontrol/kube_kata benchmark applications, which this build "
                "does not run");
  if (m.present("benchmark", "runtime_filesystem"))
    m.no_effect("benchmark", "runtime_filesystem",
                "containerd keeps its default snapshotter (overlayfs); the original set up "
                "devmapper for Kata "
                "Containers, which this build does not install");
}

// What a key of the application means depends on what runs: this build's application, no
// application at all, or (refused above) the original's container benchmark, about which
// nothing more is said.
class AppKeys {
 public:
  AppKeys(const Benchmark& b, Messages& m)
      : m_(m),
        runs_app_(runs_application(b)),
        no_app_at_all_(b.resource_manager_only || b.application == Application::none),
        no_app_(b.resource_manager_only
                    ? "resource_manager_only = True runs no application (as in the original)"
                    : "the configuration runs no application, only its [workload] sections") {}

  void operator()(const std::string& key, const std::string& why_runs, bool differs = false) const {
    if (runs_app_ && !why_runs.empty()) {
      if (differs)
        m_.differs("benchmark", key, "", why_runs);
      else
        m_.no_effect("benchmark", key, why_runs);
    } else if (no_app_at_all_) {
      m_.no_effect("benchmark", key, no_app_);
    }
  }

 private:
  Messages& m_;
  const bool runs_app_;
  const bool no_app_at_all_;
  const std::string no_app_;
};

void application_option_notes(const Benchmark& b, const AppKeys& app_key, Messages& m) {
  const auto rm = b.resource_manager;
  // mist: docker_pull and the resources have the original's effect (fresh images; docker limits).
  if (b.docker_pull && !in_containers(b))
    app_key("docker_pull",
            "resource_manager = none runs the programs installed in the guest image; no container "
            "image is pulled");
  if (b.cache_worker)
    app_key("cache_worker",
            "the original's warm-up run belongs to its Kubernetes/KubeEdge image_classification "
            "benchmark; the programs of resource_manager = none need no image cache");
  if (b.applications_per_worker != 1 && !(runs_application(b) && b.direct_offload) &&
      !in_containers(b))
    app_key("applications_per_worker",
            "the endpoint-only mode of resource_manager = none has no workers (as in the "
            "original); direct_offload = True would use workers");
  if (b.observability && (rm == ResourceManager::none || rm == ResourceManager::mist))
    m.no_effect("benchmark", "observability",
                "it installs Prometheus and Grafana (kube-prometheus) into a Kubernetes cluster, "
                "and resource_manager "
                "= " +
                    std::string(name(rm)) + " has none");
}

// The resources of the application's programs, when set in the file.
void application_resource_notes(const Benchmark& b, const AppKeys& app_key, const Messages& m) {
  if (in_containers(b)) return;  // docker --cpus/--memory, as the original
  const bool offload = runs_application(b) && b.direct_offload;
  if (m.present("benchmark", "application_worker_cpu"))
    app_key("application_worker_cpu",
            offload ? "sets the worker program's threads (CPU_THREADS = max(1, int(value))) "
                      "without a CPU limit; the "
                      "original also requested that many CPUs for its Kubernetes pod"
                    : "the endpoint-only mode has no workers (as in the original)",
            offload);
  if (m.present("benchmark", "application_worker_memory"))
    app_key("application_worker_memory",
            offload ? "the worker program runs without a memory limit (the VM's memory bounds it); "
                      "the original "
                      "requested it for its Kubernetes pod"
                    : "the endpoint-only mode has no workers (as in the original)");
  if (m.present("benchmark", "application_endpoint_cpu"))
    app_key("application_endpoint_cpu",
            offload
                ? "the publishing endpoint program runs one thread, without a CPU limit"
                : "sets the threads of the endpoint's combined program (CPU_THREADS = max(1, "
                  "int(value))) "
                  "without a CPU limit; the original also limited its container to that many CPUs",
            !offload);
  if (m.present("benchmark", "application_endpoint_memory"))
    app_key("application_endpoint_memory",
            "the endpoint program runs without a memory limit (the VM's memory bounds it); the "
            "original limited "
            "its docker container");
}

void benchmark_rules(const Config& c, Messages& m) {
  if (c.infrastructure.infra_only || !c.benchmark) return;
  const Benchmark& b = *c.benchmark;
  const bool openfaas = c.execution_model && c.execution_model->model == "openfaas";
  runtime_rules(b, m);
  if (!b.resource_manager_only) application_rules(b, openfaas, m);

  // Keys accepted without effect, or with another effect, on what this build runs.
  resource_manager_notes(b, m);
  const AppKeys app_key(b, m);
  application_option_notes(b, app_key, m);
  application_resource_notes(b, app_key, m);
}

}  // namespace

// The exporters continuum starts: a program that is not on this host would fail the run after the
// VMs were created.
void energy_rules(const Config& cfg, Messages& m) {
  const Energy& e = cfg.energy;
  if (!e.enabled || e.exporter_command.empty()) return;
  const std::string program = exporter_program(e.exporter_command);
  if (!util::have_program(program))
    m.unavailable("energy", "exporter_command", util::shell_join(e.exporter_command),
                  "its program `" + program + "` is not on this host (not an executable in PATH)");
}

Preflight preflight(const Config& cfg) {
  Preflight p;
  Messages m(cfg, p);
  infrastructure_rules(cfg, m);
  benchmark_rules(cfg, m);
  energy_rules(cfg, m);
  m.finish();
  return p;
}

}  // namespace continuum::config

#pragma once
// The typed, validated configuration (docs/design.md §2, §4). config::load parses one INI file,
// checks every key of the original tool (docs/original.md §2) plus continuum's own, and returns
// either a Config or every error of the file at once, each naming FILE:LINE, section, key and
// value.
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "continuum/util/expected.h"

namespace continuum::config {

/// Where a value came from, for messages: "bench.cfg:12: [benchmark] frequency = 0: ...".
struct Location {
  Location() = default;
  // A constructor rather than an aggregate: {file, line} stays valid without naming key and value.
  Location(std::string f, int l, std::string k = {}, std::string v = {})
      : file(std::move(f)), line(l), key(std::move(k)), value(std::move(v)) {}
  std::string file;
  int line = 0;
  std::string key;    ///< as written in the file ("" for a section header)
  std::string value;  ///< as written, after unquoting
};

enum class Tier { cloud, edge, endpoint };
const char* tier_name(Tier t);

// The closed choices of the configuration. name() is the spelling a configuration uses (and the
// logs, the plan and the inventory print); it is "" for `none` where the key was absent.

/// [infrastructure] provider. Only qemu deploys (src/config/preflight.cc says why the others are
/// refused).
enum class Provider { none, qemu, gcp, aws, baremetal };
/// [benchmark] resource_manager.
enum class ResourceManager { none, kubernetes, kubeedge, mist, kubecontrol, kube_kata };
/// [benchmark] application; none when the key is absent.
enum class Application { none, image_classification, empty, empty_kata, mem_usage, stress };
/// [energy] exporter: one exporter per VM on the host, or Scaphandre inside each guest.
enum class Exporter { host, guest };
/// [energy] scope: scrape during the benchmark only, or over the whole run (VMs up to teardown).
enum class EnergyScope { benchmark, run };
/// [energy] exporter_kind: which metrics are a VM's (or the host's) energy (src/energy).
enum class ExporterKind { scaphandre, node_exporter, kepler };

std::string_view name(Provider v);
std::string_view name(ResourceManager v);
std::string_view name(Application v);
std::string_view name(Exporter v);
std::string_view name(EnergyScope v);
std::string_view name(ExporterKind v);

/// The choice a configuration spells `s` ("" is none where none has no spelling); nullopt when
/// there is no such choice.
std::optional<Provider> provider_named(std::string_view s);
std::optional<ResourceManager> resource_manager_named(std::string_view s);
std::optional<Application> application_named(std::string_view s);
std::optional<Exporter> exporter_named(std::string_view s);

/// Kubernetes installed with kubeadm on a control plane and workers: kubernetes, kubecontrol,
/// kube_kata.
bool uses_kubeadm(ResourceManager rm);
/// Kubernetes in any form, KubeEdge included.
bool uses_kubernetes(ResourceManager rm);

/// Resources of one tier (`cloud_nodes`, `cloud_cores`, ...).
struct TierSpec {
  int nodes = 0;
  int cores = 0;
  int memory_gb = 0;       ///< integer GB, as the original
  double quota = 0;        ///< 0.1..1.0, CPU bandwidth per vCPU
  int read_speed_mb = 0;   ///< MB/s, 0 = unlimited (the original applied it as bytes/s)
  int write_speed_mb = 0;  ///< MB/s, 0 = unlimited
};

/// One link's emulation override; a negative value means "use the default/preset" (-1 upstream).
struct LinkOverride {
  double latency_avg = -1;  ///< ms
  double latency_var = -1;  ///< ms
  double throughput = -1;   ///< Mbit/s
  double loss = -1;         ///< percent (new)
};

/// `[link A B]` (new): override for one pair of nodes, by node id (cloud_controller, cloud0,
/// edge2, endpoint5: the VM name without the user suffix) or tier name.
struct PairOverride {
  std::string a, b;
  LinkOverride values;
  Location where;
};

struct Infrastructure {
  Provider provider = Provider::none;
  bool infra_only = false;
  TierSpec cloud, edge, endpoint;
  bool cpu_pin = false;
  std::vector<std::string> external_physical_machines;  ///< user@host
  bool netperf = false;
  int netperf_seconds = 10;    ///< new: length of each netperf test (netperf's own default)
  bool resource_check = true;  ///< new: check vCPUs, memory, quota, pinning, disk limits
  std::string base_path;       ///< "~" expanded, trailing '/' removed
  std::string prefix_ip = "192.168";
  int middle_ip = 100;
  int middle_ip_base = 90;
  bool delete_vms = false;  ///< key `delete`

  // Network emulation (keys exist only when network_emulation = True, as upstream).
  bool network_emulation = false;
  std::string wireless_network_preset = "4g";
  LinkOverride cloud_link, edge_link, cloud_edge_link, cloud_endpoint_link, edge_endpoint_link;
  LinkOverride endpoint_link;   ///< new: endpoint<->endpoint (upstream: never shaped)
  bool latency_is_rtt = false;  ///< new: configured latency is the round trip, not one way
  bool network_verify = true;   ///< new: measure RTT matrix after applying
  bool network_strict = false;  ///< new: a link off by > max(2 ms, 20 %) is an error
  std::vector<PairOverride> pair_overrides;

  // Provider-specific keys (gcp_*, aws_*), kept verbatim for the providers continuum does not run.
  std::map<std::string, std::string> provider_options;

  // New keys (docs/design.md §4).
  std::string libvirt_uri = "qemu:///system";  ///< hypervisor of the local host
  std::string accelerator = "auto";            ///< auto | kvm | tcg
  std::string base_image;                      ///< "" = offline image; path or http(s) URL
  std::string base_image_sha256;               ///< checksum for a URL base image
  /// Offline image recipe (default | cloudinit | docker | energy); "" = chosen from what the run
  /// needs (docker for mist, energy for Scaphandre in the guests).
  std::string image_variant;
  std::string network_mode = "managed";  ///< managed (libvirt network) | bridge
  std::string bridge_name = "br0";       ///< bridge for network_mode = bridge
  bool virtiofs = false;                 ///< per-VM shared folder (alias: virtiofsd)
  std::string virtiofs_host_dir = "/var/lib/libvirt/scaphandre";  ///< + /<vm>
  std::string virtiofs_guest_dir = "/var/scaphandre";
  std::string ssh_key;     ///< "~" expanded; load() fills $HOME/.ssh/id_rsa_continuum
  int boot_timeout = 600;  ///< s, per VM to SSH login
  // Guest internet (managed network): how the guests reach package sources and registries.
  std::string guest_internet = "nat";  ///< nat (libvirt NAT to the host's uplink) | none (isolated)
  std::string guest_http_proxy;        ///< "" = none; http(s)://host[:port]
  std::string guest_https_proxy;       ///< "" = none; http(s)://host[:port]
  std::string guest_no_proxy;          ///< comma list, as given
  std::string guest_apt_proxy;         ///< "" = none; e.g. http://10.0.0.1:3142 (apt-cacher-ng)
  std::string guest_apt_mirror;        ///< "" = Debian's default (deb.debian.org); http(s) URL
  bool reachability_check = true;      ///< probe the playbooks' sources from the guests after boot
  double reachability_timeout = 5;     ///< s per probe, > 0
};

struct Benchmark {
  ResourceManager resource_manager = ResourceManager::none;
  bool resource_manager_only = false;
  bool docker_pull = false;
  Application application = Application::none;
  double application_worker_cpu = 0;
  double application_worker_memory = 0;  ///< GB
  double application_endpoint_cpu = 0;
  double application_endpoint_memory = 0;
  int applications_per_worker = 1;
  bool observability = false;
  // Plugin keys.
  bool cache_worker = false;
  std::string kube_version = "v1.27.0";
  std::string kube_deployment = "pod";
  std::string runtime = "runc";
  std::string runtime_filesystem = "devmapper";
  int frequency = 0;           ///< image_classification, images/s per endpoint
  int duration = 300;          ///< image_classification, s
  int sleep_time = 0;          ///< empty, empty_kata
  int stress_app_timeout = 0;  ///< stress
  // New keys.
  int repeat = 1;               ///< whole benchmark phase N times
  double repeat_pause = 0;      ///< s between repeats
  int playbook_timeout = 3600;  ///< s per ansible-playbook run
  int benchmark_timeout = 0;    ///< s for the whole app run; 0 = duration*3 + 600
  /// Only with resource_manager = none: the workers run over SSH on the cloud nodes (edge nodes
  /// when there are edges) and the endpoints offload to them. False: the original's endpoint-only
  /// mode, each endpoint generates and processes its own images.
  bool direct_offload = false;
};

/// `[workload NAME]` (new): a named command run over SSH on chosen nodes.
struct SshWorkload {
  std::string name;
  std::string command;             ///< run by the guest's /bin/sh as given by the user
  std::vector<std::string> nodes;  ///< node ids or tier names (cloud, edge, endpoint)
  int repeat = 1;
  int warmup = 0;
  double timeout = 600;  ///< s per run
  std::map<std::string, std::string> env;
  bool parallel = false;  ///< run on all selected nodes at once
  /// Runs once before the first benchmark repeat (loading data, starting a server), outside the
  /// measured repeats: its own event phase setup:<name>; a failure stops the benchmark.
  bool setup = false;
  Location where;
};

/// `[energy]` (new): Scaphandre/Prometheus scraping during the benchmark.
struct Energy {
  bool enabled = false;
  Exporter exporter = Exporter::host;
  std::string host_address = "127.0.0.1";
  int host_port_base = 8080;  ///< VM i (plan order) at host_port_base + i
  int guest_port = 8080;
  std::string path = "/metrics";
  double interval = 1.0;        ///< s between scrapes
  double scrape_timeout = 2.0;  ///< s
  bool host_feed = false;       ///< write per-VM energy_uj into virtiofs shares
  std::string powercap_path = "/sys/class/powercap/intel-rapl:0";
  /// Per VM, the fraction of expected scrapes (window / interval) that must produce a sample;
  /// below it the run fails (exit 1, results kept).
  double min_coverage = 0.5;
  EnergyScope scope = EnergyScope::benchmark;
  ExporterKind exporter_kind = ExporterKind::scaphandre;
  /// exporter = host: the command that starts one VM's exporter, split into words (no shell);
  /// each word may hold the placeholders of kExporterPlaceholders. Empty: the user starts them.
  std::vector<std::string> exporter_command;
  double exporter_start_timeout = 30;  ///< s until every started exporter answers
};

/// A leading word NAME=value of [energy] exporter_command: the exporter's environment, as a shell
/// reads `NAME=value program ...`.
bool is_env_assignment(std::string_view word);
/// The program of [energy] exporter_command: its first word that is not NAME=value ("" if none).
std::string exporter_program(const std::vector<std::string>& command);

/// The mount tag of every VM's virtiofs share: in the domain XML, the seed's fstab, the scaphandre
/// playbook and the docs. The seed's energy notes used `scaphandre`; so does everything here.
inline constexpr const char* kVirtiofsTag = "scaphandre";

/// The placeholders of [energy] exporter_command: the VM's domain name, its index in plan order,
/// its port (host_port_base + index), its share directory (virtiofs_host_dir/<vm>) and
/// host_address.
inline const char* const kExporterPlaceholders[] = {"vm", "index", "port", "share", "address"};

struct ExecutionModel {
  std::string model;  ///< openfaas
};

struct Config {
  std::filesystem::path file;
  /// [experiment] name: carried by every event, so that logs of several experiments stay apart
  /// once collected; defaults to the configuration file's name without .cfg.
  std::string experiment;
  Infrastructure infrastructure;
  std::optional<Benchmark> benchmark;  ///< absent when infra_only
  std::optional<ExecutionModel> execution_model;
  std::vector<SshWorkload> workloads;
  Energy energy;
  /// "section.key" -> where it was set; keys not in the file are absent. The key is lower case
  /// (keys are case-insensitive: "infrastructure.prefixip"), the section as in its header
  /// ("workload q1.command", "link cloud0 endpoint0.loss"); a [link]/[workload] header text alone
  /// ("workload q1") maps to the header line.
  std::map<std::string, Location> where;
  /// Non-fatal remarks (keys ignored for this provider/resource manager, ...), each
  /// "FILE:LINE: text" like the errors.
  std::vector<std::string> warnings;

  /// mode as upstream: edge if edge nodes, else cloud if cloud nodes, else endpoint.
  Tier mode() const;
};

/// The benchmark runs the application in containers (resource_manager = mist): the guests need a
/// container engine, and the run builds the application's images and serves them from a registry.
bool runs_in_containers(const Config& c);

/// Parses and validates. On failure the Error's message lists every problem, one per line, and
/// exit_code is 2.
Expected<Config> load(const std::filesystem::path& file);

/// As load(), from text already in memory; `name` is used in messages and Config::file (tests,
/// fuzzing). The text must be UTF-8 without NUL bytes, as load() checks for files.
Expected<Config> load_text(std::string_view text, const std::filesystem::path& name);

}  // namespace continuum::config

// config::load: reads one INI file (ini_file.cc), applies the schema of every key of the original
// tool (docs/original.md §2) plus continuum's own (docs/configuration.md), runs the original's
// cross-checks (§2.7), and reports every problem of the file at once.
#include "continuum/config/config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "continuum/util/files.h"
#include "continuum/util/strings.h"
#include "ini_file.h"
#include "schema.h"

namespace continuum::config {

namespace {

// One table per choice: the configuration's spelling and the value. The loader's lists of
// allowed values are made from these, so the two cannot drift apart.
template <typename E>
using Names = std::vector<std::pair<std::string_view, E>>;

const Names<Provider> kProviderNames = {{"qemu", Provider::qemu},
                                        {"gcp", Provider::gcp},
                                        {"aws", Provider::aws},
                                        {"baremetal", Provider::baremetal}};
const Names<ResourceManager> kResourceManagerNames = {{"kubernetes", ResourceManager::kubernetes},
                                                      {"kubeedge", ResourceManager::kubeedge},
                                                      {"mist", ResourceManager::mist},
                                                      {"none", ResourceManager::none},
                                                      {"kubecontrol", ResourceManager::kubecontrol},
                                                      {"kube_kata", ResourceManager::kube_kata}};
const Names<Application> kApplicationNames = {
    {"image_classification", Application::image_classification},
    {"empty", Application::empty},
    {"empty_kata", Application::empty_kata},
    {"mem_usage", Application::mem_usage},
    {"stress", Application::stress}};
const Names<Exporter> kExporterNames = {{"host", Exporter::host}, {"guest", Exporter::guest}};
const Names<EnergyScope> kScopeNames = {{"benchmark", EnergyScope::benchmark},
                                        {"run", EnergyScope::run}};
const Names<ExporterKind> kExporterKindNames = {{"scaphandre", ExporterKind::scaphandre},
                                                {"node_exporter", ExporterKind::node_exporter},
                                                {"kepler", ExporterKind::kepler}};

template <typename E>
std::string_view name_in(const Names<E>& names, E v) {
  for (const auto& [n, e] : names)
    if (e == v) return n;
  return "";
}

template <typename E>
std::vector<std::string> spellings(const Names<E>& names) {
  std::vector<std::string> out;
  for (const auto& [n, e] : names) out.emplace_back(n);
  return out;
}

template <typename E>
E value_of(const Names<E>& names, std::string_view spelling, E fallback) {
  for (const auto& [n, e] : names)
    if (n == spelling) return e;
  return fallback;
}

}  // namespace

std::string_view name(Provider v) { return name_in(kProviderNames, v); }
std::string_view name(ResourceManager v) { return name_in(kResourceManagerNames, v); }
std::string_view name(Application v) { return name_in(kApplicationNames, v); }
std::string_view name(Exporter v) { return name_in(kExporterNames, v); }
std::string_view name(EnergyScope v) { return name_in(kScopeNames, v); }
std::string_view name(ExporterKind v) { return name_in(kExporterKindNames, v); }

template <typename E>
std::optional<E> named_in(const Names<E>& names, std::string_view spelling,
                          std::optional<E> empty) {
  if (spelling.empty()) return empty;
  for (const auto& [n, e] : names)
    if (n == spelling) return e;
  return std::nullopt;
}

std::optional<Provider> provider_named(std::string_view s) {
  return named_in(kProviderNames, s, std::optional(Provider::none));
}
std::optional<ResourceManager> resource_manager_named(std::string_view s) {
  return named_in(kResourceManagerNames, s, std::optional<ResourceManager>());
}
std::optional<Application> application_named(std::string_view s) {
  return named_in(kApplicationNames, s, std::optional(Application::none));
}
std::optional<Exporter> exporter_named(std::string_view s) {
  return named_in(kExporterNames, s, std::optional<Exporter>());
}

bool is_env_assignment(std::string_view w) {
  const size_t eq = w.find('=');
  if (eq == std::string_view::npos || eq == 0 || (w[0] >= '0' && w[0] <= '9')) return false;
  for (size_t i = 0; i < eq; ++i) {
    const char c = w[i];
    if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
      return false;
  }
  return true;
}

std::string exporter_program(const std::vector<std::string>& command) {
  for (const auto& w : command)
    if (!is_env_assignment(w)) return w;
  return "";
}

bool uses_kubeadm(ResourceManager rm) {
  return rm == ResourceManager::kubernetes || rm == ResourceManager::kubecontrol ||
         rm == ResourceManager::kube_kata;
}
bool uses_kubernetes(ResourceManager rm) {
  return uses_kubeadm(rm) || rm == ResourceManager::kubeedge;
}

bool runs_in_containers(const Config& c) {
  if (c.infrastructure.infra_only || !c.benchmark) return false;
  const Benchmark& b = *c.benchmark;
  return !b.resource_manager_only && b.application == Application::image_classification &&
         b.resource_manager == ResourceManager::mist;
}

const char* tier_name(Tier t) {
  switch (t) {
    case Tier::cloud:
      return "cloud";
    case Tier::edge:
      return "edge";
    case Tier::endpoint:
      return "endpoint";
  }
  return "?";
}

Tier Config::mode() const {
  if (infrastructure.edge.nodes > 0) return Tier::edge;
  if (infrastructure.cloud.nodes > 0) return Tier::cloud;
  return Tier::endpoint;
}

namespace {

namespace fs = std::filesystem;
using detail::Ctx;
using detail::IniSection;
using detail::Need;
using detail::Sec;

constexpr double kInf = std::numeric_limits<double>::infinity();

const std::vector<std::string> kProviders = spellings(kProviderNames);
const std::vector<std::string> kResourceManagers = spellings(kResourceManagerNames);
const std::vector<std::string> kApplications = spellings(kApplicationNames);
const std::vector<std::string> kTiers = {"cloud", "edge", "endpoint"};
// Network pairs: upstream's five plus endpoint<->endpoint (new).
const std::vector<std::string> kPairs = {"cloud",          "edge",          "cloud_edge",
                                         "cloud_endpoint", "edge_endpoint", "endpoint"};
const std::vector<std::string> kQemuKeys = {
    "libvirt_uri",         "accelerator",       "base_image",         "base_image_sha256",
    "network_mode",        "bridge_name",       "image_variant",      "virtiofs",
    "virtiofsd",           "virtiofs_host_dir", "virtiofs_guest_dir", "ssh_key",
    "boot_timeout",        "guest_internet",    "guest_http_proxy",   "guest_https_proxy",
    "guest_no_proxy",      "guest_apt_proxy",   "guest_apt_mirror",   "reachability_check",
    "reachability_timeout"};

// Known keys per section kind -> when they are used (shown when a key is ignored).
std::map<std::string, std::string> infrastructure_universe() {
  std::map<std::string, std::string> u;
  const std::string always = "always";
  for (const char* k : {"provider", "infra_only", "cpu_pin", "external_physical_machines",
                        "netperf", "netperf_seconds", "resource_check", "base_path", "prefixip",
                        "middleip", "middleip_base", "delete", "network_emulation"})
    u[k] = always;
  for (const auto& t : kTiers)
    for (const char* s : {"_nodes", "_cores", "_memory", "_quota", "_read_speed", "_write_speed"})
      u[t + s] = always;
  const std::string net = "network_emulation = True";
  u["wireless_network_preset"] = net;
  for (const auto& p : kPairs)
    for (const char* s : {"_latency_avg", "_latency_var", "_throughput", "_loss"}) u[p + s] = net;
  u["latency_is_rtt"] = u["network_verify"] = u["network_strict"] = net;
  for (const char* k : {"gcp_cloud", "gcp_edge", "gcp_endpoint", "gcp_region", "gcp_zone",
                        "gcp_project", "gcp_credentials"})
    u[k] = "provider = gcp";
  for (const char* k : {"aws_cloud", "aws_edge", "aws_endpoint", "aws_region", "aws_zone",
                        "aws_access_keys", "aws_secret_access_keys", "aws_ami"})
    u[k] = "provider = aws";
  for (const auto& k : kQemuKeys) u[k] = "provider = qemu";
  return u;
}

std::map<std::string, std::string> benchmark_universe() {
  std::map<std::string, std::string> u;
  for (const char* k :
       {"resource_manager", "resource_manager_only", "docker_pull", "application",
        "application_worker_cpu", "application_worker_memory", "application_endpoint_cpu",
        "application_endpoint_memory", "applications_per_worker", "observability", "repeat",
        "repeat_pause", "playbook_timeout", "benchmark_timeout", "direct_offload"})
    u[k] = "always";
  u["cache_worker"] = "resource_manager = kubernetes, kubeedge, kubecontrol or kube_kata";
  u["kube_version"] = "resource_manager = kubernetes, kubecontrol or kube_kata";
  u["kube_deployment"] = "resource_manager = kubecontrol or kube_kata";
  u["runtime"] = "resource_manager = kube_kata";
  u["runtime_filesystem"] = "resource_manager = kube_kata";
  u["frequency"] = "application = image_classification";
  u["duration"] = "application = image_classification";
  u["sleep_time"] = "application = empty or empty_kata";
  u["stress_app_timeout"] = "application = stress";
  return u;
}

const std::map<std::string, std::string>& universe(const std::string& kind) {
  static const std::map<std::string, std::map<std::string, std::string>> all = [] {
    std::map<std::string, std::map<std::string, std::string>> m;
    m["infrastructure"] = infrastructure_universe();
    m["benchmark"] = benchmark_universe();
    m["execution_model"] = {{"model", "always"}};
    for (const char* k :
         {"enabled", "exporter", "host_address", "host_port_base", "guest_port", "path", "interval",
          "scrape_timeout", "host_feed", "powercap_path", "min_coverage", "scope", "exporter_kind",
          "exporter_command", "exporter_start_timeout"})
      m["energy"][k] = "enabled = True";
    m["experiment"]["name"] = "always";
    for (const char* k : {"latency_avg", "latency_var", "throughput", "loss"})
      m["link"][k] = "network_emulation = True";
    for (const char* k :
         {"command", "nodes", "repeat", "warmup", "timeout", "env", "parallel", "setup"})
      m["workload"][k] = "always";
    return m;
  }();
  return all.at(kind);
}

TierSpec& tier_spec(Infrastructure& inf, const std::string& t) {
  if (t == "cloud") return inf.cloud;
  if (t == "edge") return inf.edge;
  return inf.endpoint;
}

LinkOverride& pair_link(Infrastructure& inf, const std::string& p) {
  if (p == "cloud") return inf.cloud_link;
  if (p == "edge") return inf.edge_link;
  if (p == "cloud_edge") return inf.cloud_edge_link;
  if (p == "cloud_endpoint") return inf.cloud_endpoint_link;
  if (p == "edge_endpoint") return inf.edge_endpoint_link;
  return inf.endpoint_link;
}

bool is_absolute(const std::string& p) { return !p.empty() && p[0] == '/'; }

bool is_hex64(const std::string& s) {
  if (s.size() != 64) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

// "" when `v` is http(s)://host[:port] followed by "/" or, with `path_ok`, by a path; else what
// is wrong. Guests use these URLs in apt and proxy settings, which take nothing else (no user
// info, no query).
std::string url_problem(const std::string& v, bool path_ok) {
  std::string rest;
  if (util::starts_with(v, "http://"))
    rest = v.substr(7);
  else if (util::starts_with(v, "https://"))
    rest = v.substr(8);
  else
    return "not an http:// or https:// URL";
  size_t slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  std::string path = slash == std::string::npos ? "" : rest.substr(slash);
  if (!path.empty() && path != "/" && !path_ok)
    return "has a path; a proxy is scheme://host[:port]";
  if (path.find_first_of(" \t?#") != std::string::npos) return "the path has a space, ? or #";
  if (hostport.find('@') != std::string::npos)
    return "has user@ or user:password@, which the guests' apt and proxy settings would expose; "
           "use a proxy "
           "that needs no credentials, or one that allows the guests' addresses";
  std::string host = hostport, port;
  if (!hostport.empty() && hostport[0] == '[') {
    size_t close = hostport.find(']');
    if (close == std::string::npos) return "unterminated [IPv6] host";
    host = hostport.substr(0, close + 1);
    if (close + 1 < hostport.size()) {
      if (hostport[close + 1] != ':') return "junk after the [IPv6] host";
      port = hostport.substr(close + 2);
      if (port.empty()) return "empty port";
    }
  } else if (size_t colon = hostport.find(':'); colon != std::string::npos) {
    host = hostport.substr(0, colon);
    port = hostport.substr(colon + 1);
    if (port.empty()) return "empty port";
  }
  if (host.empty()) return "no host";
  if (host[0] != '[' && !std::all_of(host.begin(), host.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
      }))
    return "the host `" + host + "` is not a host name or address";
  if (!port.empty()) {
    long n = 0;
    if (!detail::parse_int(port, n) || n < 1 || n > 65535 || port[0] == '+' || port[0] == '-')
      return "the port `" + port + "` is not 1 to 65535";
  }
  return "";
}

bool is_name(const std::string& s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

bool is_env_name(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

// The node ids the plan will create, as upstream names them (docs/original.md §4.2) without the
// user suffix: the controller exists when a resource manager other than mist runs on cloud nodes.
struct NodeIds {
  std::vector<std::string> ids;
  std::vector<std::string> tiers;  // tier names that have at least one node

  bool contains(const std::string& w) const {
    return std::find(ids.begin(), ids.end(), w) != ids.end() ||
           std::find(tiers.begin(), tiers.end(), w) != tiers.end();
  }
  std::string describe() const {
    std::string s = util::join(ids, ", ");
    if (!tiers.empty()) s += " (or a tier: " + util::join(tiers, ", ") + ")";
    return s;
  }
};

NodeIds node_ids(const Config& c) {
  NodeIds n;
  const Infrastructure& i = c.infrastructure;
  bool controller = !i.infra_only && c.benchmark && i.cloud.nodes > 0 &&
                    c.benchmark->resource_manager != ResourceManager::mist;
  if (controller) n.ids.push_back("cloud_controller");
  for (int k = 0; k < i.cloud.nodes - (controller ? 1 : 0); ++k)
    n.ids.push_back("cloud" + std::to_string(k));
  for (int k = 0; k < i.edge.nodes; ++k) n.ids.push_back("edge" + std::to_string(k));
  for (int k = 0; k < i.endpoint.nodes; ++k) n.ids.push_back("endpoint" + std::to_string(k));
  if (i.cloud.nodes > 0) n.tiers.push_back("cloud");
  if (i.edge.nodes > 0) n.tiers.push_back("edge");
  if (i.endpoint.nodes > 0) n.tiers.push_back("endpoint");
  return n;
}

std::string node_problem(const NodeIds& ids, const std::string& w) {
  std::vector<std::string> all = ids.ids;
  all.insert(all.end(), ids.tiers.begin(), ids.tiers.end());
  std::string msg = "no node `" + w + "` in this configuration";
  std::string close = util::closest_match(w, all);
  if (!close.empty()) msg += " (did you mean `" + close + "`?)";
  return msg + "; nodes: " + ids.describe();
}

// Appended to the node count errors, so that the message shows what the file set.
std::string node_counts(const Infrastructure& i) {
  return " (have cloud_nodes = " + std::to_string(i.cloud.nodes) +
         ", edge_nodes = " + std::to_string(i.edge.nodes) +
         ", endpoint_nodes = " + std::to_string(i.endpoint.nodes) + ")";
}

// ---------------------------------------------------------------------------------------------

class Loader {
 public:
  Loader(Ctx& ctx, Config& cfg) : ctx_(ctx), cfg_(cfg) {}

  void run(const detail::IniFile& ini);

 private:
  void classify_sections(const detail::IniFile& ini);
  void infrastructure(Sec& s);
  void network(Sec& s);
  void provider_keys(Sec& s);
  void guest_keys(Sec& s);
  void benchmark(Sec& s);
  void plugin_keys(Sec& s);
  void execution_model(Sec& s);
  void cross_checks(Sec& inf, Sec& bench, Sec* em);
  void provider_checks(Sec& inf);
  void application_checks(Sec& bench);
  void execution_model_checks(Sec* em);
  void resource_manager_checks(Sec& bench);
  void endpoint_only_warning(Sec& bench);
  void workloads();
  void links();
  void energy();
  void exporter_command(Sec& s);
  void experiment();

  Ctx& ctx_;
  Config& cfg_;
  const IniSection* infra_ = nullptr;
  const IniSection* bench_ = nullptr;
  const IniSection* em_ = nullptr;
  const IniSection* energy_ = nullptr;
  const IniSection* experiment_ = nullptr;
  std::vector<const IniSection*> links_;
  std::vector<const IniSection*> workloads_;
  bool rm_only_ = false;
};

void Loader::classify_sections(const detail::IniFile& ini) {
  const std::vector<std::string> names = {
      "infrastructure", "benchmark", "execution_model", "energy", "link", "workload", "experiment"};
  for (const auto& s : ini.sections) {
    if (s.duplicate) continue;
    const std::string& h = s.header;
    if (h == "infrastructure")
      infra_ = &s;
    else if (h == "benchmark")
      bench_ = &s;
    else if (h == "execution_model")
      em_ = &s;
    else if (h == "energy")
      energy_ = &s;
    else if (h == "experiment")
      experiment_ = &s;
    else {
      auto words = util::split(h, ' ');
      if (words[0] == "link") {
        if (words.size() != 3)
          ctx_.error(s.line, "[" + h +
                                 "]: a link section names two nodes or tiers: [link A B], "
                                 "e.g. [link cloud0 endpoint1] or [link edge endpoint]");
        else
          links_.push_back(&s);
      } else if (words[0] == "workload") {
        if (words.size() != 2 || !is_name(words[1]))
          ctx_.error(s.line, "[" + h +
                                 "]: a workload section has one name made of letters, digits, "
                                 "_ - . : [workload NAME], e.g. [workload queries]");
        else
          workloads_.push_back(&s);
      } else {
        std::string msg = "[" + h + "]: unknown section";
        std::string close = util::closest_match(h, names);
        if (close.empty()) close = util::closest_match(util::to_lower(h), names);
        if (close.empty()) close = util::closest_match(util::to_lower(words[0]), names);
        if (!close.empty()) msg += " (did you mean [" + close + "]?)";
        msg +=
            "; sections: [infrastructure], [benchmark], [execution_model], [energy], "
            "[link A B], [workload NAME] (section names are case-sensitive)";
        ctx_.error(s.line, msg);
      }
    }
  }
}

void Loader::infrastructure(Sec& s) {
  Infrastructure& i = cfg_.infrastructure;
  std::string provider;
  if (s.get_choice("provider", provider, kProviders,
                   Need::yes("mandatory (qemu, gcp, aws or baremetal)")))
    i.provider = value_of(kProviderNames, provider, Provider::none);
  s.get_bool("infra_only", i.infra_only);
  bool nodes_ok = true;
  for (const auto& t : kTiers)
    nodes_ok &= s.get_int(t + "_nodes", tier_spec(i, t).nodes, 0) || !s.has(t + "_nodes");
  if (nodes_ok && s.present() && i.cloud.nodes + i.edge.nodes + i.endpoint.nodes == 0)
    s.fail("cloud_nodes",
           "cloud_nodes + edge_nodes + endpoint_nodes is 0; at least one node is needed");
  for (const auto& t : kTiers) {
    TierSpec& ts = tier_spec(i, t);
    Need need = Need::when(ts.nodes > 0, "mandatory when " + t + "_nodes > 0");
    s.get_int(t + "_cores", ts.cores, 1, LONG_MAX, need);
    s.get_int(t + "_memory", ts.memory_gb, 1, LONG_MAX,
              Need::when(ts.nodes > 0, "mandatory when " + t + "_nodes > 0 (integer GB)"));
    s.get_double(t + "_quota", ts.quota, 0.1, 1.0, need);
    s.get_int(t + "_read_speed", ts.read_speed_mb, 0);
    s.get_int(t + "_write_speed", ts.write_speed_mb, 0);
  }
  s.get_bool("cpu_pin", i.cpu_pin);
  s.get_list("external_physical_machines", i.external_physical_machines);
  for (const auto& m : i.external_physical_machines) {
    auto at = m.find('@');
    if (at == std::string::npos || at == 0 || at + 1 == m.size() ||
        m.find_first_of(" \t") != std::string::npos)
      s.fail("external_physical_machines",
             "`" + m + "` is not user@host; allowed: a comma list of user@host");
  }
  s.get_bool("netperf", i.netperf);
  s.get_int("netperf_seconds", i.netperf_seconds, 1, 600);
  s.get_bool("resource_check", i.resource_check);
  std::string base;
  if (s.get_string("base_path", base)) {
    i.base_path = util::expand_user(base).string();
  } else {
    i.base_path = util::expand_user("~").string();
  }
  while (i.base_path.size() > 1 && i.base_path.back() == '/') i.base_path.pop_back();
  if (s.get_string("prefixip", i.prefix_ip)) {
    auto parts = util::split(i.prefix_ip, '.');
    bool ok = parts.size() == 2;
    for (const auto& p : parts) {
      long v = 0;
      ok = ok && detail::parse_int(p, v) && v >= 1 && v <= 254 &&
           p.find_first_of("+- ") == std::string::npos;
    }
    if (!ok) {
      s.fail("prefixip", "not two dot-separated numbers from 1 to 254; allowed: e.g. 192.168");
      i.prefix_ip = "192.168";
    }
  }
  bool m1 = s.get_int("middleip", i.middle_ip, 1, 254);
  bool m2 = s.get_int("middleip_base", i.middle_ip_base, 1, 254);
  if (i.middle_ip == i.middle_ip_base && (m1 || m2))
    s.fail(m2 ? "middleip_base" : "middleip",
           "middleIP and middleIP_base are both " + std::to_string(i.middle_ip) +
               "; VMs and base-image VMs need different third octets");
  s.get_bool("delete", i.delete_vms);
  network(s);
  provider_keys(s);
}

void Loader::network(Sec& s) {
  Infrastructure& i = cfg_.infrastructure;
  s.get_bool("network_emulation", i.network_emulation);
  // Upstream reads these keys only with network_emulation = True; otherwise finish() warns
  // that they are ignored.
  if (!i.network_emulation) return;
  s.get_choice("wireless_network_preset", i.wireless_network_preset, {"4g", "5g"});
  for (const auto& p : kPairs) {
    LinkOverride& l = pair_link(i, p);
    s.get_double(p + "_latency_avg", l.latency_avg, 0, kInf);
    s.get_double(p + "_latency_var", l.latency_var, 0, kInf);
    s.get_double(p + "_throughput", l.throughput, 1, kInf);
    s.get_double(p + "_loss", l.loss, 0, 100);
  }
  s.get_bool("latency_is_rtt", i.latency_is_rtt);
  s.get_bool("network_verify", i.network_verify);
  s.get_bool("network_strict", i.network_strict);
}

void Loader::provider_keys(Sec& s) {
  Infrastructure& i = cfg_.infrastructure;
  auto keep = [&](const std::string& key, const Need& need) {
    std::string v;
    if (s.get_string(key, v, need)) i.provider_options[key] = v;
  };
  if (i.provider == Provider::gcp || i.provider == Provider::aws) {
    const std::string p(name(i.provider));
    for (const auto& t : kTiers)
      keep(p + "_" + t,
           Need::when(tier_spec(i, t).nodes > 0, "mandatory with provider = " + p + " when " + t +
                                                     "_nodes > 0 (machine type)"));
    std::vector<std::string> keys =
        i.provider == Provider::gcp
            ? std::vector<std::string>{"gcp_region", "gcp_zone", "gcp_project", "gcp_credentials"}
            : std::vector<std::string>{"aws_region", "aws_zone", "aws_access_keys",
                                       "aws_secret_access_keys", "aws_ami"};
    for (const auto& k : keys) keep(k, Need::yes("mandatory with provider = " + p));
    if (i.provider_options.count("gcp_credentials"))
      i.provider_options["gcp_credentials"] =
          util::expand_user(i.provider_options["gcp_credentials"]).string();
  }
  if (i.provider != Provider::qemu) return;
  s.get_string("libvirt_uri", i.libvirt_uri);
  if (i.libvirt_uri.find(":/") == std::string::npos) {
    s.fail("libvirt_uri",
           "not a libvirt URI; allowed: e.g. qemu:///system, qemu+ssh://user@host/system, "
           "test:///default");
  }
  s.get_choice("accelerator", i.accelerator, {"auto", "kvm", "tcg"});
  s.get_string("base_image", i.base_image);
  if (s.get_string("base_image_sha256", i.base_image_sha256)) {
    if (!is_hex64(i.base_image_sha256))
      s.fail("base_image_sha256", "not a SHA-256 checksum; allowed: 64 hexadecimal digits");
    i.base_image_sha256 = util::to_lower(i.base_image_sha256);
  }
  bool url =
      util::starts_with(i.base_image, "http://") || util::starts_with(i.base_image, "https://");
  if (url && i.base_image_sha256.empty())
    ctx_.warn(s.line(), "[infrastructure] base_image = " + i.base_image +
                            ": downloaded without base_image_sha256; the download is not verified");
  if (!url && !i.base_image.empty()) i.base_image = util::expand_user(i.base_image).string();
  s.get_choice("network_mode", i.network_mode, {"managed", "bridge"});
  s.get_string("bridge_name", i.bridge_name);
  if (i.bridge_name.empty() || i.bridge_name.size() > 15 ||
      i.bridge_name.find_first_of(" /") != std::string::npos)
    s.fail("bridge_name",
           "not a network interface name; allowed: 1 to 15 characters without spaces or /");
  // The seed's energy notes spell the switch `virtiofsd`; both mean the per-VM share.
  const bool has_fs = s.has("virtiofs");
  bool fsd = false;
  s.get_bool("virtiofs", i.virtiofs);
  if (s.get_bool("virtiofsd", fsd)) {
    if (has_fs && fsd != i.virtiofs)
      s.fail("virtiofsd", "contradicts virtiofs (the same switch under its other name); set one");
    i.virtiofs = fsd;
  }
  if (s.get_choice("image_variant", i.image_variant,
                   {"default", "cloudinit", "docker", "energy"}) &&
      !i.base_image.empty())
    s.fail("image_variant",
           "chooses the offline image's recipe, but base_image is set; remove one of them");
  s.get_string("virtiofs_host_dir", i.virtiofs_host_dir);
  if (!is_absolute(i.virtiofs_host_dir))
    s.fail("virtiofs_host_dir", "not an absolute path; allowed: a path starting with /");
  s.get_string("virtiofs_guest_dir", i.virtiofs_guest_dir);
  if (!is_absolute(i.virtiofs_guest_dir))
    s.fail("virtiofs_guest_dir", "not an absolute path; allowed: a path starting with /");
  if (s.get_string("ssh_key", i.ssh_key))
    i.ssh_key = util::expand_user(i.ssh_key).string();
  else
    i.ssh_key = util::expand_user("~/.ssh/id_rsa_continuum").string();
  s.get_int("boot_timeout", i.boot_timeout, 1);
  guest_keys(s);
}

void Loader::guest_keys(Sec& s) {
  Infrastructure& i = cfg_.infrastructure;
  if (s.get_choice("guest_internet", i.guest_internet, {"nat", "none"}) &&
      i.network_mode == "bridge")
    ctx_.warn(
        s.find("guest_internet")->line,
        "[infrastructure] guest_internet = " + i.guest_internet +
            ": ignored with network_mode = bridge (the guests get whatever the bridge's network "
            "gives); only used with network_mode = managed");
  const std::string proxy_form =
      "allowed: http://host[:port] or https://host[:port], e.g. http://10.0.0.1:3128";
  for (auto [key, field] :
       {std::pair<const char*, std::string*>{"guest_http_proxy", &i.guest_http_proxy},
        {"guest_https_proxy", &i.guest_https_proxy},
        {"guest_apt_proxy", &i.guest_apt_proxy}}) {
    if (!s.get_string(key, *field)) continue;
    std::string p = url_problem(*field, false);
    if (!p.empty())
      s.fail(key, p + "; " + proxy_form +
                      (std::string(key) == "guest_apt_proxy" ? " (apt-cacher-ng: port 3142)" : ""));
  }
  if (s.get_string("guest_apt_mirror", i.guest_apt_mirror)) {
    std::string p = url_problem(i.guest_apt_mirror, true);
    if (!p.empty())
      s.fail("guest_apt_mirror",
             p + "; allowed: an http(s) URL of a Debian mirror, e.g. http://deb.debian.org/debian");
  }
  if (s.get_string("guest_no_proxy", i.guest_no_proxy)) {
    for (const auto& part : util::split(i.guest_no_proxy, ',')) {
      if (std::string(util::trim(part)).find_first_of(" \t\"'") != std::string::npos) {
        s.fail("guest_no_proxy",
               "an entry has a space or a quote; allowed: a comma list of hosts, domains "
               "(.example.org) or addresses, e.g. localhost,127.0.0.1,.lab");
        break;
      }
    }
  }
  s.get_bool("reachability_check", i.reachability_check);
  s.get_double("reachability_timeout", i.reachability_timeout, 0, kInf, {}, true);
}

void Loader::benchmark(Sec& s) {
  Benchmark& b = *cfg_.benchmark;
  const Infrastructure& i = cfg_.infrastructure;
  std::string rm;
  if (s.get_choice("resource_manager", rm, kResourceManagers,
                   Need::yes("mandatory unless infra_only = True (none: endpoints only)")))
    b.resource_manager = value_of(kResourceManagerNames, rm, ResourceManager::none);
  s.get_bool("resource_manager_only", b.resource_manager_only);
  rm_only_ = b.resource_manager_only;
  s.get_bool("docker_pull", b.docker_pull);
  const detail::IniEntry* app = s.find("application");
  if (app && app->value == "signal_classification") {
    s.fail("application", "not implemented (the original ships it as empty stub files); allowed: " +
                              util::join(kApplications, ", "));
  } else {
    std::string application;
    if (s.get_choice("application", application, kApplications))
      b.application = value_of(kApplicationNames, application, Application::none);
  }
  bool app_given = app && !app->value.empty();
  if (b.resource_manager_only && app_given)
    s.fail(
        "application",
        "set while resource_manager_only = True; remove it, or set resource_manager_only = False");
  if (!b.resource_manager_only && !app_given && workloads_.empty())
    s.fail("application", std::string(app ? "empty" : "missing") +
                              "; mandatory when resource_manager_only = False (" +
                              util::join(kApplications, ", ") +
                              "), unless the file has a [workload NAME] section");

  // Derived defaults as upstream: the worker gets its tier's cores/memory minus 0.5.
  double def_cpu = 0, def_mem = 0;
  if (cfg_.mode() == Tier::cloud) {
    def_cpu = i.cloud.cores - 0.5;
    def_mem = i.cloud.memory_gb - 0.5;
  } else if (cfg_.mode() == Tier::edge) {
    def_cpu = i.edge.cores - 0.5;
    def_mem = i.edge.memory_gb - 0.5;
  }
  b.application_worker_cpu = def_cpu;
  b.application_worker_memory = def_mem;
  b.application_endpoint_cpu = i.endpoint.cores;
  b.application_endpoint_memory = i.endpoint.memory_gb;
  s.get_double("application_worker_cpu", b.application_worker_cpu, 0.001, kInf);
  s.get_double("application_worker_memory", b.application_worker_memory, 0.001, kInf);
  s.get_double("application_endpoint_cpu", b.application_endpoint_cpu, 0.001, kInf);
  s.get_double("application_endpoint_memory", b.application_endpoint_memory, 0.001, kInf);
  s.get_int("applications_per_worker", b.applications_per_worker, 1);
  s.get_bool("observability", b.observability);
  s.get_int("repeat", b.repeat, 1);
  s.get_double("repeat_pause", b.repeat_pause, 0, kInf);
  s.get_int("playbook_timeout", b.playbook_timeout, 1);
  s.get_int("benchmark_timeout", b.benchmark_timeout, 0);
  if (s.get_bool("direct_offload", b.direct_offload) && b.direct_offload) {
    const Infrastructure& inf = cfg_.infrastructure;
    if (b.resource_manager != ResourceManager::none)
      s.fail("direct_offload", "only meaningful with resource_manager = none (have " +
                                   std::string(name(b.resource_manager)) +
                                   ", whose workers the resource manager places); remove it or set "
                                   "resource_manager = none");
    else if (b.resource_manager_only || b.application != Application::image_classification)
      s.fail("direct_offload",
             "offloads image_classification; it needs application = image_classification");
    else if (inf.cloud.nodes + inf.edge.nodes == 0)
      s.fail("direct_offload",
             "needs cloud or edge nodes to offload to (have only endpoints); remove it for "
             "the endpoint-only mode");
  }
  plugin_keys(s);
}

void Loader::plugin_keys(Sec& s) {
  Benchmark& b = *cfg_.benchmark;
  const auto rm = b.resource_manager;
  const auto app = b.application;
  if (!b.resource_manager_only) {
    if (app == Application::image_classification) {
      s.get_int(
          "frequency", b.frequency, 1, LONG_MAX,
          Need::yes(
              "mandatory when application = image_classification (images/s per endpoint, >= 1)"));
      s.get_int("duration", b.duration, 1);
    } else if (app == Application::empty || app == Application::empty_kata) {
      s.get_int("sleep_time", b.sleep_time, 1, LONG_MAX,
                Need::yes("mandatory when application = " + std::string(name(app)) + " (s, >= 1)"));
    } else if (app == Application::stress) {
      s.get_int("stress_app_timeout", b.stress_app_timeout, 1, LONG_MAX,
                Need::yes("mandatory when application = stress (s, >= 1)"));
    }
  }
  bool kube = uses_kubeadm(rm);
  if (kube || rm == ResourceManager::kubeedge) s.get_bool("cache_worker", b.cache_worker);
  if (kube && s.get_string("kube_version", b.kube_version)) {
    // The original accepted anything (its condition was always true); a version that is not
    // vMAJOR.MINOR.PATCH cannot be installed, so say so now rather than in a playbook.
    auto parts = util::split(b.kube_version.size() > 1 ? b.kube_version.substr(1) : "", '.');
    long v = 0;
    bool ok = b.kube_version[0] == 'v' && parts.size() == 3;
    for (const auto& p : parts)
      ok = ok && detail::parse_int(p, v) && v >= 0 && p[0] != '+' && p[0] != '-';
    if (!ok)
      s.fail("kube_version", "not a Kubernetes version; allowed: vMAJOR.MINOR.PATCH, e.g. v1.27.0");
  }
  if (rm == ResourceManager::kubecontrol || rm == ResourceManager::kube_kata)
    s.get_choice("kube_deployment", b.kube_deployment, {"pod", "container", "file", "call"});
  if (rm == ResourceManager::kube_kata) {
    s.get_choice("runtime", b.runtime, {"runc", "kata-qemu", "kata-fc"});
    s.get_choice("runtime_filesystem", b.runtime_filesystem, {"overlayfs", "devmapper"});
  }
}

void Loader::execution_model(Sec& s) {
  cfg_.execution_model = ExecutionModel{};
  s.get_choice("model", cfg_.execution_model->model, {"openfaas"},
               Need::yes("mandatory when the [execution_model] section is present"));
}

void Loader::cross_checks(Sec& inf, Sec& bs, Sec* em) {
  provider_checks(inf);
  if (!cfg_.benchmark) return;
  // Upstream order: application, execution model, provider, resource manager.
  application_checks(bs);
  execution_model_checks(em);
  resource_manager_checks(bs);
  endpoint_only_warning(bs);
}

void Loader::provider_checks(Sec& inf) {
  const Infrastructure& i = cfg_.infrastructure;
  if (i.provider == Provider::baremetal) {
    inf.fail("provider",
             "baremetal is not supported: the original rejected every baremetal configuration "
             "(its check required edge_nodes == 0 and >= 1 at once); allowed: qemu (gcp, aws: "
             "validated only)");
  } else if (i.provider == Provider::gcp || i.provider == Provider::aws) {
    ctx_.warn(inf.line(),
              "[infrastructure] provider = " + std::string(name(i.provider)) +
                  ": continuum validates this configuration for compatibility but deploys only "
                  "with provider = qemu");
  }
}

void Loader::application_checks(Sec& bs) {
  const Benchmark& b = *cfg_.benchmark;
  const auto rm = b.resource_manager;
  const auto app = b.application;
  if (b.resource_manager_only || app == Application::none) return;
  if (app == Application::image_classification) {
    if (rm == ResourceManager::kubecontrol)
      bs.fail("application",
              "image_classification does not run with resource_manager = kubecontrol; "
              "allowed resource managers: kubernetes, kubeedge, mist, none");
    if (cfg_.infrastructure.endpoint.nodes < 1)
      bs.fail("application",
              "image_classification needs at least 1 endpoint (endpoint_nodes >= 1) to "
              "produce images" +
                  node_counts(cfg_.infrastructure));
  } else if (app == Application::empty && rm != ResourceManager::kubecontrol) {
    bs.fail("application", "empty needs resource_manager = kubecontrol");
  } else if (app == Application::empty_kata && rm != ResourceManager::kube_kata) {
    bs.fail("application", "empty_kata needs resource_manager = kube_kata");
  } else if ((app == Application::stress || app == Application::mem_usage) &&
             rm != ResourceManager::kubecontrol && rm != ResourceManager::kube_kata) {
    // The original allowed only kubecontrol, although its template and its experiment_kata
    // configurations use kube_kata too (docs/compatibility.md).
    bs.fail("application",
            std::string(name(app)) + " needs resource_manager = kubecontrol or kube_kata");
  }
}

void Loader::execution_model_checks(Sec* em) {
  if (!em || !cfg_.execution_model || cfg_.execution_model->model != "openfaas") return;
  const Benchmark& b = *cfg_.benchmark;
  const auto rm = b.resource_manager;
  const auto app = b.application;
  if (rm != ResourceManager::kubernetes)
    em->fail("model",
             "openfaas needs resource_manager = kubernetes (have " + std::string(name(rm)) + ")");
  else if (!b.resource_manager_only && app != Application::none &&
           app != Application::image_classification)
    em->fail("model", "openfaas only runs application = image_classification (have " +
                          std::string(name(app)) + ")");
}

void Loader::resource_manager_checks(Sec& bs) {
  const Infrastructure& i = cfg_.infrastructure;
  const int clouds = i.cloud.nodes, edges = i.edge.nodes, endpoints = i.endpoint.nodes;
  const Benchmark& b = *cfg_.benchmark;
  const auto rm = b.resource_manager;
  if (rm == ResourceManager::kubernetes) {
    if (clouds < 1 || edges != 0)
      bs.fail("resource_manager", "kubernetes needs cloud_nodes >= 1 and edge_nodes = 0" +
                                      node_counts(i) + "; for edge nodes use kubeedge or mist");
    else if (clouds > 1 && endpoints % (clouds - 1) != 0)
      bs.fail("resource_manager",
              "kubernetes needs endpoint_nodes to be a multiple of the workers "
              "(cloud_nodes - 1 = " +
                  std::to_string(clouds - 1) + ", one cloud node is the controller)" +
                  node_counts(i));
  } else if (rm == ResourceManager::kubeedge || rm == ResourceManager::mist) {
    bool ok = rm == ResourceManager::kubeedge ? (clouds == 1 && edges >= 1)
                                              : (clouds == 0 && edges >= 1 && endpoints >= 1);
    if (!ok)
      bs.fail("resource_manager",
              rm == ResourceManager::kubeedge
                  ? "kubeedge needs cloud_nodes = 1 (the controller) and edge_nodes >= 1" +
                        node_counts(i)
                  : "mist needs cloud_nodes = 0, edge_nodes >= 1 and endpoint_nodes >= 1" +
                        node_counts(i));
    else if (endpoints % edges != 0)
      bs.fail("resource_manager", std::string(name(rm)) +
                                      " needs endpoint_nodes to be a multiple of edge_nodes" +
                                      node_counts(i));
  } else if (rm == ResourceManager::kubecontrol || rm == ResourceManager::kube_kata) {
    if (clouds < 2 || edges != 0)
      bs.fail(
          "resource_manager",
          std::string(name(rm)) + " needs cloud_nodes >= 2 and edge_nodes = 0" + node_counts(i));
    else if (endpoints % (clouds - 1) != 0)
      bs.fail("resource_manager",
              std::string(name(rm)) +
                  " needs endpoint_nodes to be a multiple of the workers (cloud_nodes - 1 = " +
                  std::to_string(clouds - 1) + ")" + node_counts(i));
    if (rm == ResourceManager::kube_kata && b.runtime == "kata-fc" &&
        b.runtime_filesystem == "overlayfs")
      bs.fail("runtime_filesystem",
              "overlayfs cannot be used with runtime = kata-fc; allowed: devmapper");
  }
}

void Loader::endpoint_only_warning(Sec& bs) {
  const Infrastructure& i = cfg_.infrastructure;
  const int clouds = i.cloud.nodes, edges = i.edge.nodes;
  const Benchmark& b = *cfg_.benchmark;
  if (b.resource_manager != ResourceManager::none || !(clouds > 0 || edges > 0) || b.direct_offload)
    return;
  // The original's endpoint-only mode; continuum's offload to those nodes is explicit.
  const std::string nodes = clouds > 0 && edges > 0 ? "cloud and edge"
                            : clouds > 0            ? "cloud"
                                                    : "edge";
  if (b.application == Application::image_classification && !b.resource_manager_only)
    ctx_.warn(bs.line(),
              "[benchmark] resource_manager = none: image_classification runs in the original's "
              "endpoint-only mode (each endpoint generates and classifies its own images); the " +
                  nodes + " nodes get none of its work" +
                  (workloads_.empty() ? std::string(" and no other work")
                                      : std::string(", only the [workload] sections")) +
                  "; set direct_offload = True to offload to them instead");
  else if (workloads_.empty())
    ctx_.warn(bs.line(), "[benchmark] resource_manager = none: the " + nodes +
                             " nodes get no work (add a [workload NAME] to use them)");
}

void Loader::workloads() {
  NodeIds ids = node_ids(cfg_);
  for (const IniSection* ini : workloads_) {
    Sec s(ctx_, ini, ini->header);
    s.set_universe(&universe("workload"));
    SshWorkload w;
    w.name = util::split(ini->header, ' ')[1];
    w.where = Location{ctx_.file, ini->line};
    (*ctx_.where)[ini->header] = w.where;
    s.get_string("command", w.command,
                 Need::yes("mandatory (the shell command to run on each node)"));
    if (s.get_list("nodes", w.nodes,
                   Need::yes("mandatory (node ids such as cloud0, endpoint1, or tiers: cloud, "
                             "edge, endpoint)"))) {
      for (const auto& n : w.nodes)
        if (!ids.contains(n)) s.fail("nodes", node_problem(ids, n));
    }
    s.get_int("repeat", w.repeat, 1);
    s.get_int("warmup", w.warmup, 0);
    s.get_double("timeout", w.timeout, 0, kInf, {}, true);
    s.get_bool("setup", w.setup);
    std::vector<std::string> env;
    if (s.get_list("env", env)) {
      for (const auto& kv : env) {
        auto eq = kv.find('=');
        std::string k = eq == std::string::npos ? kv : kv.substr(0, eq);
        if (eq == std::string::npos || !is_env_name(k))
          s.fail("env", "`" + kv +
                            "` is not NAME=VALUE; allowed: a comma list of NAME=VALUE (NAME: "
                            "letters, digits, _)");
        else
          w.env[k] = kv.substr(eq + 1);
      }
    }
    s.get_bool("parallel", w.parallel);
    s.finish();
    if (cfg_.infrastructure.infra_only)
      ctx_.warn(ini->line,
                "[" + ini->header + "]: ignored; infra_only = True skips the benchmark phase");
    else
      cfg_.workloads.push_back(std::move(w));
  }
}

void Loader::links() {
  NodeIds ids = node_ids(cfg_);
  for (const IniSection* ini : links_) {
    Sec s(ctx_, ini, ini->header);
    s.set_universe(&universe("link"));
    auto words = util::split(ini->header, ' ');
    PairOverride p;
    p.a = words[1];
    p.b = words[2];
    p.where = Location{ctx_.file, ini->line};
    (*ctx_.where)[ini->header] = p.where;
    bool ok = true;
    for (const auto& w : {p.a, p.b}) {
      if (!ids.contains(w)) {
        ctx_.error(ini->line, "[" + ini->header + "]: " + node_problem(ids, w));
        ok = false;
      }
    }
    bool is_tier = std::find(kTiers.begin(), kTiers.end(), p.a) != kTiers.end();
    if (ok && p.a == p.b && !is_tier) {
      ctx_.error(ini->line, "[" + ini->header + "]: a link joins two different nodes");
      ok = false;
    }
    if (!cfg_.infrastructure.network_emulation) {
      // Read nothing, so finish() warns about every key as ignored.
      s.finish();
      continue;
    }
    s.get_double("latency_avg", p.values.latency_avg, 0, kInf);
    s.get_double("latency_var", p.values.latency_var, 0, kInf);
    s.get_double("throughput", p.values.throughput, 1, kInf);
    s.get_double("loss", p.values.loss, 0, 100);
    if (ini->entries.empty())
      ctx_.warn(ini->line, "[" + ini->header + "]: no keys; the link keeps its tier values");
    s.finish();
    if (ok) cfg_.infrastructure.pair_overrides.push_back(std::move(p));
  }
}

void Loader::energy() {
  Sec s(ctx_, energy_, "energy");
  s.set_universe(&universe("energy"));
  Energy& e = cfg_.energy;
  s.get_bool("enabled", e.enabled);
  if (e.enabled) {
    std::string exporter;
    if (s.get_choice("exporter", exporter, spellings(kExporterNames)))
      e.exporter = value_of(kExporterNames, exporter, Exporter::host);
    s.get_string("host_address", e.host_address);
    if (e.host_address.empty() || e.host_address.find_first_of(" /") != std::string::npos)
      s.fail("host_address", "not a host name or address; allowed: e.g. 127.0.0.1");
    s.get_int("host_port_base", e.host_port_base, 1, 65535);
    s.get_int("guest_port", e.guest_port, 1, 65535);
    s.get_string("path", e.path);
    if (!is_absolute(e.path))
      s.fail("path", "not a URL path; allowed: a path starting with /, e.g. /metrics");
    s.get_double("interval", e.interval, 0, kInf, {}, true);
    s.get_double("scrape_timeout", e.scrape_timeout, 0, kInf, {}, true);
    s.get_bool("host_feed", e.host_feed);
    s.get_string("powercap_path", e.powercap_path);
    if (!is_absolute(e.powercap_path))
      s.fail("powercap_path", "not an absolute path; allowed: a path starting with /");
    s.get_double("min_coverage", e.min_coverage, 0, 1);
    std::string v;
    if (s.get_choice("scope", v, spellings(kScopeNames)))
      e.scope = value_of(kScopeNames, v, EnergyScope::benchmark);
    if (s.get_choice("exporter_kind", v, spellings(kExporterKindNames)))
      e.exporter_kind = value_of(kExporterKindNames, v, ExporterKind::scaphandre);
    exporter_command(s);
    s.get_double("exporter_start_timeout", e.exporter_start_timeout, 0, 3600, {}, true);
    const Infrastructure& i = cfg_.infrastructure;
    int vms = i.cloud.nodes + i.edge.nodes + i.endpoint.nodes;
    if (e.exporter == Exporter::host && e.host_port_base + vms - 1 > 65535)
      s.fail("host_port_base", "host_port_base + number of VMs - 1 exceeds 65535");
    if ((e.exporter == Exporter::guest || e.host_feed) && !i.virtiofs)
      s.fail(e.exporter == Exporter::guest ? "exporter" : "host_feed",
             "needs virtiofs = True in [infrastructure] (the guest reads its energy from the "
             "shared folder)");
  }
  s.finish();
}

void Loader::exporter_command(Sec& s) {
  Energy& e = cfg_.energy;
  std::string text;
  if (!s.get_string("exporter_command", text)) return;
  std::string err;
  auto words = util::split_command(text, &err);
  if (!words) return s.fail("exporter_command", err);
  if (words->empty())
    return s.fail("exporter_command",
                  "empty; allowed: the command that starts one VM's exporter, e.g. scaphandre "
                  "prometheus --bind {address}:{port} --fs {share}");
  if (e.exporter != Exporter::host)
    return s.fail("exporter_command",
                  "starts exporters on this host, one per VM; with exporter = guest the guests run "
                  "Scaphandre themselves (the scaphandre playbook starts it)");
  std::map<std::string, std::string> probe;
  for (const char* p : kExporterPlaceholders) probe[p] = "x";
  for (const auto& w : *words)
    if (!util::expand_placeholders(w, probe, &err)) return s.fail("exporter_command", err);
  if (e.exporter_kind == ExporterKind::kepler)
    return s.fail("exporter_command",
                  "starts one exporter per VM, but Kepler is one exporter for the whole host that "
                  "names each VM; start Kepler yourself (docs/energy.md)");
  const std::string program = exporter_program(*words);
  if (program.empty())
    return s.fail("exporter_command", "only NAME=value words; the program is missing");
  if (program.find('{') != std::string::npos)
    return s.fail("exporter_command", "the program name cannot hold a placeholder");
  e.exporter_command = std::move(*words);
}

void Loader::experiment() {
  Sec s(ctx_, experiment_, "experiment");
  s.set_universe(&universe("experiment"));
  cfg_.experiment = cfg_.file.stem().string();
  if (s.get_string("name", cfg_.experiment)) {
    const std::string& n = cfg_.experiment;
    if (n.empty() || n.size() > 128 || std::any_of(n.begin(), n.end(), [](unsigned char c) {
          return c < 0x20 || c == 0x7f || c == '/';
        }))
      s.fail("name", "not an experiment name; allowed: 1 to 128 printable characters without /");
  }
  s.finish();
}

void Loader::run(const detail::IniFile& ini) {
  classify_sections(ini);
  Sec inf(ctx_, infra_, "infrastructure");
  inf.set_universe(&universe("infrastructure"));
  if (!infra_) {
    // Nothing else can be checked meaningfully without the nodes and the provider.
    ctx_.error(0,
               "[infrastructure] section missing; every configuration needs one (provider, nodes "
               "per tier)");
    return;
  }
  infrastructure(inf);

  Sec bs(ctx_, bench_, "benchmark");
  bs.set_universe(&universe("benchmark"));
  if (cfg_.infrastructure.infra_only) {
    if (bench_) {
      ctx_.warn(bench_->line, "[benchmark]: ignored; infra_only = True skips the benchmark");
      for (const auto& e : bench_->entries)
        (*ctx_.where)["benchmark." + e.key] =
            Location{ctx_.file, e.line, e.key_as_written, e.value};
    }
  } else if (!bench_) {
    ctx_.error(0,
               "[benchmark] section missing; required unless infra_only = True "
               "(resource_manager, application)");
  } else {
    cfg_.benchmark = Benchmark{};
    benchmark(bs);
    bs.finish();
  }

  Sec em(ctx_, em_, "execution_model");
  em.set_universe(&universe("execution_model"));
  if (em_) {
    execution_model(em);
    if (cfg_.infrastructure.infra_only) {
      ctx_.warn(em_->line, "[execution_model]: ignored; infra_only = True skips the benchmark");
      cfg_.execution_model.reset();
    }
    em.finish();
  }
  cross_checks(inf, bs, em_ ? &em : nullptr);
  inf.finish();
  workloads();
  links();
  energy();
  experiment();
}

bool valid_utf8(std::string_view s, size_t& bad) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    if (c < 0x80)
      n = 0;
    else if ((c >> 5) == 0x6)
      n = 1;
    else if ((c >> 4) == 0xE)
      n = 2;
    else if ((c >> 3) == 0x1E)
      n = 3;
    else {
      bad = i;
      return false;
    }
    for (size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size() || (static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) {
        bad = i;
        return false;
      }
    }
    i += n + 1;
  }
  return true;
}

int line_of(std::string_view s, size_t pos) {
  return 1 + static_cast<int>(std::count(s.begin(), s.begin() + static_cast<long>(pos), '\n'));
}

std::string format(const std::string& file, const std::vector<detail::Msg>& msgs) {
  std::vector<detail::Msg> sorted = msgs;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.line < b.line; });
  std::string out;
  for (const auto& m : sorted) {
    out += file;
    if (m.line > 0) out += ":" + std::to_string(m.line);
    out += ": " + m.text + "\n";
  }
  return out;
}

}  // namespace

Expected<Config> load(const std::filesystem::path& file) {
  const std::string name = file.string();
  auto fail = [&](const std::string& what) {
    return make_error(name + ": " + what, ExitCode::usage);
  };
  std::error_code ec;
  auto st = fs::status(file, ec);
  if (ec || !fs::exists(st)) return fail("configuration file does not exist");
  if (fs::is_directory(st)) return fail("is a directory, not a configuration file");
  if (!fs::is_regular_file(st))
    return fail("not a regular file; a configuration is an INI text file");
  if (fs::file_size(file, ec) > 16 * 1024 * 1024)
    return fail("larger than 16 MiB; not a configuration file");
  auto text = util::read_file(file);
  if (!text)
    return make_error(text.error().message + " (cannot read the configuration)", ExitCode::usage);
  return load_text(*text, file);
}

Expected<Config> load_text(std::string_view t, const std::filesystem::path& file) {
  const std::string name = file.string();
  if (auto nul = t.find('\0'); nul != std::string_view::npos)
    return make_error(name + ":" + std::to_string(line_of(t, nul)) +
                          ": binary file (NUL byte); a configuration is UTF-8 text",
                      ExitCode::usage);
  size_t bad = 0;
  if (!valid_utf8(t, bad))
    return make_error(name + ":" + std::to_string(line_of(t, bad)) +
                          ": not valid UTF-8 text; save the configuration as UTF-8",
                      ExitCode::usage);
  if (util::trim(t).empty())
    return make_error(name + ": file is empty; a configuration needs at least [infrastructure]",
                      ExitCode::usage);

  Config cfg;
  cfg.file = file;
  Ctx ctx;
  ctx.file = name;
  ctx.where = &cfg.where;
  detail::IniFile ini = detail::parse_ini(t);
  for (const auto& p : ini.problems) ctx.error(p.line, p.text);
  Loader(ctx, cfg).run(ini);

  if (!ctx.errors.empty()) {
    std::string msg = format(name, ctx.errors);
    msg.pop_back();
    return make_error(msg, ExitCode::usage);
  }
  std::vector<detail::Msg> w = ctx.warnings;
  std::stable_sort(w.begin(), w.end(),
                   [](const auto& a, const auto& b) { return a.line < b.line; });
  for (const auto& m : w)
    cfg.warnings.push_back(name + (m.line > 0 ? ":" + std::to_string(m.line) : std::string()) +
                           ": " + m.text);
  return cfg;
}

}  // namespace continuum::config

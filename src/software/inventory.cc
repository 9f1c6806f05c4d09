#include "continuum/software/inventory.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <vector>

#include "continuum/util/files.h"
#include "continuum/util/process.h"
#include "continuum/util/strings.h"

namespace continuum::software {
namespace {

using plan::Node;

// Emits `key: value` with the value as a plain scalar unless YAML would read it as something else.
template <typename V>
void kv(YAML::Emitter& e, const std::string& key, const V& value) {
  e << YAML::Key << key << YAML::Value << value;
}

struct HostEntry {
  const Node* node;
  const infra::DeployedNode* dep;
};

void emit_group(YAML::Emitter& e, const std::string& name, const std::vector<const Node*>& hosts,
                const std::vector<std::pair<std::string, std::string>>& vars) {
  e << YAML::Key << name << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "hosts" << YAML::Value << YAML::BeginMap;
  for (const Node* n : hosts) e << YAML::Key << n->name << YAML::Value << YAML::Null;
  e << YAML::EndMap;
  if (!vars.empty()) {
    e << YAML::Key << "vars" << YAML::Value << YAML::BeginMap;
    // Quoted: a version such as 1.27 must stay a string, not become a float.
    for (const auto& [k, v] : vars) e << YAML::Key << k << YAML::Value << YAML::DoubleQuoted << v;
    e << YAML::EndMap;
  }
  e << YAML::EndMap;
}

// The inventory's groups, in emission order, with their member nodes in order.
struct Groups {
  std::vector<const Node*> controller, clouds, edges, endpoints, all, base_cloud, workers, brokers;
  std::vector<std::pair<std::string, const std::vector<const Node*>*>> ordered() const {
    return {{"cloudcontroller", &controller},
            {"clouds", &clouds},
            {"edges", &edges},
            {"endpoints", &endpoints},
            {"base", &all},
            {"base_cloud", &base_cloud},
            {"base_edge", &edges},
            {"base_endpoint", &endpoints},
            {"workers", &workers},
            {"brokers", &brokers}};
  }
};

Groups make_groups(const plan::Plan& plan) {
  Groups g;
  for (const Node& n : plan.nodes) {
    g.all.push_back(&n);
    switch (n.tier) {
      case config::Tier::cloud:
        g.base_cloud.push_back(&n);
        (n.controller ? g.controller : g.clouds).push_back(&n);
        break;
      case config::Tier::edge:
        g.edges.push_back(&n);
        break;
      case config::Tier::endpoint:
        g.endpoints.push_back(&n);
        break;
    }
  }
  // Workers run the application's worker: cloud workers then edges (docs/original.md §7.3 step 5).
  g.workers = g.clouds;
  g.workers.insert(g.workers.end(), g.edges.begin(), g.edges.end());
  // The original starts mosquitto on cloud workers, edges and endpoints, never on the controller.
  g.brokers = g.workers;
  g.brokers.insert(g.brokers.end(), g.endpoints.begin(), g.endpoints.end());
  return g;
}

// "a.b.c.d/len" of the guests' network (the gateway's, or prefix.middle.0 in bridge mode).
std::string guest_subnet(const plan::Network& net) {
  std::string base =
      !net.gateway.empty() ? net.gateway : net.prefix + "." + std::to_string(net.middle) + ".0";
  in_addr a{};
  if (net.prefix.empty() || ::inet_pton(AF_INET, base.c_str(), &a) != 1 || net.prefix_len < 0 ||
      net.prefix_len > 32)
    return "";
  uint32_t mask = net.prefix_len == 0 ? 0 : ~uint32_t{0} << (32 - net.prefix_len);
  a.s_addr = htonl(ntohl(a.s_addr) & mask);
  char buf[INET_ADDRSTRLEN];
  ::inet_ntop(AF_INET, &a, buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(net.prefix_len);
}

}  // namespace

std::vector<std::pair<std::string, std::vector<std::string>>> inventory_groups(
    const plan::Plan& plan) {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  Groups g = make_groups(plan);
  for (const auto& [name, members] : g.ordered()) {
    std::vector<std::string> ids;
    for (const Node* n : *members) ids.push_back(n->id);
    out.emplace_back(name, std::move(ids));
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> kube_version_vars(const config::Config& cfg) {
  const auto rm = cfg.benchmark ? cfg.benchmark->resource_manager : config::ResourceManager::none;
  if (!config::uses_kubernetes(rm)) return {};
  // As the original derives them from kube_version (v1.27.0): kubeversion 1.27.0,
  // kubeversion_major v1.27, kubeversionstrp v1270.
  std::string v = cfg.benchmark->kube_version;
  std::string bare = util::starts_with(v, "v") ? v.substr(1) : v;
  auto parts = util::split(bare, '.');
  std::string major = parts.size() >= 2 ? "v" + parts[0] + "." + parts[1] : "v" + bare;
  std::string strp = "v";
  for (char c : bare)
    if (c != '.') strp += c;
  return {{"kubeversion", bare}, {"kubeversion_major", major}, {"kubeversionstrp", strp}};
}

std::string guest_no_proxy(const plan::Plan& plan, const config::Infrastructure& infra,
                           const infra::Deployment* dep) {
  std::vector<std::string> list;
  auto add = [&](const std::string& item) {
    std::string t(util::trim(item));
    if (!t.empty() && std::find(list.begin(), list.end(), t) == list.end()) list.push_back(t);
  };
  for (const auto& item : util::split(infra.guest_no_proxy, ',')) add(item);
  // Traffic that must never go through the proxy: the guests themselves, the cluster's API and
  // registry on the guests' network, and Kubernetes' service and pod networks (the playbooks'
  // 10.96.0.0/12, flannel's 10.244.0.0/16, KubeEdge's 192.168.0.0/16).
  for (const char* item : {"localhost", "127.0.0.1", "::1"}) add(item);
  add(guest_subnet(plan.network));
  if (!plan.network.gateway.empty()) add(plan.network.gateway);
  for (const Node& n : plan.nodes) {
    const infra::DeployedNode* d = dep ? dep->find(n.id) : nullptr;
    add(d && !d->ip.empty() ? d->ip : n.ip);
  }
  for (const char* item :
       {"10.96.0.0/12", "10.244.0.0/16", "192.168.0.0/16", ".svc", ".cluster.local"})
    add(item);
  return util::join(list, ",");
}

std::vector<std::pair<std::string, std::string>> guest_proxy_env(
    const plan::Plan& plan, const config::Infrastructure& infra, const infra::Deployment* dep) {
  std::vector<std::pair<std::string, std::string>> env;
  if (infra.guest_http_proxy.empty() && infra.guest_https_proxy.empty()) return env;
  // Both spellings: curl and apt read the lower-case ones, Go programs (kubeadm, arkade, keadm)
  // the upper-case ones too.
  auto both = [&](const std::string& name, const std::string& value) {
    if (value.empty()) return;
    env.emplace_back(name, value);
    std::string upper = name;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    env.emplace_back(upper, value);
  };
  both("http_proxy", infra.guest_http_proxy);
  both("https_proxy", infra.guest_https_proxy);
  both("no_proxy", guest_no_proxy(plan, infra, dep));
  return env;
}

Expected<std::string> make_inventory(const plan::Plan& plan, const config::Config& cfg,
                                     const infra::Deployment& dep) {
  const auto rm = cfg.benchmark ? cfg.benchmark->resource_manager : config::ResourceManager::none;
  std::vector<HostEntry> entries;
  for (const Node& n : plan.nodes) {
    const infra::DeployedNode* d = dep.find(n.id);
    if (!d)
      return make_error("software: plan node " + n.id + " (" + n.name +
                        ") is not in the deployment; was the infrastructure phase complete?");
    if (d->ip.empty())
      return make_error("software: node " + n.id + " has no address in the deployment");
    entries.push_back({&n, d});
  }
  const Groups groups = make_groups(plan);
  const std::vector<const Node*>& controller = groups.controller;

  YAML::Emitter e;
  e << YAML::BeginMap << YAML::Key << "all" << YAML::Value << YAML::BeginMap;

  e << YAML::Key << "vars" << YAML::Value << YAML::BeginMap;
  kv(e, "ansible_python_interpreter", "/usr/bin/python3");
  kv(e, "ansible_ssh_private_key_file", dep.private_key.string());
  // Upstream: <base_path>/.continuum, where join-command.txt is fetched to. Here: the run's own
  // software directory, so concurrent runs never share it.
  kv(e, "continuum_home", (dep.run_dir / "software").string());
  kv(e, "mqtt_port", 1883);
  // The run's registry and the application's images in it (the containers phase fills
  // dep.registry and dep.images); Kubernetes' playbooks name the registry too.
  if (!dep.registry.empty())
    kv(e, "registry_ip", dep.registry);
  else if (config::uses_kubernetes(rm) && !plan.network.gateway.empty())
    kv(e, "registry_ip", plan.network.gateway + ":5000");
  for (const auto& [role, ref] : dep.images) kv(e, "image_" + role, ref);
  if (!controller.empty() && rm != config::ResourceManager::mist &&
      rm != config::ResourceManager::none) {
    const std::string ip = dep.find(controller.front()->id)->ip;
    kv(e, "cloud_ip", ip);
    kv(e, "cloud_ip_external", ip);
  }
  // [infrastructure] guest_*: the playbooks pass continuum_proxy_env as `environment:` and the
  // base playbook writes the apt proxy and mirror. Absent when not configured.
  if (auto env = guest_proxy_env(plan, cfg.infrastructure, &dep); !env.empty()) {
    e << YAML::Key << "continuum_proxy_env" << YAML::Value << YAML::BeginMap;
    for (const auto& [k, v] : env) e << YAML::Key << k << YAML::Value << YAML::DoubleQuoted << v;
    e << YAML::EndMap;
  }
  if (!cfg.infrastructure.guest_apt_proxy.empty())
    e << YAML::Key << "continuum_apt_proxy" << YAML::Value << YAML::DoubleQuoted
      << cfg.infrastructure.guest_apt_proxy;
  if (!cfg.infrastructure.guest_apt_mirror.empty())
    e << YAML::Key << "continuum_apt_mirror" << YAML::Value << YAML::DoubleQuoted
      << cfg.infrastructure.guest_apt_mirror;
  e << YAML::EndMap;

  e << YAML::Key << "hosts" << YAML::Value << YAML::BeginMap;
  for (const HostEntry& h : entries) {
    e << YAML::Key << h.node->name << YAML::Value << YAML::BeginMap;
    kv(e, "ansible_host", h.dep->ip);
    kv(e, "ansible_port", h.dep->ssh_port);
    kv(e, "ansible_user", h.dep->ssh_user);
    kv(e, "username", h.dep->ssh_user);
    kv(e, "continuum_node", h.node->id);
    kv(e, "continuum_tier", std::string(config::tier_name(h.node->tier)));
    e << YAML::EndMap;
  }
  e << YAML::EndMap;

  const std::vector<std::pair<std::string, std::string>> kube_vars = kube_version_vars(cfg);

  e << YAML::Key << "children" << YAML::Value << YAML::BeginMap;
  {
    std::vector<std::pair<std::string, std::string>> cc;
    if (!controller.empty()) {
      cc.push_back({"cloud_mode", plan.mode == "cloud" ? "1" : "0"});
      for (auto& kvp : kube_vars) cc.push_back(kvp);
    }
    emit_group(e, "cloudcontroller", controller, cc);
  }
  for (const auto& [name, members] : groups.ordered()) {
    if (name == "cloudcontroller") continue;
    emit_group(
        e, name, *members,
        name == "base_cloud" ? kube_vars : std::vector<std::pair<std::string, std::string>>{});
  }
  e << YAML::EndMap;

  e << YAML::EndMap << YAML::EndMap;
  if (!e.good()) return make_error("software: YAML emitter: " + e.GetLastError());
  return std::string("# Generated by continuum for this run; see docs/software.md.\n") + e.c_str() +
         "\n";
}

namespace {

// ssh expands %-tokens (and ${VAR}) in IdentityFile, UserKnownHostsFile and ControlPath: a
// literal % is %%.
std::string ssh_escape_percent(const std::string& v) {
  std::string r;
  for (char c : v) r += c == '%' ? std::string("%%") : std::string(1, c);
  return r;
}

// One ssh option value that ssh reads as a single word: %-escaped and double-quoted (ssh's own
// option parser honours "..." and backslash escapes), e.g. for a path with spaces.
std::string ssh_option_value(const std::string& v) {
  std::string r = "\"";
  for (char c : ssh_escape_percent(v)) {
    if (c == '"' || c == '\\') r += '\\';
    r += c;
  }
  return r + "\"";
}

}  // namespace

std::string make_ansible_cfg(const AnsibleSettings& s) {
  // Ansible reads ansible.cfg values raw (ConfigParser get(..., raw=True): no %-interpolation), so
  // paths go in as they are, except where the value ends up in ssh's own option parsing:
  //   ssh_args is split with shlex, then each -o value is parsed by ssh -> shell-quoted words whose
  //     values are double-quoted and %-escaped (ssh_option_value);
  //   private_key_file becomes -o IdentityFile="<value>" -> %-escaped for ssh;
  //   control_path is Python-%-formatted by Ansible, then a ControlPath="<value>" for ssh -> the
  //     directory is written out (not %(directory)s, which would insert it unescaped) with each
  //     literal % as %%%% (Python makes it %%, ssh makes it %).
  // A run directory carries the configuration's name, so "my 100% exp.cfg" reaches all of them.
  // ssh_args replaces Ansible's default, so ControlMaster/ControlPersist are restated. Host keys
  // are pinned: the run's known_hosts only, strict checking, never the user's ~/.ssh/known_hosts.
  std::vector<std::string> ssh_args = {
      "-o ControlMaster=auto",
      "-o ControlPersist=60s",
      "-o " + util::shell_quote("UserKnownHostsFile=" + ssh_option_value(s.known_hosts.string())),
      "-o StrictHostKeyChecking=yes",
      "-o IdentitiesOnly=yes",
      "-o BatchMode=yes",
      "-o ServerAliveInterval=15",
      "-o ConnectTimeout=" + std::to_string(s.connect_timeout_s),
  };
  std::string control_path;
  for (char c : ssh_escape_percent(s.control_path_dir.string()))
    control_path += c == '%' ? std::string("%%") : std::string(1, c);
  std::string c;
  c +=
      "# Generated by continuum for this run (exported as ANSIBLE_CONFIG); see docs/software.md.\n";
  c += "[defaults]\n";
  c += "inventory = " + (s.software_dir / "inventory.yml").string() + "\n";
  c += "private_key_file = " + ssh_escape_percent(s.private_key.string()) + "\n";
  c += "host_key_checking = True\n";
  c += "forks = " + std::to_string(s.forks) + "\n";
  c += "timeout = " + std::to_string(s.connect_timeout_s) + "\n";
  // Facts cost ~15 s per host under TCG; playbooks that need some gather a subset.
  c += "gathering = explicit\n";
  c += "interpreter_python = /usr/bin/python3\n";
  c += "stdout_callback = default\n";
  c += "callback_result_format = json\n";
  c += "display_skipped_hosts = True\n";
  c += "show_task_path_on_failure = False\n";
  c += "nocolor = True\n";
  c += "retry_files_enabled = False\n";
  c += "local_tmp = " + (s.software_dir / "tmp").string() + "\n";
  c += "deprecation_warnings = False\n";
  c += "\n[ssh_connection]\n";
  c += "pipelining = True\n";
  // Still needed with a full control_path: Ansible creates this directory (default ~/.ansible/cp).
  c += "control_path_dir = " + s.control_path_dir.string() + "\n";
  // %C: a hash of host, port and user, so the socket name is short and fixed length.
  c += "control_path = " + control_path + "/%%C\n";
  c += "ssh_args = " + util::join(ssh_args, " ") + "\n";
  c += "retries = 2\n";
  return c;
}

Expected<std::filesystem::path> make_control_path_dir(const std::filesystem::path& software_dir) {
  std::filesystem::path dir = software_dir / "cp";
  // sun_path holds 107 characters; ssh appends "/" + 40 hex digits and, while creating the
  // socket, a ".XXXXXXXXXXXXXXXX" suffix of 17 more.
  if (dir.string().size() + 1 + 40 + 17 <= 107) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return make_error("cannot create " + dir.string() + ": " + ec.message());
    ::chmod(dir.c_str(), 0700);
    return dir;
  }
  std::string tmpl = "/tmp/continuum-cp-XXXXXX";
  if (!::mkdtemp(tmpl.data())) return make_error("mkdtemp " + tmpl + " failed");
  return std::filesystem::path(tmpl);
}

Status close_control_masters(const std::filesystem::path& dir) {
  std::error_code ec;
  if (dir.empty() || !std::filesystem::exists(dir, ec)) return {};
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (!entry.is_socket(ec)) continue;
    // The host argument is ignored with -S; the socket names the master.
    util::ProcessSpec spec;
    spec.argv = {"ssh", "-o",   "ControlPath=" + ssh_option_value(entry.path().string()),
                 "-O",  "exit", "continuum-control-master"};
    spec.timeout = std::chrono::seconds(10);
    auto r = util::run_process(spec);
    if (!r.ok() || r->exit_code != 0)
      spdlog::debug("closing SSH master {}: {}", entry.path().string(),
                    r.ok() ? util::trim(r->err) : r.error().message);
  }
  std::filesystem::remove_all(dir, ec);
  if (ec) return make_error("cannot remove " + dir.string() + ": " + ec.message());
  return {};
}

}  // namespace continuum::software

#include "continuum/software/inventory.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <vector>

#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include "continuum/util/files.h"
#include "continuum/util/process.h"
#include "continuum/util/strings.h"

namespace continuum::software {
namespace {

using plan::Node;

bool kube_family(const std::string& rm) {
  return rm == "kubernetes" || rm == "kubeedge" || rm == "kubecontrol" || rm == "kube_kata";
}

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

}  // namespace

Expected<std::string> make_inventory(const plan::Plan& plan, const config::Config& cfg,
                                     const infra::Deployment& dep) {
  const std::string rm = cfg.benchmark ? cfg.benchmark->resource_manager : "";
  std::vector<HostEntry> entries;
  std::vector<const Node*> controller, clouds, edges, endpoints, all, base_cloud, workers, brokers;
  for (const Node& n : plan.nodes) {
    const infra::DeployedNode* d = dep.find(n.id);
    if (!d) return make_error("software: plan node " + n.id + " (" + n.name +
                              ") is not in the deployment; was the infrastructure phase complete?");
    if (d->ip.empty()) return make_error("software: node " + n.id + " has no address in the deployment");
    entries.push_back({&n, d});
    all.push_back(&n);
    switch (n.tier) {
      case config::Tier::cloud:
        base_cloud.push_back(&n);
        (n.controller ? controller : clouds).push_back(&n);
        break;
      case config::Tier::edge: edges.push_back(&n); break;
      case config::Tier::endpoint: endpoints.push_back(&n); break;
    }
  }
  // Workers run the application's worker: cloud workers then edges (upstream-spec §7.3 step 5).
  workers = clouds;
  workers.insert(workers.end(), edges.begin(), edges.end());
  // The original starts mosquitto on cloud workers, edges and endpoints, never on the controller.
  brokers = workers;
  brokers.insert(brokers.end(), endpoints.begin(), endpoints.end());

  YAML::Emitter e;
  e << YAML::BeginMap << YAML::Key << "all" << YAML::Value << YAML::BeginMap;

  e << YAML::Key << "vars" << YAML::Value << YAML::BeginMap;
  kv(e, "ansible_python_interpreter", "/usr/bin/python3");
  kv(e, "ansible_ssh_private_key_file", dep.private_key.string());
  // Upstream: <base_path>/.continuum, where join-command.txt is fetched to. Here: the run's own
  // software directory, so concurrent runs never share it.
  kv(e, "continuum_home", (dep.run_dir / "software").string());
  kv(e, "mqtt_port", 1883);
  if (kube_family(rm) && !plan.network.gateway.empty())
    kv(e, "registry_ip", plan.network.gateway + ":5000");
  if (!controller.empty() && !rm.empty() && rm != "mist" && rm != "none") {
    const std::string ip = dep.find(controller.front()->id)->ip;
    kv(e, "cloud_ip", ip);
    kv(e, "cloud_ip_external", ip);
  }
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

  // Kubernetes version variables as the original derives them from kube_version (v1.27.0):
  // kubeversion 1.27.0, kubeversion_major v1.27, kubeversionstrp v1270.
  std::vector<std::pair<std::string, std::string>> kube_vars;
  if (kube_family(rm)) {
    std::string v = cfg.benchmark->kube_version;
    std::string bare = util::starts_with(v, "v") ? v.substr(1) : v;
    auto parts = util::split(bare, '.');
    std::string major = parts.size() >= 2 ? "v" + parts[0] + "." + parts[1] : "v" + bare;
    std::string strp = "v";
    for (char c : bare)
      if (c != '.') strp += c;
    kube_vars = {{"kubeversion", bare}, {"kubeversion_major", major}, {"kubeversionstrp", strp}};
  }

  e << YAML::Key << "children" << YAML::Value << YAML::BeginMap;
  {
    std::vector<std::pair<std::string, std::string>> cc;
    if (!controller.empty()) {
      cc.push_back({"cloud_mode", plan.mode == "cloud" ? "1" : "0"});
      for (auto& kvp : kube_vars) cc.push_back(kvp);
    }
    emit_group(e, "cloudcontroller", controller, cc);
  }
  emit_group(e, "clouds", clouds, {});
  emit_group(e, "edges", edges, {});
  emit_group(e, "endpoints", endpoints, {});
  emit_group(e, "base", all, {});
  emit_group(e, "base_cloud", base_cloud, kube_vars);
  emit_group(e, "base_edge", edges, {});
  emit_group(e, "base_endpoint", endpoints, {});
  emit_group(e, "workers", workers, {});
  emit_group(e, "brokers", brokers, {});
  e << YAML::EndMap;

  e << YAML::EndMap << YAML::EndMap;
  if (!e.good()) return make_error("software: YAML emitter: " + e.GetLastError());
  return std::string("# Generated by continuum for this run; see docs/software.md.\n") + e.c_str() +
         "\n";
}

std::string make_ansible_cfg(const AnsibleSettings& s) {
  // ssh_args replaces Ansible's default, so ControlMaster/ControlPersist are restated. Host keys
  // are pinned: the run's known_hosts only, strict checking, never the user's ~/.ssh/known_hosts.
  std::vector<std::string> ssh_args = {
      "-o ControlMaster=auto",
      "-o ControlPersist=60s",
      "-o UserKnownHostsFile=" + s.known_hosts.string(),
      "-o StrictHostKeyChecking=yes",
      "-o IdentitiesOnly=yes",
      "-o BatchMode=yes",
      "-o ServerAliveInterval=15",
      "-o ConnectTimeout=" + std::to_string(s.connect_timeout_s),
  };
  std::string c;
  c += "# Generated by continuum for this run (exported as ANSIBLE_CONFIG); see docs/software.md.\n";
  c += "[defaults]\n";
  c += "inventory = " + (s.software_dir / "inventory.yml").string() + "\n";
  c += "private_key_file = " + s.private_key.string() + "\n";
  c += "host_key_checking = True\n";
  c += "forks = " + std::to_string(s.forks) + "\n";
  c += "timeout = " + std::to_string(s.connect_timeout_s) + "\n";
  // Facts cost ~15 s per host under TCG (lab.md); playbooks that need some gather a subset.
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
  c += "control_path_dir = " + s.control_path_dir.string() + "\n";
  // %C: a hash of host, port and user, so the socket name is short and fixed length.
  c += "control_path = %(directory)s/%%C\n";
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
    spec.argv = {"ssh", "-o", "ControlPath=" + entry.path().string(), "-O", "exit",
                 "continuum-control-master"};
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

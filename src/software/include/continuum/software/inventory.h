#pragma once
// The Ansible inventory and ansible.cfg of one run (docs/design.md §6, docs/original.md §6.3). Both
// live in <run>/software/ and nothing outside the run directory is touched: ansible-playbook is
// pointed at them with ANSIBLE_CONFIG, unlike the original, which asked users to edit /etc/ansible.
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "continuum/config/config.h"
#include "continuum/infra/deployment.h"
#include "continuum/plan/plan.h"
#include "continuum/util/expected.h"

namespace continuum::software {

/// inventory.yml for the deployed nodes. Groups keep the original's names so its playbook
/// structure carries over: cloudcontroller, clouds (cloud workers), edges, endpoints; base and
/// base_cloud/base_edge/base_endpoint (every VM / every VM of a tier: the original's base images
/// do not exist here, the playbooks that installed into them install into the VMs); plus
/// brokers (nodes that run mosquitto: workers and endpoints) and workers (nodes that run the
/// application's worker: cloud workers, then edges). Variables as the original (cloud_ip,
/// kubeversion, registry_ip, username, ...). Addresses come from the Deployment, roles from
/// the Plan; a plan node missing from the deployment is an error. all.vars also carries the
/// guests' proxies and apt source when configured (continuum_proxy_env, continuum_apt_proxy,
/// continuum_apt_mirror; docs/software.md).
Expected<std::string> make_inventory(const plan::Plan& plan, const config::Config& cfg,
                                     const infra::Deployment& dep);

/// The inventory's groups in the order make_inventory writes them, each with its members' plan
/// node ids (a node may be in several groups).
std::vector<std::pair<std::string, std::vector<std::string>>> inventory_groups(
    const plan::Plan& plan);

/// kubeversion, kubeversion_major, kubeversionstrp as the original derives them from
/// kube_version (v1.27.0 -> 1.27.0, v1.27, v1270); empty unless the resource manager is of the
/// Kubernetes family.
std::vector<std::pair<std::string, std::string>> kube_version_vars(const config::Config& cfg);

/// The guests' no_proxy list: [infrastructure] guest_no_proxy, then loopback, the guests'
/// network and addresses (from the deployment when given, else the plan) and Kubernetes'
/// service/pod networks, which must never go through a proxy. Comma-separated, no duplicates.
std::string guest_no_proxy(const plan::Plan& plan, const config::Infrastructure& infra,
                           const infra::Deployment* dep);

/// The proxy environment of the playbooks' downloads (inventory variable continuum_proxy_env,
/// passed as `environment:`): http_proxy, https_proxy and no_proxy, each also upper-case; empty
/// when neither guest_http_proxy nor guest_https_proxy is set.
std::vector<std::pair<std::string, std::string>> guest_proxy_env(
    const plan::Plan& plan, const config::Infrastructure& infra, const infra::Deployment* dep);

/// What ansible.cfg needs to know about the run.
struct AnsibleSettings {
  std::filesystem::path software_dir;  ///< <run>/software
  std::filesystem::path private_key;
  std::filesystem::path known_hosts;       ///< pinned host keys (StrictHostKeyChecking=yes)
  std::filesystem::path control_path_dir;  ///< SSH ControlMaster sockets of this run only
  int forks = 50;
  int connect_timeout_s = 30;
};

/// ansible.cfg text: inventory, key, pinned known_hosts, pipelining, per-run ControlPath,
/// no fact gathering, plain (no colour) default output with JSON results, no retry files.
std::string make_ansible_cfg(const AnsibleSettings& s);

/// A ControlPath directory for the run: <software_dir>/cp when short enough for a unix socket
/// path (sun_path is 108 bytes; the socket name is a 40-character hash), otherwise a fresh
/// private directory under /tmp. Created with mode 0700.
Expected<std::filesystem::path> make_control_path_dir(const std::filesystem::path& software_dir);

/// Ends every SSH ControlMaster whose socket is in `dir` (`ssh -O exit -S <socket>`) and removes
/// the directory. A master that outlives its guest makes a later guest at the same address hang
/// Ansible (docs/design.md §9.4), so every run closes its own at the end of the software phase.
Status close_control_masters(const std::filesystem::path& dir);

}  // namespace continuum::software

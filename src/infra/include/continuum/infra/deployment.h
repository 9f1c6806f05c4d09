#pragma once
// What the infrastructure phase hands to the later phases (docs/design.md §2): per node, how to
// reach it. Saved as <run>/deployment.json so `report`, `destroy` and reruns can read it back.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "continuum/util/expected.h"
#include "continuum/util/remote_pool.h"
#include "continuum/util/ssh.h"

namespace continuum::infra {

struct DeployedNode {
  std::string id;    ///< plan node id: cloud_controller, cloud0, endpoint0
  std::string name;  ///< domain name: cloud0_<user>
  std::string tier;  ///< cloud | edge | endpoint
  std::string ip;
  std::string ssh_user;
  int ssh_port = 22;
  std::string interface;    ///< guest NIC used for tc (found in the guest; "" until known)
  double boot_seconds = 0;  ///< start -> SSH login
};

struct Deployment {
  std::filesystem::path run_dir;
  std::filesystem::path private_key;  ///< key the guests accept
  std::filesystem::path known_hosts;  ///< <run>/known_hosts, pinned host keys
  /// Network namespace to reach the guests from ("" = current); see util::SshTarget::netns.
  std::string netns;
  std::vector<DeployedNode> nodes;
  /// When the benchmark runs containers: the run's registry (host:port, on the VM network's
  /// gateway) and the application's images in it, by role (subscriber, publisher, combined) as
  /// the guests pull them (registry/name:tag). Set by the run's containers step.
  std::string registry;
  std::map<std::string, std::string> images;
  /// The registry's storage (kept across runs as a cache; `destroy` says so and leaves it).
  std::filesystem::path registry_storage;

  /// The run's SSH sessions, one per guest, reused by every phase (util/remote_pool.h). Set by
  /// apply() for the run that deployed; a Deployment read back from deployment.json has none and
  /// connects anew each time. Shared by copies of this Deployment.
  std::shared_ptr<util::RemotePool> remotes;

  util::SshTarget ssh_target(const DeployedNode& n) const;
  /// A session to `n`: from `remotes` when set, else a new connection. `cancel` as
  /// util::SshTarget::cancel.
  Expected<util::RemotePtr> connect(const DeployedNode& n, std::chrono::milliseconds timeout,
                                    const std::atomic<bool>* cancel = nullptr) const;
  const DeployedNode* find(const std::string& id) const;
};

nlohmann::json to_json(const Deployment& d);
Expected<Deployment> deployment_from_json(const nlohmann::json& j);

}  // namespace continuum::infra

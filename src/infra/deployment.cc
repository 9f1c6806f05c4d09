#include "continuum/infra/deployment.h"

#include <nlohmann/json.hpp>

namespace continuum::infra {

util::SshTarget Deployment::ssh_target(const DeployedNode& n) const {
  util::SshTarget t;
  t.host = n.ip;
  t.port = n.ssh_port;
  t.user = n.ssh_user;
  t.private_key = private_key;
  t.known_hosts = known_hosts;
  t.netns = netns;
  return t;
}

Expected<util::RemotePtr> Deployment::connect(const DeployedNode& n,
                                              std::chrono::milliseconds timeout,
                                              const std::atomic<bool>* cancel) const {
  util::SshTarget t = ssh_target(n);
  t.cancel = cancel;
  if (remotes) return remotes->get(t, timeout);
  return util::ssh_connect(t, timeout);
}

const DeployedNode* Deployment::find(const std::string& id) const {
  for (const auto& n : nodes)
    if (n.id == id || n.name == id) return &n;
  return nullptr;
}

nlohmann::json to_json(const Deployment& d) {
  nlohmann::json nodes = nlohmann::json::array();
  for (const auto& n : d.nodes)
    nodes.push_back({{"id", n.id},
                     {"name", n.name},
                     {"tier", n.tier},
                     {"ip", n.ip},
                     {"ssh_user", n.ssh_user},
                     {"ssh_port", n.ssh_port},
                     {"interface", n.interface},
                     {"boot_seconds", n.boot_seconds}});
  nlohmann::json j = {{"run_dir", d.run_dir.string()},
                      {"private_key", d.private_key.string()},
                      {"known_hosts", d.known_hosts.string()},
                      {"netns", d.netns},
                      {"nodes", nodes}};
  if (!d.registry.empty()) {
    j["registry"] = d.registry;
    j["images"] = d.images;
    j["registry_storage"] = d.registry_storage.string();
  }
  return j;
}

Expected<Deployment> deployment_from_json(const nlohmann::json& j) {
  try {
    Deployment d;
    d.run_dir = j.at("run_dir").get<std::string>();
    d.private_key = j.at("private_key").get<std::string>();
    d.known_hosts = j.at("known_hosts").get<std::string>();
    d.netns = j.value("netns", "");
    d.registry = j.value("registry", "");
    d.registry_storage = j.value("registry_storage", "");
    if (j.contains("images")) d.images = j.at("images").get<std::map<std::string, std::string>>();
    for (const auto& n : j.at("nodes")) {
      DeployedNode x;
      x.id = n.at("id");
      x.name = n.at("name");
      x.tier = n.at("tier");
      x.ip = n.at("ip");
      x.ssh_user = n.at("ssh_user");
      x.ssh_port = n.value("ssh_port", 22);
      x.interface = n.value("interface", "");
      x.boot_seconds = n.value("boot_seconds", 0.0);
      d.nodes.push_back(std::move(x));
    }
    return d;
  } catch (const nlohmann::json::exception& e) {
    return make_error(std::string("deployment.json: ") + e.what());
  }
}

}  // namespace continuum::infra

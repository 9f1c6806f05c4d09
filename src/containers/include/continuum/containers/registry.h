#pragma once
// The image registry of a run: Debian's `docker-registry` (the distribution registry, as the
// original runs on its host at port 5000), listening on one address only (the VM network's
// gateway in a run, loopback in tests), never on all interfaces. Its storage is a directory the
// caller chooses (the image cache keeps pushed images across runs); the process lives as long as
// the Registry handle and is stopped by PID (util::Background).
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "continuum/util/background.h"
#include "continuum/util/expected.h"

namespace continuum::containers {

struct RegistryOptions {
  std::string address = "127.0.0.1";  ///< the one address it listens on
  int port = 5000;
  std::filesystem::path storage;  ///< blobs and manifests
  std::filesystem::path dir;      ///< registry.yml and registry.log are written here
  /// Put before the command, e.g. {"ip", "netns", "exec", NS} to listen inside a namespace.
  std::vector<std::string> wrap;
  std::chrono::milliseconds ready_timeout{15000};
};

/// The registry's configuration file (distribution's YAML): the listen address, filesystem
/// storage with deletes allowed, no authentication (plain HTTP on a private network), access log
/// on.
std::string registry_config(const RegistryOptions& o);

class Registry {
 public:
  /// Writes the configuration, starts the registry and returns once it listens (its log says
  /// "listening on"); an error if it exits first (the log's last lines say why, e.g. the address
  /// is in use) or does not listen within ready_timeout.
  static Expected<std::unique_ptr<Registry>> start(const RegistryOptions& o);

  /// host:port, as image references and `insecure-registries` name it.
  std::string endpoint() const;
  pid_t pid() const { return process_->pid(); }
  const std::filesystem::path& log() const { return log_; }
  /// Stops the process (SIGTERM, then SIGKILL); the storage stays.
  void stop() { process_->stop(); }

 private:
  Registry(RegistryOptions o, std::unique_ptr<util::Background> p, std::filesystem::path log)
      : opts_(std::move(o)), process_(std::move(p)), log_(std::move(log)) {}
  RegistryOptions opts_;
  std::unique_ptr<util::Background> process_;
  std::filesystem::path log_;
};

}  // namespace continuum::containers

#pragma once
// The containers step of `continuum CONFIG` (resource_manager = mist, docs/containers.md): the
// application's images built on the host (or found in the cache), the run's registry started on
// the VM network's gateway and recorded in the ledger, the images pushed to it, and the
// Deployment told where the guests pull them from. The registry runs while continuum runs: stop()
// at the end of the run, `continuum destroy` after a crash (the ledger has its PID and start
// time). Its storage stays in the image cache, so the next run's pushes move no layer again.
#include <filesystem>
#include <memory>
#include <optional>

#include "continuum/config/config.h"
#include "continuum/containers/app_images.h"
#include "continuum/containers/registry.h"
#include "continuum/infra/deployment.h"
#include "continuum/plan/plan.h"
#include "continuum/record/events.h"

namespace continuum::cli {

/// Where the application's container images are cached: <image cache>/containers.
std::filesystem::path container_cache_dir(const config::Infrastructure& infra);

/// The built guest programs the images hold (as the offline image finds them:
/// CONTINUUM_GUEST_APP_DIR when set and not empty, else util::app_dir()).
std::filesystem::path guest_program_dir();

class ContainerService {
 public:
  /// Builds, starts, pushes; fills d.registry and d.images.
  static Expected<std::unique_ptr<ContainerService>> start(const config::Config& cfg,
                                                           const plan::Plan& p,
                                                           infra::Deployment& d,
                                                           record::EventLog* events);
  ~ContainerService() { stop(); }
  ContainerService(const ContainerService&) = delete;
  ContainerService& operator=(const ContainerService&) = delete;
  /// Stops the registry and marks it removed in the ledger. Idempotent.
  void stop();
  const containers::AppImages& images() const { return images_; }

 private:
  ContainerService() = default;
  std::filesystem::path ledger_file_;
  std::optional<size_t> ledger_id_;
  std::unique_ptr<containers::Registry> registry_;
  containers::AppImages images_;
};

}  // namespace continuum::cli

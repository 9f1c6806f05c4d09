#include "container_step.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "continuum/infra/image.h"
#include "continuum/infra/ledger.h"
#include "continuum/util/background.h"
#include "continuum/util/files.h"
#include "continuum/util/interrupt.h"
#include "continuum/util/paths.h"

namespace continuum::cli {
namespace fs = std::filesystem;

namespace {

// The original's registry port (docs/original.md §6.6).
constexpr int kRegistryPort = 5000;

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Records the running registry in the ledger (after it started: before, there is no PID to
/// record), so that `destroy` stops it if continuum dies without stopping it.
Expected<size_t> record_registry(const fs::path& ledger_file, pid_t pid) {
  auto id = util::process_identity(pid);
  if (!id) return make_error("the registry (PID " + std::to_string(pid) + ") is not running");
  auto ledger = TRY(infra::Ledger::load(ledger_file));
  infra::Resource r;
  r.kind = infra::ResourceKind::process;
  r.name = id->str();
  r.node = "";
  const size_t lid = TRY(ledger->intend(r));
  TRY_STATUS(ledger->set_state({lid}, infra::ResourceState::created));
  return lid;
}

}  // namespace

fs::path container_cache_dir(const config::Infrastructure& infra) {
  return infra::image_cache_dir(infra) / "containers";
}

fs::path guest_program_dir() {
  if (const char* env = std::getenv("CONTINUUM_GUEST_APP_DIR"); env && *env) return env;
  return util::app_dir();
}

Expected<std::unique_ptr<ContainerService>> ContainerService::start(const config::Config& cfg,
                                                                    const plan::Plan& p,
                                                                    infra::Deployment& d,
                                                                    record::EventLog* events) {
  if (p.network.gateway.empty())
    return make_error(
        "resource_manager = mist: the run's image registry listens on the managed network's "
        "gateway, and this network has none (bridge mode); use the managed network",
        ExitCode::usage);
  std::unique_ptr<ContainerService> s(new ContainerService());
  const fs::path cache = container_cache_dir(cfg.infrastructure);

  // 1. Images: built or found in the cache.
  auto t0 = std::chrono::steady_clock::now();
  containers::AppImageOptions io;
  io.cache_dir = cache;
  io.app_dir = guest_program_dir();
  io.force = cfg.benchmark && cfg.benchmark->docker_pull;
  io.cancel = util::interrupt_flag();
  s->images_ = TRY(containers::ensure_application_images(io));
  nlohmann::json built = nlohmann::json::array();
  for (const auto& i : s->images_.images)
    built.push_back({{"image", i.name + ":" + i.tag},
                     {"cached", i.cached},
                     {"seconds", i.seconds},
                     {"bytes", i.bytes}});
  if (events)
    events->emit("containers", "images", "", -1, "",
                 {{"images", built},
                  {"rootfs_cached", s->images_.rootfs_cached},
                  {"rootfs_seconds", s->images_.rootfs_seconds},
                  {"seconds", since(t0)}});

  // 2. The registry, on the gateway only, its storage in the image cache.
  containers::RegistryOptions ro;
  ro.address = p.network.gateway;
  ro.port = kRegistryPort;
  ro.storage = cache / "registry";
  ro.dir = d.run_dir / "containers";
  s->registry_ = TRY(containers::Registry::start(ro));
  s->ledger_file_ = d.run_dir / "state.json";
  s->ledger_id_ = TRY(record_registry(s->ledger_file_, s->registry_->pid()));
  const std::string endpoint = s->registry_->endpoint();
  spdlog::info("containers: registry {} (PID {}), log {}", endpoint, s->registry_->pid(),
               s->registry_->log().string());

  // 3. Push; the guests pull in the software phase (playbooks/docker).
  t0 = std::chrono::steady_clock::now();
  for (const auto& i : s->images_.images) {
    TRY_STATUS(containers::push_image(i, endpoint));
    const std::string role = i.name.substr(i.name.rfind('_') + 1);
    d.images[role] = endpoint + "/" + i.name + ":" + i.tag;
  }
  d.registry = endpoint;
  d.registry_storage = ro.storage;
  // deployment.json tells `destroy` (and the reader) about the registry and its kept storage.
  if (auto st =
          util::write_file_atomic(d.run_dir / "deployment.json", infra::to_json(d).dump(2) + "\n");
      !st)
    spdlog::warn("{}", st.error().message);
  spdlog::info("containers: {} image(s) pushed to {} in {:.1f} s", s->images_.images.size(),
               endpoint, since(t0));
  if (events)
    events->emit("containers", "pushed", "", -1, "",
                 {{"registry", endpoint}, {"images", d.images}, {"seconds", since(t0)}});
  return s;
}

void ContainerService::stop() {
  if (!registry_) return;
  registry_->stop();
  registry_.reset();
  if (!ledger_id_) return;
  auto ledger = infra::Ledger::load(ledger_file_);
  Status st = ledger ? (*ledger)->set_state({*ledger_id_}, infra::ResourceState::removed)
                     : Status(ledger.error());
  if (!st) spdlog::warn("registry stopped, but the ledger says otherwise: {}", st.error().message);
  ledger_id_.reset();
}

}  // namespace continuum::cli

// ApplyOptions from a configuration: the [infrastructure] keys plus the real image and SSH
// readiness implementations. Kept apart from apply.cc so apply itself depends only on interfaces.
#include "continuum/infra/apply.h"
#include "continuum/infra/image.h"
#include "continuum/util/files.h"
#include "continuum/util/interrupt.h"

namespace continuum::infra {

std::string image_variant(const config::Config& cfg) {
  if (!cfg.infrastructure.image_variant.empty()) return cfg.infrastructure.image_variant;
  // The offline image with a container engine only where the benchmark runs containers: it is
  // twice the size and takes longer to build.
  if (config::runs_in_containers(cfg)) return "docker";
  // Scaphandre inside the guests: only Debian 13 packages it, so those guests boot the energy
  // variant; with the host exporter nothing energy-related runs in the guests.
  if (cfg.energy.enabled && cfg.energy.exporter == config::Exporter::guest) return "energy";
  // netperf likewise: Debian 13 only.
  if (cfg.infrastructure.netperf) return "energy";
  return "default";
}

ApplyOptions apply_options(const config::Config& cfg, const std::filesystem::path& output_dir) {
  const auto& in = cfg.infrastructure;
  ApplyOptions o;
  o.output_dir = output_dir;
  o.accelerator = in.accelerator;
  o.boot_timeout = std::chrono::seconds(in.boot_timeout);
  o.virtiofs = in.virtiofs;
  o.virtiofs_host_dir = in.virtiofs_host_dir;
  o.virtiofs_guest_dir = in.virtiofs_guest_dir;
  o.private_key = util::expand_user(in.ssh_key.empty() ? "~/.ssh/id_rsa_continuum" : in.ssh_key);
  ImageOptions img;
  img.variant = image_variant(cfg);
  o.base_image = [in, img]() { return ensure_base_image(in, img); };
  auto timeout = o.boot_timeout;
  o.wait_ready = [timeout](const std::vector<ReadyTarget>& targets, util::RemotePool* pool) {
    ReadyOptions r;
    r.pool = pool;
    r.timeout = timeout;
    r.cancel = util::interrupt_flag();  // Ctrl-C ends the SSH wait too, not only the steps
    return wait_ready(targets, r);
  };
  return o;
}

}  // namespace continuum::infra

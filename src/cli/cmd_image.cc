// `continuum image build|list`: the offline base image cache
// (src/infra/include/continuum/infra/image.h).
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdio>
#include <iostream>

#include "commands.h"
#include "container_step.h"
#include "continuum/infra/image.h"
#include "continuum/util/files.h"
#include "continuum/util/interrupt.h"
#include "continuum/util/strings.h"

namespace continuum::cli {

int cmd_image(const Options& o) {
  config::Infrastructure infra;
  if (!o.image_base_path.empty()) infra.base_path = util::expand_user(o.image_base_path).string();
  std::filesystem::path cache = infra::image_cache_dir(infra);

  if (o.image_action == "list") {
    auto images = infra::list_cached_images(cache);
    if (images.empty()) {
      std::cout << "no cached images in " << cache.string()
                << " (continuum image build makes one)\n";
      return exit_status(ExitCode::ok);
    }
    std::cout << "images in " << cache.string() << ":\n";
    for (const auto& i : images) {
      char size[32];
      std::snprintf(size, sizeof size, "%.0f MB", static_cast<double>(i.bytes) / 1e6);
      std::cout << "  " << i.id << "  " << size << "  " << (i.created.empty() ? "-" : i.created)
                << "  " << i.detail << "\n    " << i.path.string() << "\n";
    }
    return exit_status(ExitCode::ok);
  }

  infra::ImageOptions opts;
  opts.variant = o.image_variant;
  opts.force = o.force;
  opts.cache_dir = cache;
  opts.progress = [](const std::string& line) { spdlog::info("{}", line); };
  auto img = infra::ensure_offline_image(opts);
  if (!img) {
    spdlog::error("{}", img.error().message);
    return exit_status(img.error().exit_code);
  }
  std::cout << "image " << img->id << "\n  disk    " << img->disk.string() << "\n  kernel  "
            << img->kernel.string() << "\n  initrd  " << img->initrd.string() << "\n  cmdline "
            << img->cmdline << "\n";
  // The docker variant is for resource_manager = mist, whose runs also need the application's
  // container images: built now too, so that a run finds everything in the cache.
  if (o.image_variant == "docker") {
    containers::AppImageOptions io;
    io.cache_dir = container_cache_dir(infra);
    io.app_dir = guest_program_dir();
    io.force = o.force;
    io.mirror = opts.mirror;
    io.progress = [](const std::string& line) { spdlog::info("{}", line); };
    io.cancel = util::interrupt_flag();
    auto apps = containers::ensure_application_images(io);
    if (!apps) {
      spdlog::error("{}", apps.error().message);
      return exit_status(apps.error().exit_code);
    }
    for (const auto& i : apps->images)
      std::cout << "container image " << i.name << ":" << i.tag << "  "
                << util::format_fixed(static_cast<double>(i.bytes) / 1e6, 1) << " MB\n    "
                << i.layout.string() << "\n";
  }
  return exit_status(ExitCode::ok);
}

}  // namespace continuum::cli

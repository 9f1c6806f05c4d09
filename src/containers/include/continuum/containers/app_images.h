#pragma once
// The application's container images (image_classification), built on the host without a
// daemon: a small Debian root filesystem holding only the guest programs' shared libraries
// (mmdebstrap --variant=extract), plus the programs continuum already builds (app/). Three
// images, as the original publishes: the worker (subscriber), the endpoint (publisher) and the
// endpoint-only combined image. The root filesystem is cached by its recipe hash, each image by
// its recipe hash (image.h), so a second run builds nothing and a changed program rebuilds only
// the images that hold it.
#include <atomic>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "continuum/containers/image.h"
#include "continuum/util/expected.h"

namespace continuum::containers {

/// The base root filesystem of the application images.
struct RootfsRecipe {
  std::string suite = "bookworm";
  /// What the programs link (libmosquitto, libstdc++): apt adds their dependencies (libc6, ...).
  std::vector<std::string> packages;
  std::string hash;  ///< sha256 over suite, packages and the customize step (hex)
};
RootfsRecipe app_rootfs_recipe();

/// The mmdebstrap command that makes the root filesystem in `dir` (tests read it).
std::vector<std::string> rootfs_command(const RootfsRecipe& r, const std::filesystem::path& dir,
                                        const std::string& mirror);

/// The three recipes from a root filesystem and the directory with continuum-worker and
/// continuum-endpoint. Names: continuum/image_classification_{subscriber,publisher,combined}
/// (the original's image names under continuum/). An error names a missing program.
Expected<std::vector<ImageRecipe>> application_recipes(const std::filesystem::path& rootfs,
                                                       const std::string& rootfs_id,
                                                       const std::filesystem::path& app_dir);

struct AppImageOptions {
  std::filesystem::path cache_dir;  ///< rootfs-<hash12>/ and the image layouts go here
  std::filesystem::path app_dir;    ///< the built guest programs
  std::string mirror = "http://deb.debian.org/debian";
  /// Rebuild the images even when cached (docker_pull = True: fresh images, as the original
  /// pulled its images again); the root filesystem is reused.
  bool force = false;
  std::function<void(const std::string&)> progress;
  /// When it becomes true (Ctrl-C), a running root filesystem build is stopped.
  const std::atomic<bool>* cancel = nullptr;
};

struct AppImages {
  std::vector<BuiltImage> images;  ///< subscriber, publisher, combined
  bool rootfs_cached = false;
  double rootfs_seconds = 0;  ///< 0 when cached
  uintmax_t rootfs_bytes = 0;
  /// The image whose name ends with `suffix` (subscriber, publisher, combined); nullptr if none.
  const BuiltImage* find(const std::string& suffix) const;
};

/// Builds (or finds in the cache) the root filesystem and the three images. Needs root (mmdebstrap
/// in root mode) for a cold root filesystem.
Expected<AppImages> ensure_application_images(const AppImageOptions& o);

}  // namespace continuum::containers

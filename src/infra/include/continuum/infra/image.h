#pragma once
// Base images (docs/design.md §5). Three sources, one result (BaseImage):
//   - the offline image (config base_image empty): built by `continuum image build` or on first
//     use with mmdebstrap from Debian's mirror, customised by a hook (first-boot seed unit, a tiny
//     busybox initrd for direct kernel boot, the guest app when built), cached in
//     <cache>/offline-<variant>-<recipe hash>/ and rebuilt only when the recipe changes;
//   - a local disk image (path);
//   - an http(s) URL, downloaded once into the cache (sha256 checked when base_image_sha256 is
//   set).
// Every cache entry is made under a temp name and renamed into place when complete, so a partial
// image is never picked up by a later run.
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "continuum/config/config.h"
#include "continuum/util/expected.h"

namespace continuum::infra {

/// What a VM boots from. Per-VM disks are qcow2 overlays backed by `disk`.
struct BaseImage {
  std::filesystem::path disk;    ///< base disk image (read-only to VMs: use an overlay)
  std::string format = "qcow2";  ///< format of `disk` (qcow2, raw): the overlay's backing format
  std::filesystem::path kernel;  ///< direct kernel boot; "" = the disk boots itself (bootloader)
  std::filesystem::path initrd;
  std::string cmdline;  ///< kernel command line for direct kernel boot
  std::string id;       ///< offline-default-<hash12>, url-<hash12>, or the local path
  /// true: the guest applies the seed with continuum's first-boot unit (fast); false: cloud-init.
  bool first_boot_unit = false;
};

struct ImageOptions {
  /// offline recipe variant: default | cloudinit | docker | energy (Debian 13, Scaphandre)
  std::string variant = "default";
  bool force = false;  ///< rebuild / re-download even when cached
  /// Cache directory; "" = image_cache_dir(infra).
  std::filesystem::path cache_dir;
  /// Directory with built guest programs (continuum-*) to copy into the offline image;
  /// "" = $CONTINUUM_GUEST_APP_DIR if set (set but empty: none), else util::app_dir().
  std::filesystem::path app_dir;
  std::string mirror = "http://deb.debian.org/debian";
  /// Progress lines (build steps, download progress); may be empty.
  std::function<void(const std::string&)> progress;
};

/// The offline image recipe: everything its content depends on.
struct ImageRecipe {
  std::string variant;
  std::string suite = "bookworm";  ///< Debian suite; trixie for the energy variant
  std::vector<std::string> packages;
  std::string hook;                              ///< customize-hook script (sh)
  std::vector<std::filesystem::path> app_files;  ///< copied into /usr/local/bin
  std::string hash;                              ///< sha256 over all of the above (hex)
};

/// `<base_path>/.continuum/images` (base_path "" = $HOME), as upstream keeps its images.
std::filesystem::path image_cache_dir(const config::Infrastructure& infra);

/// The recipe of an offline variant; an unknown variant is an Error (exit code 2).
Expected<ImageRecipe> offline_recipe(const std::string& variant,
                                     const std::filesystem::path& app_dir);

/// The offline variant a run's guests boot: [infrastructure] image_variant when set, else
/// docker for resource_manager = mist, energy for [energy] exporter = guest (Scaphandre in the
/// guests), else default. (Defined with apply_options, which uses it.)
std::string image_variant(const config::Config& cfg);

/// Returns the cached offline image for `opts.variant`, building it first when absent or forced.
Expected<BaseImage> ensure_offline_image(const ImageOptions& opts);

/// The base image a run uses, per config (base_image, base_image_sha256, base_path).
Expected<BaseImage> ensure_base_image(const config::Infrastructure& infra, ImageOptions opts = {});

/// One entry of the cache, for `continuum image list`.
struct CachedImage {
  std::string id;
  std::filesystem::path path;
  uint64_t bytes = 0;
  std::string created;  ///< RFC 3339 (UTC) from image.json, or ""
  std::string detail;   ///< recipe summary or source URL
};
std::vector<CachedImage> list_cached_images(const std::filesystem::path& cache_dir);

/// The format of a disk image as qemu-img sees it (qcow2, raw, ...).
Expected<std::string> disk_format(const std::filesystem::path& path);

}  // namespace continuum::infra

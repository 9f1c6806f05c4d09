#pragma once
// Container images built on the host without a daemon: a root filesystem directory plus the files
// a recipe adds, packed into an OCI image layout by `umoci`, pushed to a registry by `skopeo`.
// Built images are cached under their recipe's content hash (the recipe's fields and the bytes of
// every file it adds, the base root filesystem's identity included), which is also their tag: a
// second build of the same recipe does nothing, and a changed program gives a new tag.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "continuum/util/expected.h"

namespace continuum::containers {

/// A file copied into the image.
struct ImageFile {
  std::filesystem::path source;
  std::string dest;  ///< absolute path in the image
  int mode = 0755;   ///< permission bits in the image
};

struct ImageRecipe {
  std::string name;  ///< repository name, e.g. continuum/worker ([a-z0-9._/-])
  /// The root filesystem to start from (a directory), and a string that identifies its content
  /// (e.g. the hash of the recipe that made it): hashing a whole Debian tree on every build would
  /// cost more than it saves.
  std::filesystem::path base_rootfs;
  std::string base_id;
  std::vector<ImageFile> files;
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::map<std::string, std::string> env;
};

struct BuiltImage {
  std::string name;
  std::string tag;               ///< the first 16 hex digits of the recipe hash
  std::filesystem::path layout;  ///< OCI image layout directory
  bool cached = false;           ///< true: found in the cache, nothing was built
  double seconds = 0;            ///< build time (0 when cached)
  uintmax_t bytes = 0;           ///< size of the layout on disk
};

/// What a recipe would be called and hashed as; errors name an invalid name or unreadable file.
Expected<std::string> recipe_hash(const ImageRecipe& r);

/// Builds the image into `cache_dir` (or finds it there, unless `force`). The layout appears
/// atomically (built in a temporary directory, renamed), so an interrupted build leaves nothing
/// that looks built.
Expected<BuiltImage> build_image(const ImageRecipe& r, const std::filesystem::path& cache_dir,
                                 bool force = false);

/// Copies the image to `registry` (host:port, plain HTTP: the registry listens only on the VM
/// network's gateway or loopback) as name:tag. `wrap` goes before the command (e.g. ip netns exec).
Status push_image(const BuiltImage& image, const std::string& registry,
                  const std::vector<std::string>& wrap = {});

/// The argv of the two tools for one step, without running them (for tests and the log).
std::vector<std::string> push_command(const BuiltImage& image, const std::string& registry);

}  // namespace continuum::containers

#include "continuum/containers/image.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>

#include "continuum/util/files.h"
#include "continuum/util/hash.h"
#include "continuum/util/process.h"
#include "continuum/util/strings.h"

namespace continuum::containers {
namespace fs = std::filesystem;

namespace {

bool valid_name(const std::string& n) {
  if (n.empty() || n.front() == '/' || n.back() == '/') return false;
  for (char c : n)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
          c == '/'))
      return false;
  return true;
}

Status run(const std::vector<std::string>& argv) {
  util::ProcessSpec spec;
  spec.argv = argv;
  spec.timeout = std::chrono::minutes(10);
  auto r = TRY(util::run_process(spec));
  if (r.exit_code != 0)
    return make_error(util::shell_join(argv) + " failed (exit " + std::to_string(r.exit_code) +
                      "): " + std::string(util::trim(r.err)));
  return {};
}

/// The steps of one build, in `tmp` (a layout "oci" and a bundle "bundle").
Status build_layout(const ImageRecipe& r, const std::string& tag, const fs::path& tmp) {
  const std::string image = (tmp / "oci").string() + ":" + tag;
  TRY_STATUS(run({"umoci", "init", "--layout", (tmp / "oci").string()}));
  TRY_STATUS(run({"umoci", "new", "--image", image}));
  // Unprivileged builds keep the caller's ownership; as root the files keep theirs.
  std::vector<std::string> unpack = {"umoci", "unpack", "--image", image,
                                     (tmp / "bundle").string()};
  if (::geteuid() != 0) unpack.insert(unpack.begin() + 2, "--rootless");
  TRY_STATUS(run(unpack));
  const fs::path rootfs = tmp / "bundle" / "rootfs";
  std::error_code ec;
  // cp -a, not std::filesystem::copy: a root filesystem has device nodes, hard links and
  // ownership that filesystem::copy does not carry over.
  if (!r.base_rootfs.empty())
    TRY_STATUS(run({"cp", "-a", (r.base_rootfs / ".").string(), rootfs.string()}));
  for (const auto& f : r.files) {
    const fs::path dest = rootfs / fs::path(f.dest).relative_path();
    fs::create_directories(dest.parent_path(), ec);
    fs::copy_file(f.source, dest, fs::copy_options::overwrite_existing, ec);
    if (ec) return make_error("copy " + f.source.string() + " to " + f.dest + ": " + ec.message());
    fs::permissions(dest, static_cast<fs::perms>(f.mode), ec);
  }
  std::vector<std::string> repack = {"umoci", "repack", "--image", image,
                                     (tmp / "bundle").string()};
  if (::geteuid() != 0) repack.insert(repack.begin() + 2, "--rootless");
  TRY_STATUS(run(repack));
  std::vector<std::string> config = {"umoci", "config", "--image", image};
  for (const auto& e : r.entrypoint) config.insert(config.end(), {"--config.entrypoint", e});
  for (const auto& c : r.cmd) config.insert(config.end(), {"--config.cmd", c});
  for (const auto& [k, v] : r.env) config.insert(config.end(), {"--config.env", k + "=" + v});
  TRY_STATUS(run(config));
  // The layout keeps only what the final manifest references.
  return run({"umoci", "gc", "--layout", (tmp / "oci").string()});
}

}  // namespace

Expected<std::string> recipe_hash(const ImageRecipe& r) {
  if (!valid_name(r.name))
    return make_error("image name '" + r.name + "': use lowercase letters, digits, . _ - and /");
  util::Sha256 h;
  // Fields separated by NUL: no two recipes hash the same input by moving text between fields.
  auto field = [&](const std::string& s) { h.update(s.data(), s.size() + 1); };
  field("continuum-image/1");
  field(r.name);
  field(r.base_id);
  for (const auto& f : r.files) {
    field(f.dest);
    field(std::to_string(f.mode));
    TRY_STATUS(h.update_file(f.source));
    field("");
  }
  for (const auto& e : r.entrypoint) field("entrypoint=" + e);
  for (const auto& c : r.cmd) field("cmd=" + c);
  for (const auto& [k, v] : r.env) field("env=" + k + "=" + v);
  return h.hex();
}

Expected<BuiltImage> build_image(const ImageRecipe& r, const fs::path& cache_dir, bool force) {
  const std::string hash = TRY(recipe_hash(r));
  BuiltImage img;
  img.name = r.name;
  img.tag = hash.substr(0, 16);
  std::string flat = r.name;
  for (char& c : flat)
    if (c == '/') c = '_';
  img.layout = cache_dir / (flat + "-" + img.tag);
  std::error_code ec;
  if (!force && fs::exists(img.layout / "index.json", ec)) {
    img.cached = true;
    img.bytes = util::directory_bytes(img.layout);
    spdlog::info("image {}:{} cached in {} (recipe unchanged, not rebuilt)", img.name, img.tag,
                 img.layout.string());
    return img;
  }
  fs::create_directories(cache_dir, ec);
  if (ec) return make_error(cache_dir.string() + ": " + ec.message());
  const fs::path tmp =
      cache_dir / (".build-" + flat + "-" + img.tag + "-" + std::to_string(getpid()));
  fs::remove_all(tmp, ec);
  const auto t0 = std::chrono::steady_clock::now();
  Status built = build_layout(r, img.tag, tmp);
  if (built) {
    if (force) fs::remove_all(img.layout, ec);
    fs::rename(tmp / "oci", img.layout, ec);
    if (ec && !fs::exists(img.layout / "index.json"))  // a concurrent build won: theirs is as good
      built = make_error("cannot move the image into " + img.layout.string() + ": " + ec.message());
  }
  fs::remove_all(tmp, ec);
  TRY_STATUS(built);
  img.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  img.bytes = util::directory_bytes(img.layout);
  spdlog::info("image {}:{} built in {:.1f} s ({} bytes)", img.name, img.tag, img.seconds,
               img.bytes);
  return img;
}

std::vector<std::string> push_command(const BuiltImage& image, const std::string& registry) {
  return {"skopeo",
          "copy",
          "--quiet",
          "--dest-tls-verify=false",
          "oci:" + image.layout.string() + ":" + image.tag,
          "docker://" + registry + "/" + image.name + ":" + image.tag};
}

Status push_image(const BuiltImage& image, const std::string& registry,
                  const std::vector<std::string>& wrap) {
  std::vector<std::string> argv = wrap;
  for (auto& a : push_command(image, registry)) argv.push_back(std::move(a));
  return run(argv);
}

}  // namespace continuum::containers

#include "continuum/containers/app_images.h"

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

// --variant=extract unpacks the packages without running their scripts, so the dynamic loader's
// /lib64 link (made by libc6's maintainer scripts on a real system) is added here. Part of the
// recipe hash.
constexpr const char* kLoaderHook =
    "--customize-hook=mkdir -p \"$1/lib64\" \"$1/tmp\" && ln -sf "
    "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 \"$1/lib64/ld-linux-x86-64.so.2\" && chmod 1777 "
    "\"$1/tmp\"";

void say(const AppImageOptions& o, const std::string& line) {
  spdlog::info("{}", line);
  if (o.progress) o.progress(line);
}

/// The root filesystem in cache/rootfs-<hash12>, made under a temporary name and renamed when
/// complete, so an interrupted build is never taken for a finished one.
Expected<fs::path> ensure_rootfs(const AppImageOptions& o, const RootfsRecipe& r, AppImages* out) {
  const fs::path dir = o.cache_dir / ("rootfs-" + r.hash.substr(0, 12));
  std::error_code ec;
  if (fs::is_directory(dir / "usr", ec)) {
    out->rootfs_cached = true;
    out->rootfs_bytes = util::directory_bytes(dir);
    return dir;
  }
  if (::geteuid() != 0)
    return make_error(
        "building the application images' root filesystem needs root (mmdebstrap in root mode)");
  if (!util::have_program("mmdebstrap"))
    return make_error("building the application images needs mmdebstrap (scripts/bootstrap)");
  fs::create_directories(o.cache_dir, ec);
  const fs::path tmp = o.cache_dir / (".build-rootfs-" + std::to_string(::getpid()));
  fs::remove_all(tmp, ec);
  say(o, "building the application images' root filesystem (" + util::join(r.packages, ", ") +
             " from " + o.mirror + ")");
  const auto t0 = std::chrono::steady_clock::now();
  util::ProcessSpec spec;
  spec.argv = rootfs_command(r, tmp, o.mirror);
  spec.timeout = std::chrono::minutes(15);
  spec.cancel = o.cancel;
  auto res = util::run_process(spec);
  Status st = res ? Status{} : Status(res.error());
  if (res && res->cancelled)
    st = make_error("interrupted while building the root filesystem", ExitCode::interrupted);
  else if (res && res->exit_code != 0)
    st = make_error("mmdebstrap failed (exit " + std::to_string(res->exit_code) +
                    "): " + std::string(util::trim(res->err)) +
                    "\n(`continuum image build --variant docker` builds the application images "
                    "ahead of a run, on a machine that reaches " +
                    o.mirror + ")");
  if (st) {
    fs::rename(tmp, dir, ec);
    if (ec && !fs::is_directory(dir / "usr"))
      st = make_error("cannot move the root filesystem to " + dir.string() + ": " + ec.message());
  }
  fs::remove_all(tmp, ec);
  TRY_STATUS(st);
  out->rootfs_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out->rootfs_bytes = util::directory_bytes(dir);
  return dir;
}

}  // namespace

RootfsRecipe app_rootfs_recipe() {
  RootfsRecipe r;
  r.packages = {"libmosquitto1", "libstdc++6", "libgcc-s1", "libc6"};
  util::Sha256 h;
  h.update(std::string("continuum-app-rootfs/1\n") + r.suite + "\n" + util::join(r.packages, ",") +
           "\n" + kLoaderHook);
  r.hash = h.hex();
  return r;
}

std::vector<std::string> rootfs_command(const RootfsRecipe& r, const fs::path& dir,
                                        const std::string& mirror) {
  return {"mmdebstrap",
          "--mode=root",
          "--variant=extract",
          "--include=" + util::join(r.packages, ","),
          "--dpkgopt=path-exclude=/usr/share/man/*",
          "--dpkgopt=path-exclude=/usr/share/locale/*",
          "--dpkgopt=path-exclude=/usr/share/doc/*",
          "--dpkgopt=path-include=/usr/share/doc/*/copyright",
          kLoaderHook,
          r.suite,
          dir.string(),
          mirror};
}

Expected<std::vector<ImageRecipe>> application_recipes(const fs::path& rootfs,
                                                       const std::string& rootfs_id,
                                                       const fs::path& app_dir) {
  const fs::path worker = app_dir / "continuum-worker";
  const fs::path endpoint = app_dir / "continuum-endpoint";
  for (const auto& p : {worker, endpoint}) {
    std::error_code ec;
    if (!fs::is_regular_file(p, ec))
      return make_error("the application images need the guest program " + p.string() +
                        " (built with continuum: cmake --build build)");
  }
  auto recipe = [&](const std::string& role, std::vector<ImageFile> files, const fs::path& entry) {
    ImageRecipe r;
    r.name = "continuum/image_classification_" + role;
    r.base_rootfs = rootfs;
    r.base_id = rootfs_id;
    r.files = std::move(files);
    r.entrypoint = {"/usr/local/bin/" + entry.filename().string()};
    return r;
  };
  std::vector<ImageRecipe> out;
  out.push_back(recipe("subscriber", {{worker, "/usr/local/bin/continuum-worker"}}, worker));
  out.push_back(recipe("publisher", {{endpoint, "/usr/local/bin/continuum-endpoint"}}, endpoint));
  // The endpoint-only mode: the endpoint program generates and classifies its own frames.
  ImageRecipe combined =
      recipe("combined", {{endpoint, "/usr/local/bin/continuum-endpoint"}}, endpoint);
  combined.env["COMBINED"] = "True";
  out.push_back(std::move(combined));
  return out;
}

const BuiltImage* AppImages::find(const std::string& suffix) const {
  for (const auto& i : images)
    if (i.name.ends_with("_" + suffix)) return &i;
  return nullptr;
}

Expected<AppImages> ensure_application_images(const AppImageOptions& o) {
  AppImages out;
  const RootfsRecipe rr = app_rootfs_recipe();
  const fs::path rootfs = TRY(ensure_rootfs(o, rr, &out));
  for (const auto& r : TRY(application_recipes(rootfs, rr.hash, o.app_dir))) {
    BuiltImage img = TRY(build_image(r, o.cache_dir, o.force));
    // build_image logged it; the caller's progress line only.
    if (o.progress)
      o.progress(img.cached ? "image " + img.name + ":" + img.tag + " cached, not rebuilt"
                            : "image " + img.name + ":" + img.tag + " built in " +
                                  util::format_fixed(img.seconds, 1) + " s");
    out.images.push_back(std::move(img));
  }
  return out;
}

}  // namespace continuum::containers

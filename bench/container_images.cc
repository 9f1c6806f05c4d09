// bench_container_images: the application's container images (src/containers/app_images.h), cold
// and cached, in a fresh cache directory:
//   1. cold: the Debian root filesystem (mmdebstrap --variant=extract from the mirror) and the
//      three images (subscriber, publisher, combined) built with umoci;
//   2. cached: the same call again (nothing is built);
//   3. one program changed: only the images that hold it are rebuilt;
//   4. the images hold what the programs need: unpacked, every shared library of the worker and
//      endpoint programs resolves from the image's own root filesystem (ld.so's trace mode).
// Prints wall times and sizes. Needs root (mmdebstrap in root mode) and the built guest programs
// (build/app). Usage: bench_container_images [CACHE_DIR] (default: a temporary directory, removed).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "continuum/containers/app_images.h"
#include "continuum/util/process.h"

namespace fs = std::filesystem;
using namespace continuum;

namespace {

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void print(const char* what, double secs, const containers::AppImages& a) {
  std::printf("%-34s %7.2f s  rootfs %s %5.1f MB\n", what, secs,
              a.rootfs_cached ? "cached" : "built ", a.rootfs_bytes / 1e6);
  for (const auto& i : a.images)
    std::printf("    %-44s %s %6.2f s  %5.1f MB\n", (i.name + ":" + i.tag).c_str(),
                i.cached ? "cached" : "built ", i.seconds, i.bytes / 1e6);
}

/// The program linked against the image's libraries only: ld.so from the image resolves every
/// library (ldd-like listing with LD_TRACE_LOADED_OBJECTS), or names the missing one.
bool libraries_resolve(const fs::path& rootfs, const std::string& program) {
  util::ProcessSpec s;
  s.argv = {"chroot", rootfs.string(), program};
  s.env["LD_TRACE_LOADED_OBJECTS"] = "1";
  s.timeout = std::chrono::seconds(30);
  auto r = util::run_process(s);
  const bool ok = r.ok() && r->exit_code == 0 && r->out.find("not found") == std::string::npos;
  std::printf("    %s in the image: %s\n", program.c_str(),
              ok ? "every library resolves" : (r.ok() ? (r->out + r->err).c_str() : "cannot run"));
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  const bool temp = argc < 2;
  const fs::path cache =
      temp ? fs::temp_directory_path() / ("continuum-bench-images-" + std::to_string(getpid()))
           : fs::path(argv[1]);
  containers::AppImageOptions o;
  o.cache_dir = cache;
  // A copy of the programs, so that step 3 can change one without touching the build tree.
  const fs::path apps = cache / "programs";
  fs::create_directories(apps);
  // The programs next to the bench in the build tree (build/bench/.. /app), or
  // CONTINUUM_GUEST_APP_DIR.
  const char* env = std::getenv("CONTINUUM_GUEST_APP_DIR");
  const fs::path built = env && *env
                             ? fs::path(env)
                             : fs::canonical("/proc/self/exe").parent_path().parent_path() / "app";
  for (const char* p : {"continuum-worker", "continuum-endpoint"})
    fs::copy_file(built / p, apps / p, fs::copy_options::overwrite_existing);
  o.app_dir = apps;

  auto t0 = std::chrono::steady_clock::now();
  auto cold = containers::ensure_application_images(o);
  if (!cold) {
    std::fprintf(stderr, "cold build failed: %s\n", cold.error().message.c_str());
    return 1;
  }
  print("1. cold (rootfs + 3 images)", since(t0), *cold);

  t0 = std::chrono::steady_clock::now();
  auto cached = containers::ensure_application_images(o);
  if (!cached) return 1;
  print("2. cached", since(t0), *cached);

  std::ofstream(apps / "continuum-worker", std::ios::app) << '\n';  // a rebuilt worker
  t0 = std::chrono::steady_clock::now();
  auto changed = containers::ensure_application_images(o);
  if (!changed) return 1;
  print("3. worker program changed", since(t0), *changed);

  std::printf("4. the programs' libraries, resolved inside the unpacked images\n");
  bool ok = true;
  for (const char* role : {"subscriber", "publisher"}) {
    const containers::BuiltImage* img = changed->find(role);
    const fs::path bundle = cache / (std::string("unpacked-") + role);
    util::ProcessSpec u;
    u.argv = {"umoci", "unpack", "--image", img->layout.string() + ":" + img->tag, bundle.string()};
    auto r = util::run_process(u);
    if (!r.ok() || r->exit_code != 0) {
      std::printf("    umoci unpack %s failed\n", img->name.c_str());
      ok = false;
      continue;
    }
    ok = libraries_resolve(bundle / "rootfs",
                           std::string("/usr/local/bin/continuum-") +
                               (std::string(role) == "subscriber" ? "worker" : "endpoint")) &&
         ok;
    fs::remove_all(bundle);
  }
  if (temp) fs::remove_all(cache);
  return ok ? 0 : 1;
}

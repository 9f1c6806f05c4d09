// Base images: the offline mmdebstrap image, local files and downloads
// (src/infra/include/continuum/infra/image.h).
#include "continuum/infra/image.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "continuum/util/files.h"
#include "continuum/util/hash.h"
#include "continuum/util/paths.h"
#include "continuum/util/process.h"
#include "continuum/util/strings.h"

namespace fs = std::filesystem;

namespace continuum::infra {

extern const char* const kImageHook;

namespace {

using Clock = std::chrono::steady_clock;

/// Kernel command line of the offline image: root on the first virtio disk (no partition
/// table), console on the serial port the domain logs to <run>/infrastructure/<vm>.console.log.
constexpr const char* kOfflineCmdline = "root=/dev/vda rw console=ttyS0,115200 net.ifnames=1";

void say(const ImageOptions& o, const std::string& line) {
  if (o.progress)
    o.progress(line);
  else
    spdlog::info("{}", line);
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// An exclusive advisory lock on a file, so two runs never build the same image at once.
class FileLock {
 public:
  /// `on_wait` is called once when another process holds the lock, before waiting for it.
  explicit FileLock(const fs::path& p, const std::function<void()>& on_wait = {}) {
    fd_ = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) return;
    if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return;
    if (on_wait) on_wait();
    ::flock(fd_, LOCK_EX);
  }
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

Expected<util::ProcessResult> run_step(const ImageOptions& o, std::vector<std::string> argv,
                                       std::chrono::seconds timeout) {
  util::ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.timeout = timeout;
  spec.on_line = [&](const std::string& line, bool) { spdlog::debug("  {}", line); };
  (void)o;
  auto r = TRY(util::run_process(spec));
  if (r.timed_out)
    return make_error(spec.argv[0] + " timed out after " + std::to_string(timeout.count()) + " s");
  if (r.exit_code != 0) {
    std::string tail = r.err.size() > 2000 ? r.err.substr(r.err.size() - 2000) : r.err;
    return make_error(util::shell_join(spec.argv) + " failed (exit " + std::to_string(r.exit_code) +
                      "):\n" + tail);
  }
  return r;
}

/// The first file in `dir` whose name starts with `prefix` (the kernel's file name carries its
/// version, which the recipe does not pin).
fs::path find_prefixed(const fs::path& dir, const std::string& prefix) {
  std::error_code ec;
  std::vector<fs::path> found;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && util::starts_with(e.path().filename().string(), prefix))
      found.push_back(e.path());
  std::sort(found.begin(), found.end());
  return found.empty() ? fs::path() : found.back();
}

BaseImage offline_base(const fs::path& dir, const std::string& id, const std::string& variant) {
  BaseImage b;
  b.disk = dir / "disk.qcow2";
  b.format = "qcow2";
  b.kernel = dir / "vmlinuz";
  b.initrd = dir / "initrd.img";
  b.cmdline = kOfflineCmdline;
  b.id = id;
  b.first_boot_unit = variant != "cloudinit";
  return b;
}

bool complete_offline(const fs::path& dir) {
  std::error_code ec;
  return fs::exists(dir / "image.json", ec) && fs::exists(dir / "disk.qcow2", ec) &&
         fs::exists(dir / "vmlinuz", ec) && fs::exists(dir / "initrd.img", ec);
}

/// Moves a finished build directory into place, replacing an older one (--force).
Status install_dir(const fs::path& work, const fs::path& final_dir) {
  std::error_code ec;
  fs::path trash;
  if (fs::exists(final_dir, ec)) {
    trash = final_dir.string() + ".old." + std::to_string(::getpid());
    fs::rename(final_dir, trash, ec);
    if (ec) return make_error("cannot replace " + final_dir.string() + ": " + ec.message());
  }
  fs::rename(work, final_dir, ec);
  if (ec)
    return make_error("cannot move the image into place at " + final_dir.string() + ": " +
                      ec.message());
  if (!trash.empty()) fs::remove_all(trash, ec);
  return {};
}

size_t write_cb(char* ptr, size_t size, size_t nmemb, void* userdata);

struct Download {
  std::FILE* file = nullptr;
  util::Sha256 sha;
  uint64_t bytes = 0;
};

size_t write_cb(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* d = static_cast<Download*>(userdata);
  size_t n = size * nmemb;
  if (std::fwrite(ptr, 1, n, d->file) != n) return 0;
  d->sha.update(ptr, n);
  d->bytes += n;
  return n;
}

bool is_url(const std::string& s) {
  return util::starts_with(s, "http://") || util::starts_with(s, "https://");
}

Expected<BaseImage> ensure_url_image(const config::Infrastructure& infra, const ImageOptions& o,
                                     const fs::path& cache) {
  const std::string& url = infra.base_image;
  std::string key = util::sha256_hex(url).substr(0, 12);
  fs::path file = cache / ("url-" + key + ".img");
  fs::path meta = cache / ("url-" + key + ".json");
  std::string want = util::to_lower(std::string(util::trim(infra.base_image_sha256)));
  std::error_code ec;
  fs::create_directories(cache, ec);
  FileLock lock(cache / (".lock-url-" + key));
  bool cached = fs::exists(file, ec) && fs::exists(meta, ec) && !o.force;
  if (cached && !want.empty()) {
    auto m = util::read_file(meta);
    std::string have;
    try {
      if (m) have = nlohmann::json::parse(*m).value("sha256", "");
    } catch (const nlohmann::json::exception&) {
    }
    if (have != want) cached = false;  // a different checksum is configured now: fetch again
  }
  if (!cached) {
    auto t0 = Clock::now();
    say(o, "downloading base image " + url);
    fs::path tmp = cache / (".url-" + key + ".img.tmp." + std::to_string(::getpid()));
    Download d;
    d.file = std::fopen(tmp.c_str(), "wb");
    if (!d.file) return make_error("cannot write " + tmp.string() + ": " + std::strerror(errno));
    CURL* c = curl_easy_init();
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &d);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    // No total timeout (images are large), but give up on a stalled transfer.
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    bool closed = std::fclose(d.file) == 0;
    if (rc != CURLE_OK || !closed) {
      fs::remove(tmp, ec);
      return make_error("downloading base image " + url + ": " +
                        (errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(rc))));
    }
    std::string got = d.sha.hex();
    if (!want.empty() && got != want) {
      fs::remove(tmp, ec);
      return make_error("base image " + url + ": sha256 is " + got +
                        " but base_image_sha256 says " + want);
    }
    fs::rename(tmp, file, ec);
    if (ec)
      return make_error("cannot move the download into place at " + file.string() + ": " +
                        ec.message());
    nlohmann::json j = {{"id", "url-" + key},
                        {"url", url},
                        {"sha256", got},
                        {"bytes", d.bytes},
                        {"created", utc_now()}};
    TRY_STATUS(util::write_file_atomic(meta, j.dump(2) + "\n"));
    say(o, "downloaded " + std::to_string(d.bytes) + " bytes in " + util::format_number(since(t0)) +
               " s");
  }
  BaseImage b;
  b.disk = file;
  b.format = TRY(disk_format(file));
  b.id = "url-" + key;
  return b;
}

Expected<BaseImage> ensure_local_image(const config::Infrastructure& infra) {
  fs::path p = util::expand_user(infra.base_image);
  std::error_code ec;
  if (!fs::is_regular_file(p, ec))
    return make_error("base_image " + p.string() + " does not exist or is not a file",
                      ExitCode::usage);
  std::string want = util::to_lower(std::string(util::trim(infra.base_image_sha256)));
  if (!want.empty()) {
    std::string got = TRY(util::sha256_file(p));
    if (got != want)
      return make_error("base image " + p.string() + ": sha256 is " + got +
                        " but base_image_sha256 says " + want);
  }
  BaseImage b;
  b.disk = fs::absolute(p);
  b.format = TRY(disk_format(p));
  b.id = b.disk.string();
  return b;
}

}  // namespace

Expected<std::string> disk_format(const fs::path& path) {
  util::ProcessSpec spec;
  spec.argv = {"qemu-img", "info", "--output=json", path.string()};
  spec.timeout = std::chrono::seconds(60);
  auto r = TRY(util::run_process(spec));
  if (r.exit_code != 0)
    return make_error("qemu-img cannot read " + path.string() + ": " +
                      std::string(util::trim(r.err)));
  try {
    return nlohmann::json::parse(r.out).at("format").get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    return make_error("qemu-img info " + path.string() + ": unexpected output: " + e.what());
  }
}

fs::path image_cache_dir(const config::Infrastructure& infra) {
  std::string base = infra.base_path;
  if (base.empty()) {
    const char* home = std::getenv("HOME");
    base = home ? home : "/root";
  }
  fs::path cache = util::expand_user(base) / ".continuum" / "images";
  // The default base_path is $HOME; as root that is /root, which QEMU (libvirt-qemu) cannot
  // enter, so root's default cache moves to /var/lib/continuum/images. An explicit base_path is
  // taken as given.
  if (util::expand_user(base) == util::expand_user("~"))
    return util::qemu_reachable(cache, "images");
  return cache;
}

Expected<ImageRecipe> offline_recipe(const std::string& variant, const fs::path& app_dir) {
  if (variant != "default" && variant != "cloudinit" && variant != "docker" && variant != "energy")
    return make_error(
        "unknown image variant '" + variant + "' (known: default, cloudinit, docker, energy)",
        ExitCode::usage);
  ImageRecipe r;
  r.variant = variant;
  // Scaphandre and netperf are packaged only from Debian 13 on; netperf's binaries need glibc
  // 2.38 (bookworm has 2.36), so the energy variant is a trixie system rather than bookworm with
  // binaries borrowed from trixie (docs/images.md has the measurements).
  if (variant == "energy") r.suite = "trixie";
  // What the phases after boot expect in every guest: sshd, python3 for Ansible, tc (iproute2)
  // and kmod for netem's qdisc modules, ping for the RTT matrix, mosquitto for the benchmark.
  r.packages = {"systemd-sysv",    "udev",    "dbus",      "kmod",
                "openssh-server",  "python3", "sudo",      "iproute2",
                "iputils-ping",    "netbase", "mosquitto", "linux-image-cloud-amd64",
                "initramfs-tools", "zstd",    "cpio",      "busybox-static"};
  if (variant == "cloudinit") r.packages.push_back("cloud-init");
  // The container engine of resource_manager = mist (Debian's docker.io pulls containerd and
  // runc); a variant of its own because it doubles the image (docs/containers.md has the sizes).
  // apparmor: the guest kernel has AppArmor on, and Docker then loads its container profile with
  // apparmor_parser (docker.io only recommends the package).
  if (variant == "docker") r.packages.insert(r.packages.end(), {"docker.io", "apparmor"});
  // Real Scaphandre in the guests (`scaphandre --vm prometheus`, playbooks/scaphandre), the
  // network benchmarks' tools, and PostgreSQL for the query-only energy example (installed, not
  // started at boot: the hook disables it and the example's setup starts it).
  if (variant == "energy")
    r.packages.insert(r.packages.end(), {"scaphandre", "netperf", "iperf3", "postgresql"});
  r.hook = kImageHook;
  std::error_code ec;
  if (!app_dir.empty() && fs::is_directory(app_dir, ec)) {
    for (const auto& e : fs::directory_iterator(app_dir, ec)) {
      std::string n = e.path().filename().string();
      if (util::starts_with(n, "continuum-") && e.is_regular_file() &&
          ::access(e.path().c_str(), X_OK) == 0)
        r.app_files.push_back(e.path());
    }
    std::sort(r.app_files.begin(), r.app_files.end());
  }
  util::Sha256 h;
  h.update(std::string("continuum-offline-image-v1\n"));
  h.update(r.variant + "\n" + r.suite + "\n" + util::join(r.packages, ",") + "\n");
  h.update(r.hook);
  for (const auto& f : r.app_files) {
    auto fh = util::sha256_file(f);
    h.update("\napp " + f.filename().string() + " " + (fh ? *fh : std::string("?")));
  }
  r.hash = h.hex();
  return r;
}

namespace {

/// mmdebstrap's essential hook: initramfs-tools only needs virtio for its (unused, fallback)
/// initrd, so MODULES=list keeps it fast. One shell command, run by mmdebstrap with $1 = rootfs.
constexpr const char* kInitramfsHook =
    "--essential-hook=mkdir -p \"$1/etc/initramfs-tools/conf.d\" "
    "\"$1/usr/share/initramfs-tools/modules.d\" && "
    "printf 'MODULES=list\\nCOMPRESS=zstd\\n' > \"$1/etc/initramfs-tools/conf.d/continuum.conf\" "
    "&& "
    "printf 'virtio_pci\\nvirtio_blk\\n' > \"$1/usr/share/initramfs-tools/modules.d/continuum\"";

fs::path guest_app_dir(const ImageOptions& o) {
  if (!o.app_dir.empty()) return o.app_dir;
  // CONTINUUM_GUEST_APP_DIR overrides where built guest programs are looked for; set but empty,
  // none are baked in (the e2e test uses that, so an app rebuild does not force an image rebuild).
  if (const char* env = std::getenv("CONTINUUM_GUEST_APP_DIR")) return env;
  return util::app_dir();
}

Status check_build_prerequisites() {
  for (const char* tool : {"mmdebstrap", "mkfs.ext4", "qemu-img"})
    if (!util::have_program(tool))
      return make_error(std::string("building the offline image needs ") + tool +
                        " (scripts/bootstrap --deps installs it)");
  if (::geteuid() != 0)
    return make_error(
        "building the offline image needs root (mmdebstrap in root mode); run "
        "`sudo continuum image build` once, or set base_image to an existing image");
  return {};
}

/// A build directory next to the cache entry, removed unless keep() was called.
class BuildDir {
 public:
  explicit BuildDir(fs::path p) : path_(std::move(p)) {}
  ~BuildDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  BuildDir(const BuildDir&) = delete;
  BuildDir& operator=(const BuildDir&) = delete;
  Status create() {
    std::error_code ec;
    fs::remove_all(path_, ec);
    fs::create_directories(path_, ec);
    if (ec) return make_error("cannot create " + path_.string() + ": " + ec.message());
    return {};
  }
  const fs::path& path() const { return path_; }
  void keep() { path_.clear(); }

 private:
  fs::path path_;
};

std::vector<std::string> mmdebstrap_argv(const ImageRecipe& recipe, const fs::path& hook,
                                         const fs::path& root, const std::string& mirror) {
  std::vector<std::string> argv = {"mmdebstrap",
                                   "--mode=root",
                                   "--variant=minbase",
                                   "--include=" + util::join(recipe.packages, ","),
                                   "--dpkgopt=path-exclude=/usr/share/man/*",
                                   "--dpkgopt=path-exclude=/usr/share/locale/*",
                                   "--dpkgopt=path-include=/usr/share/locale/locale.alias",
                                   "--dpkgopt=path-exclude=/usr/share/doc/*",
                                   "--dpkgopt=path-include=/usr/share/doc/*/copyright",
                                   kInitramfsHook};
  if (!recipe.app_files.empty()) {
    std::vector<std::string> words = {"copy-in"};
    for (const auto& f : recipe.app_files) words.push_back(f.string());
    words.push_back("/usr/local/bin");
    argv.push_back("--customize-hook=" + util::shell_join(words));
  }
  argv.push_back("--customize-hook=sh " + util::shell_quote(hook.string()) + " \"$1\" " +
                 util::shell_quote(recipe.variant));
  argv.push_back(recipe.suite);
  argv.push_back(root.string());
  argv.push_back(mirror);
  return argv;
}

/// Kernel and initrd for direct kernel boot, taken by name from the new system's /boot into
/// `work`; returns the kernel version.
Expected<std::string> extract_kernel(const fs::path& root, const fs::path& work) {
  fs::path kernel = find_prefixed(root / "boot", "vmlinuz-");
  if (kernel.empty()) return make_error("the new image has no kernel in /boot");
  std::error_code ec;
  fs::copy_file(kernel, work / "vmlinuz", ec);
  if (!ec) fs::copy_file(root / "boot" / "initrd-continuum.img", work / "initrd.img", ec);
  if (ec) return make_error("cannot copy the kernel/initrd out of the image: " + ec.message());
  return kernel.filename().string().substr(8);
}

/// ext4 straight from the directory (no loop mount), then qcow2 in work/disk.qcow2; the rootfs
/// is removed once copied. 2 GiB of headroom for what the guests write into their overlays;
/// unused space costs nothing in qcow2.
Status make_disk(const ImageOptions& o, const fs::path& root, const fs::path& work) {
  uint64_t mb = util::directory_bytes(root) / (1024 * 1024) + 2048;
  fs::path raw = work / "disk.raw";
  TRY(run_step(o,
               {"mkfs.ext4", "-q", "-L", "root", "-d", root.string(), raw.string(),
                std::to_string(mb) + "M"},
               std::chrono::seconds(600)));
  std::error_code ec;
  fs::remove_all(root, ec);
  TRY(run_step(o,
               {"qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw.string(),
                (work / "disk.qcow2").string()},
               std::chrono::seconds(600)));
  fs::remove(raw, ec);
  return {};
}

std::string image_json(const std::string& id, const ImageRecipe& recipe, const std::string& mirror,
                       const std::string& kernel_version, double t_mmdebstrap, double t_disk) {
  nlohmann::json j = {{"id", id},
                      {"variant", recipe.variant},
                      {"suite", recipe.suite},
                      {"mirror", mirror},
                      {"recipe_sha256", recipe.hash},
                      {"packages", recipe.packages},
                      {"kernel", kernel_version},
                      {"cmdline", kOfflineCmdline},
                      {"first_boot_unit", recipe.variant != "cloudinit"},
                      {"created", utc_now()},
                      {"build_seconds", {{"mmdebstrap", t_mmdebstrap}, {"disk", t_disk}}}};
  nlohmann::json apps = nlohmann::json::array();
  for (const auto& f : recipe.app_files) apps.push_back(f.filename().string());
  j["app_files"] = apps;
  return j.dump(2) + "\n";
}

std::string seconds_1dp(double s) { return util::format_number(std::round(s * 10) / 10); }

/// Builds the image of `recipe` into cache/id: mmdebstrap into a build directory, kernel and
/// disk out of it, image.json last, then one rename into place.
Status build_offline_image(const ImageOptions& o, const ImageRecipe& recipe,
                           const fs::path& app_dir, const fs::path& cache, const std::string& id) {
  TRY_STATUS(check_build_prerequisites());
  auto t0 = Clock::now();
  BuildDir work(cache / (".build-" + id + "." + std::to_string(::getpid())));
  TRY_STATUS(work.create());

  fs::path hook = work.path() / "customize.sh";
  TRY_STATUS(util::write_file_atomic(hook, recipe.hook, fs::perms::owner_all));
  fs::path root = work.path() / "rootfs";
  say(o, "building image " + id + " with mmdebstrap (" + std::to_string(recipe.packages.size()) +
             " packages from " + o.mirror + "; about a minute)");
  if (!recipe.app_files.empty()) say(o, "  with guest programs from " + app_dir.string());
  TRY(run_step(o, mmdebstrap_argv(recipe, hook, root, o.mirror), std::chrono::seconds(1800)));
  double t_mmdebstrap = since(t0);

  std::string kernel_version = TRY(extract_kernel(root, work.path()));
  auto t1 = Clock::now();
  TRY_STATUS(make_disk(o, root, work.path()));
  std::error_code ec;
  fs::remove(hook, ec);
  double t_disk = since(t1);

  TRY_STATUS(util::write_file_atomic(
      work.path() / "image.json",
      image_json(id, recipe, o.mirror, kernel_version, t_mmdebstrap, t_disk)));
  TRY_STATUS(install_dir(work.path(), cache / id));
  work.keep();
  say(o, "image " + id + " built in " + seconds_1dp(since(t0)) + " s (mmdebstrap " +
             seconds_1dp(t_mmdebstrap) + " s, disk " + seconds_1dp(t_disk) + " s)");
  return {};
}

}  // namespace

Expected<BaseImage> ensure_offline_image(const ImageOptions& o) {
  fs::path cache = o.cache_dir;
  if (cache.empty()) cache = image_cache_dir(config::Infrastructure{});
  fs::path app_dir = guest_app_dir(o);
  ImageRecipe recipe = TRY(offline_recipe(o.variant, app_dir));
  std::string id = "offline-" + recipe.variant + "-" + recipe.hash.substr(0, 12);
  fs::path dir = cache / id;
  if (!o.force && complete_offline(dir)) {
    say(o, "image " + id + ": cached in " + dir.string() + " (recipe unchanged, not rebuilt)");
    return offline_base(dir, id, recipe.variant);
  }

  std::error_code ec;
  fs::create_directories(cache, ec);
  if (ec)
    return make_error("cannot create the image cache " + cache.string() + ": " + ec.message());
  FileLock lock(cache / (".lock-" + id), [&] {
    say(o, "image " + id + ": another continuum is building it; waiting for that build");
  });
  // Another run may have finished the same build while we waited for the lock.
  if (!o.force && complete_offline(dir)) {
    say(o,
        "image " + id + ": cached in " + dir.string() + " (built meanwhile by another continuum)");
    return offline_base(dir, id, recipe.variant);
  }
  TRY_STATUS(build_offline_image(o, recipe, app_dir, cache, id));
  return offline_base(dir, id, recipe.variant);
}

Expected<BaseImage> ensure_base_image(const config::Infrastructure& infra, ImageOptions opts) {
  if (opts.cache_dir.empty()) opts.cache_dir = image_cache_dir(infra);
  std::string src(util::trim(infra.base_image));
  if (src.empty()) return ensure_offline_image(opts);
  if (is_url(src)) return ensure_url_image(infra, opts, opts.cache_dir);
  return ensure_local_image(infra);
}

std::vector<CachedImage> list_cached_images(const fs::path& cache) {
  std::vector<CachedImage> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(cache, ec)) {
    std::string n = e.path().filename().string();
    if (util::starts_with(n, "offline-") && e.is_directory() && complete_offline(e.path())) {
      CachedImage c;
      c.id = n;
      c.path = e.path() / "disk.qcow2";
      c.bytes = util::directory_bytes(e.path());
      if (auto m = util::read_file(e.path() / "image.json")) {
        try {
          auto j = nlohmann::json::parse(*m);
          c.created = j.value("created", "");
          c.detail = "variant " + j.value("variant", "?") + ", " + j.value("suite", "?") +
                     ", kernel " + j.value("kernel", "?");
          if (j.contains("app_files") && !j["app_files"].empty()) c.detail += ", with guest app";
        } catch (const nlohmann::json::exception&) {
        }
      }
      out.push_back(std::move(c));
    } else if (util::starts_with(n, "url-") && util::ends_with(n, ".img") && e.is_regular_file()) {
      CachedImage c;
      c.id = n.substr(0, n.size() - 4);
      c.path = e.path();
      c.bytes = e.file_size(ec);
      if (auto m = util::read_file(cache / (c.id + ".json"))) {
        try {
          auto j = nlohmann::json::parse(*m);
          c.created = j.value("created", "");
          c.detail = j.value("url", "");
        } catch (const nlohmann::json::exception&) {
        }
      }
      out.push_back(std::move(c));
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return out;
}

}  // namespace continuum::infra

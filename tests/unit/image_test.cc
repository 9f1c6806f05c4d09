// Base images without building one: the offline recipe's hash (what triggers a rebuild), local
// image files with checksums, the cache listing, and ensure_base_image's dispatch.
#include "continuum/infra/image.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "continuum/util/files.h"
#include "continuum/util/hash.h"
#include "continuum/util/process.h"

namespace fs = std::filesystem;
using namespace continuum;

namespace continuum::infra {
extern const char* const kImageHook;  // src/infra/image_hook.cc
}

namespace {

class TempDir {
 public:
  TempDir() {
    std::string t = (fs::temp_directory_path() / "continuum-image-test.XXXXXX").string();
    path_ = ::mkdtemp(t.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void make_exe(const fs::path& p, const std::string& content) {
  std::ofstream(p) << content;
  fs::permissions(p, fs::perms::owner_all);
}

TEST(ImageRecipe, HashIsStableAndCoversVariantAndGuestPrograms) {
  TempDir tmp;
  auto a = infra::offline_recipe("default", tmp.path() / "no-app");
  auto b = infra::offline_recipe("default", tmp.path() / "no-app");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->hash, b->hash);
  EXPECT_EQ(a->hash.size(), 64u);
  EXPECT_TRUE(a->app_files.empty());

  auto ci = infra::offline_recipe("cloudinit", tmp.path());
  ASSERT_TRUE(ci.ok());
  EXPECT_NE(ci->hash, a->hash);
  EXPECT_NE(std::find(ci->packages.begin(), ci->packages.end(), "cloud-init"), ci->packages.end());
  EXPECT_EQ(std::find(a->packages.begin(), a->packages.end(), "cloud-init"), a->packages.end());
  for (const char* p : {"openssh-server", "python3", "mosquitto", "iproute2", "iputils-ping",
                        "sudo", "linux-image-cloud-amd64", "busybox-static"})
    EXPECT_NE(std::find(a->packages.begin(), a->packages.end(), p), a->packages.end()) << p;

  // Built guest programs are part of the recipe: a changed binary means a new image.
  fs::path app = tmp.path() / "app";
  fs::create_directories(app);
  make_exe(app / "continuum-worker", "v1");
  std::ofstream(app / "continuum-notes.txt") << "not executable";  // ignored
  make_exe(app / "other-tool", "not ours");                        // ignored
  auto w1 = infra::offline_recipe("default", app);
  ASSERT_TRUE(w1.ok());
  ASSERT_EQ(w1->app_files.size(), 1u);
  EXPECT_EQ(w1->app_files[0].filename(), "continuum-worker");
  EXPECT_NE(w1->hash, a->hash);
  make_exe(app / "continuum-worker", "v2");
  auto w2 = infra::offline_recipe("default", app);
  EXPECT_NE(w2->hash, w1->hash);
  // The hook text drives the image: the seed unit and the initrd are in it.
  EXPECT_NE(a->hook.find("continuum-seed"), std::string::npos);
  EXPECT_NE(a->hook.find("switch_root"), std::string::npos);
}

// The energy variant: Debian 13 (Scaphandre and netperf are packaged only there), everything the
// default image has plus Scaphandre, the network tools and PostgreSQL (installed, not started).
TEST(ImageRecipe, EnergyVariantIsTrixieWithScaphandreAndTheDefaultPackages) {
  TempDir tmp;
  auto d = infra::offline_recipe("default", tmp.path() / "no-app");
  auto e = infra::offline_recipe("energy", tmp.path() / "no-app");
  ASSERT_TRUE(d.ok() && e.ok());
  EXPECT_EQ(d->suite, "bookworm");
  EXPECT_EQ(e->suite, "trixie");
  EXPECT_NE(e->hash, d->hash);
  for (const auto& p : d->packages)
    EXPECT_NE(std::find(e->packages.begin(), e->packages.end(), p), e->packages.end()) << p;
  for (const char* p : {"scaphandre", "netperf", "iperf3", "postgresql"}) {
    EXPECT_NE(std::find(e->packages.begin(), e->packages.end(), p), e->packages.end()) << p;
    EXPECT_EQ(std::find(d->packages.begin(), d->packages.end(), p), d->packages.end()) << p;
  }
  EXPECT_EQ(std::find(e->packages.begin(), e->packages.end(), "cloud-init"), e->packages.end());
  // PostgreSQL is left for the example's setup to start; trixie's xz-compressed modules are
  // unpacked for the busybox initrd.
  EXPECT_NE(e->hook.find("systemctl disable -q postgresql.service"), std::string::npos);
  EXPECT_NE(e->hook.find("xzcat"), std::string::npos);
}

// Which variant a run's guests boot: the configured one wins, then mist's Docker, then Scaphandre
// in the guests.
TEST(ImageRecipe, RunVariantFollowsTheConfiguration) {
  config::Config cfg;
  EXPECT_EQ(infra::image_variant(cfg), "default");
  cfg.energy.enabled = true;
  EXPECT_EQ(infra::image_variant(cfg), "default") << "host exporter: nothing in the guests";
  cfg.energy.exporter = config::Exporter::guest;
  EXPECT_EQ(infra::image_variant(cfg), "energy");
  cfg.benchmark.emplace();
  cfg.benchmark->application = config::Application::image_classification;
  cfg.benchmark->resource_manager = config::ResourceManager::mist;
  EXPECT_EQ(infra::image_variant(cfg), "docker");
  cfg.infrastructure.image_variant = "cloudinit";
  EXPECT_EQ(infra::image_variant(cfg), "cloudinit");
  cfg.benchmark.reset();
  cfg.infrastructure.image_variant = "";
  cfg.energy.enabled = false;
  EXPECT_EQ(infra::image_variant(cfg), "default") << "exporter = guest without [energy] enabled";
}

/// The YAML literal block `key: |` of a playbook: its lines with the block's indent removed.
std::string literal_block(const std::string& yml, const std::string& key) {
  size_t at = yml.find(key + ": |\n");
  if (at == std::string::npos) return "";
  std::string out;
  size_t pos = yml.find('\n', at) + 1, indent = std::string::npos;
  while (pos < yml.size()) {
    size_t end = yml.find('\n', pos);
    std::string line = yml.substr(pos, end - pos);
    size_t lead = line.find_first_not_of(' ');
    if (indent == std::string::npos) indent = lead;
    if (lead == std::string::npos || lead < indent) break;
    out += line.substr(indent) + "\n";
    pos = end + 1;
  }
  return out;
}

// The offline image carries the files that the base and mosquitto playbooks write, byte for byte,
// so those playbooks skip their copies (and the broker's restart) there: a change to one side
// alone would quietly bring the module runs back.
TEST(ImageRecipe, HookCarriesThePlaybooksFilesByteForByte) {
  const std::string hook = infra::kImageHook;
  auto base = util::read_file(fs::path(CONTINUUM_SOURCE_DIR) / "playbooks/base/base.yml");
  auto mosq = util::read_file(fs::path(CONTINUUM_SOURCE_DIR) / "playbooks/mosquitto/mosquitto.yml");
  ASSERT_TRUE(base.ok() && mosq.ok());
  std::string sysctl = literal_block(*base, "base_sysctl_content");
  std::string conf = literal_block(*mosq, "mosquitto_conf_content");
  ASSERT_NE(sysctl.find("net.core.somaxconn"), std::string::npos) << sysctl;
  const std::string port = "{{ mosquitto_port }}";
  ASSERT_NE(conf.find(port), std::string::npos) << conf;
  conf.replace(conf.find(port), port.size(), "1883");  // the default port, as the image has it
  EXPECT_NE(hook.find("cat > \"$R/etc/sysctl.d/60-continuum.conf\" <<'EOF'\n" + sysctl + "EOF\n"),
            std::string::npos)
      << sysctl;
  EXPECT_NE(
      hook.find("cat > \"$R/etc/mosquitto/conf.d/continuum.conf\" <<'EOF'\n" + conf + "EOF\n"),
      std::string::npos)
      << conf;
}

TEST(ImageRecipe, UnknownVariantIsAUsageError) {
  auto r = infra::offline_recipe("fancy", "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().exit_code, continuum::ExitCode::usage);
  EXPECT_NE(r.error().message.find("fancy"), std::string::npos);
  EXPECT_NE(r.error().message.find("default, cloudinit"), std::string::npos);
}

TEST(BaseImage, CacheDirFollowsBasePath) {
  config::Infrastructure in;
  in.base_path = "/srv/x";
  EXPECT_EQ(infra::image_cache_dir(in), fs::path("/srv/x/.continuum/images"));
}

TEST(BaseImage, LocalImageWithChecksum) {
  if (!util::have_program("qemu-img")) GTEST_SKIP() << "qemu-img not installed";
  TempDir tmp;
  fs::path img = tmp.path() / "my.qcow2";
  util::ProcessSpec s;
  s.argv = {"qemu-img", "create", "-q", "-f", "qcow2", img.string(), "16M"};
  auto r = util::run_process(s);
  ASSERT_TRUE(r.ok() && r->exit_code == 0);
  auto sum = util::sha256_file(img);
  ASSERT_TRUE(sum.ok());

  config::Infrastructure in;
  in.base_path = tmp.path().string();
  in.base_image = img.string();
  in.base_image_sha256 = *sum;
  auto b = infra::ensure_base_image(in);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->disk, img);
  EXPECT_EQ(b->format, "qcow2");
  EXPECT_TRUE(b->kernel.empty());  // boots with its own bootloader
  EXPECT_FALSE(b->first_boot_unit);

  in.base_image_sha256 = std::string(64, '0');
  auto bad = infra::ensure_base_image(in);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("sha256"), std::string::npos);

  in.base_image = (tmp.path() / "missing.qcow2").string();
  in.base_image_sha256.clear();
  auto missing = infra::ensure_base_image(in);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("missing.qcow2"), std::string::npos);
}

TEST(BaseImage, Sha256OfKnownData) {
  EXPECT_EQ(util::sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(BaseImage, ListShowsOnlyCompleteEntries) {
  TempDir tmp;
  fs::path done = tmp.path() / "offline-default-aaaaaaaaaaaa";
  fs::create_directories(done);
  for (const char* f : {"disk.qcow2", "vmlinuz", "initrd.img"}) std::ofstream(done / f) << "x";
  std::ofstream(done / "image.json") << nlohmann::json({{"variant", "default"},
                                                        {"suite", "bookworm"},
                                                        {"kernel", "6.1"},
                                                        {"created", "2026-11-29T12:00:00Z"}})
                                            .dump();
  // A build in progress and a half-finished directory are not images.
  fs::create_directories(tmp.path() / ".build-offline-default-bbbbbbbbbbbb.123");
  fs::create_directories(tmp.path() / "offline-default-cccccccccccc");
  auto l = infra::list_cached_images(tmp.path());
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].id, "offline-default-aaaaaaaaaaaa");
  EXPECT_EQ(l[0].created, "2026-11-29T12:00:00Z");
  EXPECT_NE(l[0].detail.find("bookworm"), std::string::npos);
}

}  // namespace

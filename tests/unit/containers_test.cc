// The pure parts of the containers module: the registry's configuration, the image recipe hash
// (what makes a cached image reusable) and the push command.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>

#include "continuum/containers/app_images.h"
#include "continuum/containers/image.h"
#include "continuum/containers/registry.h"

namespace continuum::containers {
namespace {
namespace fs = std::filesystem;

TEST(RegistryConfig, ListensOnTheGivenAddressOnlyWithFilesystemStorage) {
  RegistryOptions o;
  o.address = "192.168.100.1";
  o.port = 5000;
  o.storage = "/var/cache/continuum/registry";
  const std::string c = registry_config(o);
  EXPECT_NE(c.find("addr: \"192.168.100.1:5000\""), std::string::npos) << c;
  EXPECT_NE(c.find("rootdirectory: \"/var/cache/continuum/registry\""), std::string::npos) << c;
  EXPECT_EQ(c.find("0.0.0.0"), std::string::npos) << c;
  EXPECT_NE(c.find("version: 0.1"), std::string::npos);
}

TEST(RegistryConfig, PathsAreQuotedYamlStrings) {
  RegistryOptions o;
  o.storage = "/tmp/a \"b\": c";
  EXPECT_NE(registry_config(o).find("rootdirectory: \"/tmp/a \\\"b\\\": c\""), std::string::npos);
}

class Recipe : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("continuum-recipe-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    std::ofstream(dir_ / "worker") << "program v1";
    r_.name = "continuum/worker";
    r_.base_id = "debian-abc";
    r_.files = {{dir_ / "worker", "/usr/bin/continuum-worker", 0755}};
    r_.entrypoint = {"/usr/bin/continuum-worker"};
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  ImageRecipe r_;
};

TEST_F(Recipe, HashIsStableAndFollowsEveryInput) {
  const std::string h = *recipe_hash(r_);
  EXPECT_EQ(h.size(), 64u);
  EXPECT_EQ(*recipe_hash(r_), h);
  std::ofstream(dir_ / "worker") << "program v2";  // a rebuilt program: a new image
  EXPECT_NE(*recipe_hash(r_), h);
  std::ofstream(dir_ / "worker") << "program v1";
  EXPECT_EQ(*recipe_hash(r_), h);
  for (const auto& change : std::vector<std::function<void(ImageRecipe&)>>{
           [](ImageRecipe& r) { r.base_id = "debian-def"; },
           [](ImageRecipe& r) { r.files[0].dest = "/bin/w"; },
           [](ImageRecipe& r) { r.files[0].mode = 0700; },
           [](ImageRecipe& r) { r.entrypoint.push_back("-v"); },
           [](ImageRecipe& r) { r.env["A"] = "1"; },
           [](ImageRecipe& r) { r.name = "continuum/endpoint"; }}) {
    ImageRecipe r = r_;
    change(r);
    EXPECT_NE(*recipe_hash(r), h);
  }
}

TEST_F(Recipe, BadNamesAndMissingFilesAreErrors) {
  r_.name = "Continuum/Worker";
  EXPECT_NE(recipe_hash(r_).error().message.find("image name 'Continuum/Worker'"),
            std::string::npos);
  r_.name = "continuum/worker";
  r_.files[0].source = dir_ / "missing";
  EXPECT_NE(recipe_hash(r_).error().message.find("missing"), std::string::npos);
}

TEST(PushCommand, PlainHttpToTheRegistryUnderTheRecipeTag) {
  BuiltImage img;
  img.name = "continuum/worker";
  img.tag = "0123456789abcdef";
  img.layout = "/cache/continuum_worker-0123456789abcdef";
  EXPECT_EQ(
      push_command(img, "192.168.100.1:5000"),
      (std::vector<std::string>{"skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                                "oci:/cache/continuum_worker-0123456789abcdef:0123456789abcdef",
                                "docker://192.168.100.1:5000/continuum/worker:0123456789abcdef"}));
}

TEST(AppRootfs, OnlyTheProgramsLibrariesExtractedWithTheLoaderLink) {
  const RootfsRecipe r = app_rootfs_recipe();
  EXPECT_EQ(r.hash.size(), 64u);
  EXPECT_EQ(app_rootfs_recipe().hash, r.hash);
  const auto argv = rootfs_command(r, "/cache/.build-rootfs", "http://mirror/debian");
  ASSERT_GE(argv.size(), 4u);
  EXPECT_EQ(argv[0], "mmdebstrap");
  EXPECT_NE(std::find(argv.begin(), argv.end(), "--variant=extract"), argv.end());
  EXPECT_NE(
      std::find(argv.begin(), argv.end(), "--include=libmosquitto1,libstdc++6,libgcc-s1,libc6"),
      argv.end());
  bool loader = false;
  for (const auto& a : argv)
    loader = loader || (a.starts_with("--customize-hook=") &&
                        a.find("lib64/ld-linux-x86-64.so.2") != std::string::npos);
  EXPECT_TRUE(loader);
  EXPECT_EQ(std::vector<std::string>(argv.end() - 3, argv.end()),
            (std::vector<std::string>{"bookworm", "/cache/.build-rootfs", "http://mirror/debian"}));
}

class AppRecipes : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("continuum-apprecipes-" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "app");
    std::ofstream(dir_ / "app" / "continuum-worker") << "worker v1";
    std::ofstream(dir_ / "app" / "continuum-endpoint") << "endpoint v1";
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::vector<ImageRecipe> recipes() {
    auto r = application_recipes(dir_ / "rootfs", "rootfs-hash", dir_ / "app");
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : std::vector<ImageRecipe>{};
  }
  std::vector<std::string> hashes() {
    std::vector<std::string> out;
    for (const auto& r : recipes()) out.push_back(*recipe_hash(r));
    return out;
  }
  fs::path dir_;
};

TEST_F(AppRecipes, TheOriginalsThreeImagesEachWithItsProgram) {
  auto r = recipes();
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].name, "continuum/image_classification_subscriber");
  EXPECT_EQ(r[0].entrypoint, std::vector<std::string>{"/usr/local/bin/continuum-worker"});
  EXPECT_EQ(r[1].name, "continuum/image_classification_publisher");
  EXPECT_EQ(r[1].entrypoint, std::vector<std::string>{"/usr/local/bin/continuum-endpoint"});
  EXPECT_EQ(r[2].name, "continuum/image_classification_combined");
  EXPECT_EQ(r[2].env.at("COMBINED"), "True");
  for (const auto& x : r) {
    EXPECT_EQ(x.base_rootfs, dir_ / "rootfs");
    EXPECT_EQ(x.base_id, "rootfs-hash");
    ASSERT_EQ(x.files.size(), 1u);
    EXPECT_EQ(x.files[0].dest, x.entrypoint[0]);
  }
}

TEST_F(AppRecipes, ARebuiltProgramChangesOnlyTheImagesThatHoldIt) {
  const auto before = hashes();
  std::ofstream(dir_ / "app" / "continuum-worker") << "worker v2";
  const auto after = hashes();
  ASSERT_EQ(after.size(), 3u);
  EXPECT_NE(after[0], before[0]);  // subscriber
  EXPECT_EQ(after[1], before[1]);  // publisher
  EXPECT_EQ(after[2], before[2]);  // combined
  std::ofstream(dir_ / "app" / "continuum-endpoint") << "endpoint v2";
  const auto last = hashes();
  EXPECT_EQ(last[0], after[0]);
  EXPECT_NE(last[1], after[1]);
  EXPECT_NE(last[2], after[2]);
}

TEST_F(AppRecipes, AMissingProgramIsNamed) {
  fs::remove(dir_ / "app" / "continuum-endpoint");
  auto r = application_recipes(dir_ / "rootfs", "x", dir_ / "app");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("continuum-endpoint"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace continuum::containers

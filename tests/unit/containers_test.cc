// The pure parts of the containers module: the registry's configuration, the image recipe hash
// (what makes a cached image reusable) and the push command.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>

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

}  // namespace
}  // namespace continuum::containers

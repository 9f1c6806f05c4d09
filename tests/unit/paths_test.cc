// Where the binary finds its playbooks and guest programs, for each layout of util/paths.h, built
// as real directory trees.
#include "continuum/util/paths.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

using namespace continuum::util;
namespace fs = std::filesystem;

namespace {

class Layouts : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("continuum_paths_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "src" / "playbooks");
    fs::create_directories(root_ / "src" / "build" / "app");
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
};

}  // namespace

TEST_F(Layouts, InstalledPrefixIsFoundRelativeToTheBinary) {
  fs::path prefix = root_ / "prefix";
  fs::create_directories(prefix / "bin");
  fs::create_directories(prefix / "share" / "continuum" / "playbooks");
  fs::create_directories(prefix / "libexec" / "continuum");
  InstallLayout l{prefix / "bin", "", root_ / "src"};
  EXPECT_EQ(data_dir(l), prefix / "share" / "continuum");
  EXPECT_EQ(app_dir(l), prefix / "libexec" / "continuum");
}

TEST_F(Layouts, BuildTreeUsesTheSourceTreeAndApp) {
  InstallLayout l{root_ / "src" / "build", "", root_ / "src"};
  EXPECT_EQ(data_dir(l), root_ / "src");
  EXPECT_EQ(app_dir(l), root_ / "src" / "build" / "app");
}

TEST_F(Layouts, AShareDirectoryWithoutPlaybooksIsNotAnInstall) {
  // /usr/local/bin/continuum next to an unrelated /usr/local/share/continuum must not lose the
  // playbooks of its build tree.
  fs::path prefix = root_ / "prefix";
  fs::create_directories(prefix / "bin");
  fs::create_directories(prefix / "share" / "continuum" / "configuration");
  InstallLayout l{prefix / "bin", "", root_ / "src"};
  EXPECT_EQ(data_dir(l), root_ / "src");
  EXPECT_EQ(app_dir(l), prefix / "bin" / "app");
}

TEST_F(Layouts, ContinuumHomeOverridesEveryLayout) {
  fs::path prefix = root_ / "prefix";
  fs::create_directories(prefix / "share" / "continuum" / "playbooks");
  InstallLayout l{prefix / "bin", (root_ / "home").string(), root_ / "src"};
  EXPECT_EQ(data_dir(l), root_ / "home");
}

TEST_F(Layouts, UnknownExecutableHasNoAppDir) {
  InstallLayout l{"", "", root_ / "src"};
  EXPECT_EQ(data_dir(l), root_ / "src");
  EXPECT_EQ(app_dir(l), fs::path());
}

TEST(CurrentLayout, IsThisTestBinaryInTheBuildTree) {
  EXPECT_EQ(executable_dir(), fs::canonical(CONTINUUM_BUILD_DIR) / "tests");
  ::unsetenv("CONTINUUM_HOME");
  EXPECT_EQ(data_dir(), fs::path(CONTINUUM_SOURCE_DIR));
  ::setenv("CONTINUUM_HOME", "/opt/continuum-data", 1);
  EXPECT_EQ(data_dir(), fs::path("/opt/continuum-data"));
  ::unsetenv("CONTINUUM_HOME");
}

// Container images end to end on this machine, without a daemon: an image built by umoci from a
// root filesystem plus a file, pushed by skopeo to a real docker-registry that continuum starts on
// loopback, pulled back and unpacked: the file is there, the registry's access log shows the
// pulls, a second build of the same recipe builds nothing, and stopping the registry leaves no
// process. Skipped when the tools are not installed (scripts/bootstrap installs them).
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>

#include "continuum/containers/image.h"
#include "continuum/containers/registry.h"
#include "continuum/util/files.h"
#include "continuum/util/process.h"
#include "integration/bench_support.h"

namespace continuum::containers {
namespace {
namespace fs = std::filesystem;

class ContainersRegistry : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* tool : {"docker-registry", "umoci", "skopeo"})
      if (!util::have_program(tool)) GTEST_SKIP() << tool << " not installed (scripts/bootstrap)";
    if (!fs::exists("/bin/busybox")) GTEST_SKIP() << "busybox-static not installed";
    dir_ = fs::temp_directory_path() / ("continuum-containers-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    // A base root filesystem: busybox alone (a Debian tree works the same, only bigger).
    fs::create_directories(dir_ / "base/bin");
    fs::copy_file("/bin/busybox", dir_ / "base/bin/busybox");
    std::ofstream(dir_ / "greeting") << "hello from the image\n";
    recipe_.name = "continuum/test";
    recipe_.base_rootfs = dir_ / "base";
    recipe_.base_id = "busybox";
    recipe_.files = {{dir_ / "greeting", "/etc/greeting", 0644}};
    recipe_.entrypoint = {"/bin/busybox"};
    recipe_.cmd = {"cat", "/etc/greeting"};
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  RegistryOptions options(int port) {
    RegistryOptions o;
    o.port = port;
    o.storage = dir_ / "storage";
    o.dir = dir_ / "registry";
    return o;
  }

  static util::ProcessResult run(const std::vector<std::string>& argv) {
    util::ProcessSpec s;
    s.argv = argv;
    s.timeout = std::chrono::minutes(2);
    return util::run_process(s).value();
  }

  fs::path dir_;
  ImageRecipe recipe_;
};

TEST_F(ContainersRegistry, BuildPushPullAndTheCacheAndNothingLeftRunning) {
  const int port = bench_test::free_port();
  auto reg = Registry::start(options(port));
  ASSERT_TRUE(reg.ok()) << reg.error().message;
  const pid_t pid = (*reg)->pid();
  EXPECT_EQ((*reg)->endpoint(), "127.0.0.1:" + std::to_string(port));

  auto img = build_image(recipe_, dir_ / "cache");
  ASSERT_TRUE(img.ok()) << img.error().message;
  EXPECT_FALSE(img->cached);
  EXPECT_GT(img->bytes, 100'000u) << "busybox is in the layer";
  std::printf("CONTAINERS-BUILD cold %.2f s, %ju bytes\n", img->seconds, img->bytes);

  Status pushed = push_image(*img, (*reg)->endpoint());
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;

  // Pull it back as a client would, and look inside.
  const std::string ref = "docker://" + (*reg)->endpoint() + "/" + img->name + ":" + img->tag;
  auto pull = run({"skopeo", "copy", "--quiet", "--src-tls-verify=false", ref,
                   "oci:" + (dir_ / "pulled").string() + ":x"});
  ASSERT_EQ(pull.exit_code, 0) << pull.err;
  auto unpack = run({"umoci", "unpack", "--image", (dir_ / "pulled").string() + ":x",
                     (dir_ / "bundle").string()});
  ASSERT_EQ(unpack.exit_code, 0) << unpack.err;
  EXPECT_EQ(*util::read_file(dir_ / "bundle/rootfs/etc/greeting"), "hello from the image\n");
  EXPECT_TRUE(fs::exists(dir_ / "bundle/rootfs/bin/busybox"));
  auto config = util::read_file(dir_ / "bundle/config.json");
  ASSERT_TRUE(config.ok());
  EXPECT_NE(config->find("/etc/greeting"), std::string::npos) << "the recipe's cmd";

  // The registry's access log saw the pull of the manifest and the blobs.
  auto log = util::read_file((*reg)->log()).value();
  EXPECT_NE(log.find("GET /v2/continuum/test/manifests/" + img->tag), std::string::npos) << log;
  EXPECT_NE(log.find("GET /v2/continuum/test/blobs/sha256:"), std::string::npos) << log;

  // Same recipe: nothing is built.
  auto again = build_image(recipe_, dir_ / "cache");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->cached);
  EXPECT_EQ(again->tag, img->tag);
  EXPECT_EQ(again->layout, img->layout);

  (*reg)->stop();
  EXPECT_EQ(::kill(pid, 0), -1) << "the registry process is gone";
  // The storage stays (the image cache keeps what was pushed).
  EXPECT_TRUE(fs::exists(dir_ / "storage/docker/registry/v2/repositories/continuum/test"));
}

TEST_F(ContainersRegistry, APortInUseIsAnErrorThatSaysWhy) {
  const int port = bench_test::free_port();
  auto first = Registry::start(options(port));
  ASSERT_TRUE(first.ok()) << first.error().message;
  RegistryOptions o = options(port);
  o.dir = dir_ / "registry2";
  auto second = Registry::start(o);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("before listening on 127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << second.error().message;
  EXPECT_NE(second.error().message.find("address already in use"), std::string::npos)
      << second.error().message;
}

}  // namespace
}  // namespace continuum::containers

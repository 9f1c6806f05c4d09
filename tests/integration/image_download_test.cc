// A base image given as an http(s) URL: downloaded once into the cache with libcurl, sha256
// verified, never left half-written. The server is python3's http.server on 127.0.0.1, started
// by the test and stopped by its PID.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "continuum/infra/image.h"
#include "continuum/util/hash.h"
#include "continuum/util/process.h"

extern char** environ;
namespace fs = std::filesystem;
using namespace continuum;
using namespace std::chrono_literals;

namespace {

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    a.sin_port = 0;  // port 0: the server start fails and says so
  ::close(fd);
  return ntohs(a.sin_port);
}

bool port_open(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

class HttpServer : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!util::have_program("python3") || !util::have_program("qemu-img"))
      GTEST_SKIP() << "python3 and qemu-img are needed";
    std::string t = (fs::temp_directory_path() / "continuum-dl-test.XXXXXX").string();
    dir_ = ::mkdtemp(t.data());
    fs::create_directories(dir_ / "www");
    util::ProcessSpec s;
    s.argv = {"qemu-img", "create", "-q", "-f", "qcow2", (dir_ / "www" / "img.qcow2").string(),
              "8M"};
    auto r = util::run_process(s);
    ASSERT_TRUE(r.ok() && r->exit_code == 0);
    port_ = free_port();
    std::vector<std::string> argv = {
        "python3", "-m",        "http.server", std::to_string(port_),
        "--bind",  "127.0.0.1", "--directory", (dir_ / "www").string()};
    std::vector<char*> c;
    for (auto& a : argv) c.push_back(a.data());
    c.push_back(nullptr);
    ASSERT_EQ(posix_spawnp(&pid_, "python3", nullptr, nullptr, c.data(), environ), 0);
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!port_open(port_)) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "http.server did not start";
      std::this_thread::sleep_for(50ms);
    }
  }
  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int st;
      ::waitpid(pid_, &st, 0);
    }
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  std::string url(const std::string& file) const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/" + file;
  }
  fs::path dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

TEST_F(HttpServer, DownloadsOnceVerifiesAndCaches) {
  auto want = util::sha256_file(dir_ / "www" / "img.qcow2");
  ASSERT_TRUE(want.ok());
  config::Infrastructure in;
  in.base_path = (dir_ / "home").string();
  in.base_image = url("img.qcow2");
  in.base_image_sha256 = *want;
  auto b = infra::ensure_base_image(in);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->format, "qcow2");
  EXPECT_EQ(b->disk.parent_path(), infra::image_cache_dir(in));
  EXPECT_EQ(*util::sha256_file(b->disk), *want);

  // Cached: with the server gone, the same config still resolves to the same file.
  ::kill(pid_, SIGTERM);
  int st;
  ::waitpid(pid_, &st, 0);
  pid_ = -1;
  auto again = infra::ensure_base_image(in);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->disk, b->disk);
  auto listed = infra::list_cached_images(infra::image_cache_dir(in));
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].detail, in.base_image);
}

TEST_F(HttpServer, WrongChecksumOrMissingFileLeavesNothing) {
  config::Infrastructure in;
  in.base_path = (dir_ / "home").string();
  in.base_image = url("img.qcow2");
  in.base_image_sha256 = std::string(64, 'a');
  auto bad = infra::ensure_base_image(in);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("sha256"), std::string::npos);

  in.base_image = url("nope.qcow2");
  in.base_image_sha256.clear();
  auto missing = infra::ensure_base_image(in);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("404"), std::string::npos) << missing.error().message;

  // Neither attempt left an image (or a temp file) in the cache; only lock files.
  for (const auto& e : fs::directory_iterator(infra::image_cache_dir(in)))
    EXPECT_EQ(e.path().filename().string().rfind(".lock-", 0), 0u) << e.path();
}

}  // namespace

#include "continuum/util/files.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <thread>

using namespace continuum::util;
namespace fs = std::filesystem;

TEST(WriteFileAtomic, WritesWithModeAndLeavesNoTempFile) {
  fs::path d = fs::temp_directory_path() / ("continuum_files_" + std::to_string(::getpid()));
  fs::remove_all(d);
  ASSERT_TRUE(
      write_file_atomic(d / "sub" / "key", "secret", fs::perms::owner_read | fs::perms::owner_write)
          .ok());
  EXPECT_EQ(*read_file(d / "sub" / "key"), "secret");
  EXPECT_EQ(fs::status(d / "sub" / "key").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  ASSERT_TRUE(write_file_atomic(d / "sub" / "key", "new").ok());
  EXPECT_EQ(*read_file(d / "sub" / "key"), "new");
  EXPECT_EQ(std::distance(fs::directory_iterator(d / "sub"), fs::directory_iterator{}), 1);
  fs::remove_all(d);
}

TEST(TraversableByOthers, FalseBelowAPrivateDirectoryTrueOtherwise) {
  fs::path d = fs::temp_directory_path() / ("continuum_trav_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d / "open" / "x");
  fs::create_directories(d / "private" / "x");
  fs::permissions(d, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                         fs::perms::others_read | fs::perms::others_exec);
  fs::permissions(d / "open", fs::perms::owner_all | fs::perms::others_exec);
  fs::permissions(d / "private", fs::perms::owner_all);
  EXPECT_TRUE(traversable_by_others(d / "open" / "x"));
  EXPECT_TRUE(traversable_by_others(d / "open" / "not-yet" / "created"));
  EXPECT_FALSE(traversable_by_others(d / "private" / "x"));
  if (::geteuid() == 0) {
    EXPECT_EQ(qemu_reachable(d / "private" / "x", "images"), fs::path("/var/lib/continuum/images"));
    EXPECT_EQ(qemu_reachable(d / "open" / "x", "images"), d / "open" / "x");
  }
  fs::remove_all(d);
}

// A share directory that a host exporter keeps writing into (write a temp file, rename it over
// the metrics file) while `destroy` removes it: remove_all alone fails now and then with
// "Directory not empty" when a file lands between its listing and its rmdir.
TEST(RemoveTree, RemovesADirectoryThatAWriterKeepsRefilling) {
  const fs::path root = fs::path(::testing::TempDir()) / "remove_tree_race";
  fs::remove_all(root);
  for (int round = 0; round < 50; ++round) {
    const fs::path dir = root / "share";
    fs::create_directories(dir / "sub");
    std::atomic<bool> stop{false};
    std::atomic<int> written{0};
    std::thread writer([&] {
      while (!stop) {
        const fs::path tmp = dir / ".metrics.tmp";
        if (FILE* f = std::fopen(tmp.c_str(), "w")) {
          std::fputs("x 1\n", f);
          std::fclose(f);
          std::error_code ec;
          fs::rename(tmp, dir / "metrics.prom", ec);
          ++written;
        }
      }
    });
    while (written < 3) std::this_thread::yield();  // the writer is running, not a timing guess
    auto st = remove_tree(dir);
    stop = true;
    writer.join();
    ASSERT_TRUE(st.ok()) << "round " << round << ": " << st.error().message;
    ASSERT_FALSE(fs::exists(dir)) << "round " << round;
    ASSERT_TRUE(fs::is_empty(root)) << "round " << round << ": something was left aside";
  }
  fs::remove_all(root);
}

TEST(RemoveTree, AMissingPathIsSuccessAndAFileIsRemoved) {
  const fs::path root = fs::path(::testing::TempDir()) / "remove_tree_plain";
  fs::create_directories(root);
  EXPECT_TRUE(remove_tree(root / "absent").ok());
  ASSERT_TRUE(write_file_atomic(root / "f", "x").ok());
  EXPECT_TRUE(remove_tree(root / "f").ok());
  EXPECT_FALSE(fs::exists(root / "f"));
  fs::remove_all(root);
}

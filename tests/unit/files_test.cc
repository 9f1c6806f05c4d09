#include "continuum/util/files.h"

#include <gtest/gtest.h>

#include <filesystem>

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

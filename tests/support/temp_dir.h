#pragma once
// A fresh directory under the system's temporary directory for one test, removed afterwards.
#include <unistd.h>

#include <filesystem>
#include <string>

namespace continuum::test_support {

struct TempDir {
  std::filesystem::path path;
  /// <tmp>/continuum-<tag>-<pid>, emptied first.
  explicit TempDir(const std::string& tag)
      : path(std::filesystem::temp_directory_path() /
             ("continuum-" + tag + "-" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

}  // namespace continuum::test_support

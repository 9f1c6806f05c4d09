#include "continuum/util/paths.h"

#include <cstdlib>

#include "continuum/version.h"

namespace fs = std::filesystem;

namespace continuum::util {

fs::path executable_dir() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : self.parent_path();
}

InstallLayout current_layout() {
  InstallLayout l;
  l.exe_dir = executable_dir();
  if (const char* home = std::getenv("CONTINUUM_HOME")) l.home = home;
  l.source_dir = kSourceDir;
  return l;
}

fs::path data_dir(const InstallLayout& layout) {
  if (!layout.home.empty()) return layout.home;
  if (!layout.exe_dir.empty()) {
    fs::path installed = (layout.exe_dir / kBinToDataDir).lexically_normal();
    std::error_code ec;
    if (fs::is_directory(installed / "playbooks", ec)) return installed;
  }
  return layout.source_dir;
}

fs::path data_dir() { return data_dir(current_layout()); }

fs::path app_dir(const InstallLayout& layout) {
  if (layout.exe_dir.empty()) return {};
  fs::path installed = (layout.exe_dir / kBinToAppDir).lexically_normal();
  std::error_code ec;
  if (fs::is_directory(installed, ec)) return installed;
  return layout.exe_dir / "app";
}

fs::path app_dir() { return app_dir(current_layout()); }

}  // namespace continuum::util

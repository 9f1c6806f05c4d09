#pragma once
// Where continuum finds the files it ships besides its binary: the data directory (playbooks/,
// configuration/) and the guest programs (continuum-endpoint, continuum-worker). Three layouts:
//   installed   <prefix>/bin/continuum, <prefix>/share/continuum/, <prefix>/libexec/continuum/
//               (the directories `cmake --install` uses, found relative to the binary, so a
//               relocated prefix or a Debian package works);
//   build tree  build/continuum, build/app/, and the source tree the binary was built from;
//   override    $CONTINUUM_HOME is the data directory whatever the layout.
#include <filesystem>
#include <string>

namespace continuum::util {

/// What the lookup depends on, so that a test can describe any layout.
struct InstallLayout {
  std::filesystem::path exe_dir;     ///< directory of the running continuum binary ("" = unknown)
  std::string home;                  ///< $CONTINUUM_HOME ("" = unset)
  std::filesystem::path source_dir;  ///< source tree the binary was built from
};

/// The directory of the running executable, from /proc/self/exe ("" if it cannot be read).
std::filesystem::path executable_dir();

/// This process's layout: executable_dir(), $CONTINUUM_HOME, the source tree baked in at build.
InstallLayout current_layout();

/// The data directory: `home` if set; else the installed one (<exe_dir>/../share/continuum) when it
/// holds playbooks/; else the source tree.
std::filesystem::path data_dir(const InstallLayout& layout);
std::filesystem::path data_dir();

/// The directory of the built guest programs: the installed one (<exe_dir>/../libexec/continuum)
/// when it exists, else <exe_dir>/app (the build tree). "" when exe_dir is unknown.
std::filesystem::path app_dir(const InstallLayout& layout);
std::filesystem::path app_dir();

}  // namespace continuum::util

#include "continuum/record/run_dir.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace continuum::record {
namespace fs = std::filesystem;

Expected<fs::path> create_run_dir(const fs::path& parent, const std::string& config_name,
                                  std::chrono::system_clock::time_point now) {
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) return make_error(parent.string() + ": cannot create output directory: " + ec.message());
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H-%M-%S", &tm);
  std::string base = std::string(stamp) + "_" + config_name;
  for (int i = 1; i < 1000; ++i) {
    fs::path dir = parent / (i == 1 ? base : base + "-" + std::to_string(i));
    // mkdir, not create_directories: EEXIST must be seen so an earlier run is never reused.
    if (::mkdir(dir.c_str(), 0755) == 0) {
      for (const char* sub : {"infrastructure", "software", "benchmark", "energy", "plots"}) {
        fs::create_directory(dir / sub, ec);
        if (ec) return make_error((dir / sub).string() + ": " + ec.message());
      }
      return dir;
    }
    if (errno != EEXIST)
      return make_error(dir.string() + ": cannot create: " + std::strerror(errno));
  }
  return make_error(parent.string() + ": too many runs named " + base);
}

bool is_run_dir(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return false;
  for (const char* f : kRunDirMarkers)
    if (fs::exists(dir / f, ec)) return true;
  return false;
}

}  // namespace continuum::record

#include "environment.h"

#include <pwd.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace continuum::cli {
namespace {

/// Physical cores = logical CPUs / threads per core, as the original derives from lscpu.
int local_physical_cores() {
  std::set<std::pair<std::string, std::string>> cores;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  for (long i = 0; i < n; ++i) {
    std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(i) + "/topology/";
    std::ifstream pkg(base + "physical_package_id"), core(base + "core_id");
    std::string p, c;
    if (!(pkg >> p) || !(core >> c)) return static_cast<int>(n);
    cores.emplace(p, c);
  }
  return cores.empty() ? static_cast<int>(n) : static_cast<int>(cores.size());
}

std::optional<int> parse_positive(const std::string& s) {
  if (s.empty() || s.size() > 9) return std::nullopt;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v <= 0) return std::nullopt;
  return v;
}

std::optional<int> positive_env(const char* name) {
  const char* e = std::getenv(name);
  if (!e || !*e) return std::nullopt;
  auto v = parse_positive(e);
  if (!v) spdlog::warn("{}='{}' ignored: expected a positive whole number", name, e);
  return v;
}

}  // namespace

plan::Environment probe_environment(const config::Config& cfg) {
  plan::Environment env;
  if (const char* u = std::getenv("CONTINUUM_USER"); u && *u)
    env.user = u;
  else if (passwd* pw = getpwuid(geteuid()))
    env.user = pw->pw_name;
  else
    env.user = "user";
  // CONTINUUM_LOCAL_CORES pretends another core count: plans made on one machine for another,
  // and deterministic output in tests.
  env.local_cores = local_physical_cores();
  if (auto v = positive_env("CONTINUUM_LOCAL_CORES")) env.local_cores = *v;
  // External hosts are assumed to have as many cores as the local host (nothing asks them while
  // planning); CONTINUUM_EXTERNAL_CORES gives their counts, either one number for all of them or
  // one per machine ("8,16").
  const size_t n_ext = cfg.infrastructure.external_physical_machines.size();
  env.external_cores.assign(n_ext, env.local_cores);
  if (const char* e = std::getenv("CONTINUUM_EXTERNAL_CORES"); e && *e) {
    std::vector<int> values;
    std::string s = e;
    size_t start = 0;
    while (start <= s.size()) {
      size_t comma = s.find(',', start);
      std::string item =
          s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (auto v = parse_positive(item))
        values.push_back(*v);
      else {
        values.clear();
        break;
      }
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (values.size() == 1)
      env.external_cores.assign(n_ext, values[0]);
    else if (values.size() == n_ext && n_ext > 0)
      env.external_cores = values;
    else
      spdlog::warn(
          "CONTINUUM_EXTERNAL_CORES='{}' ignored: expected one positive number or one per "
          "external_physical_machines entry ({})",
          s, n_ext);
  }
  return env;
}

}  // namespace continuum::cli

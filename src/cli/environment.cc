#include "environment.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <string>

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

}  // namespace

plan::Environment probe_environment(const config::Config& cfg) {
  plan::Environment env;
  if (const char* u = std::getenv("CONTINUUM_USER"); u && *u) env.user = u;
  else if (passwd* pw = getpwuid(geteuid())) env.user = pw->pw_name;
  else env.user = "user";
  env.local_cores = local_physical_cores();
  // External hosts are assumed to match the local host until the infrastructure phase asks
  // their libvirt (virNodeGetInfo); CONTINUUM_EXTERNAL_CORES overrides for planning.
  int ext = env.local_cores;
  if (const char* e = std::getenv("CONTINUUM_EXTERNAL_CORES"); e && *e) ext = std::atoi(e);
  env.external_cores.assign(cfg.infrastructure.external_physical_machines.size(), ext);
  return env;
}

}  // namespace continuum::cli

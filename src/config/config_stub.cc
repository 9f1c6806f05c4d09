// Placeholder until the loader lands: says so instead of pretending to succeed.
#include "continuum/config/config.h"

namespace continuum::config {

const char* tier_name(Tier t) {
  switch (t) {
    case Tier::cloud: return "cloud";
    case Tier::edge: return "edge";
    case Tier::endpoint: return "endpoint";
  }
  return "?";
}

Tier Config::mode() const {
  if (infrastructure.edge.nodes > 0) return Tier::edge;
  if (infrastructure.cloud.nodes > 0) return Tier::cloud;
  return Tier::endpoint;
}

Expected<Config> load(const std::filesystem::path& file) {
  return make_error(file.string() + ": configuration loading is not implemented yet", 1);
}

}  // namespace continuum::config

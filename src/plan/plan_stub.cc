// Placeholder until the planner lands.
#include <nlohmann/json.hpp>

#include "continuum/plan/plan.h"

namespace continuum::plan {

const Node* Plan::find(const std::string&) const { return nullptr; }
const Link* Plan::link_between(const Node&, const Node&) const { return nullptr; }
Expected<Plan> make(const config::Config&, const Environment&) {
  return make_error("planning is not implemented yet", 1);
}
nlohmann::json to_json(const Plan&) { return nlohmann::json::object(); }
Expected<Plan> from_json(const nlohmann::json&) { return make_error("not implemented", 1); }
std::string summary(const Plan&) { return {}; }

}  // namespace continuum::plan

#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "continuum/config/config.h"
#include "continuum/infra/netem.h"
#include "continuum/plan/plan.h"
#include "environment.h"

namespace continuum::cli {

int cmd_plan(const Options& o) {
  auto cfg = config::load(o.config);
  if (!cfg) {
    std::cerr << cfg.error().message << '\n';
    return exit_status(cfg.error().exit_code);
  }
  for (const auto& w : cfg->warnings) std::cerr << "warning: " << w << '\n';
  auto p = plan::make(*cfg, probe_environment(*cfg));
  if (!p) {
    std::cerr << p.error().message << '\n';
    return exit_status(p.error().exit_code);
  }
  // The tc commands each VM will get (infra/netem), after the plan itself.
  if (o.format == "json") {
    auto j = plan::to_json(*p);
    if (p->network_emulation) j["tc"] = infra::netem_json(*p);
    std::cout << j.dump(2) << '\n';
  } else {
    std::cout << plan::summary(*p);
    if (p->network_emulation) std::cout << '\n' << infra::netem_summary(*p);
  }
  return exit_status(ExitCode::ok);
}

}  // namespace continuum::cli

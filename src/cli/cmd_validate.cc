#include <iostream>

#include "commands.h"
#include "continuum/config/config.h"

namespace continuum::cli {

int cmd_validate(const Options& o) {
  auto cfg = config::load(o.config);
  if (!cfg) {
    std::cerr << cfg.error().message;
    if (!cfg.error().message.empty() && cfg.error().message.back() != '\n') std::cerr << '\n';
    return cfg.error().exit_code;
  }
  for (const auto& w : cfg->warnings) std::cerr << "warning: " << w << '\n';
  std::cout << o.config << ": valid\n";
  return 0;
}

}  // namespace continuum::cli

#include <iostream>

#include "commands.h"
#include "continuum/config/config.h"
#include "continuum/config/preflight.h"

namespace continuum::cli {

// Exit 0: valid and runnable (with --compat: valid for the original tool); 2: invalid, or valid
// but refused by the preflight (what this build cannot run), each problem as FILE:LINE.
int cmd_validate(const Options& o) {
  auto cfg = config::load(o.config);
  if (!cfg) {
    std::cerr << cfg.error().message;
    if (!cfg.error().message.empty() && cfg.error().message.back() != '\n') std::cerr << '\n';
    return exit_status(cfg.error().exit_code);
  }
  for (const auto& w : cfg->warnings) std::cerr << "warning: " << w << '\n';
  if (o.compat) {
    std::cout << o.config << ": valid (the original tool's rules)\n";
    return exit_status(ExitCode::ok);
  }
  const config::Preflight pre = config::preflight(*cfg);
  for (const auto& n : pre.notes) std::cerr << "note: " << n << '\n';
  if (!pre.ok()) {
    for (const auto& r : pre.refusals) std::cerr << r << '\n';
    std::cerr << o.config << ": valid for the original tool, but this build cannot run it ("
              << pre.refusals.size() << (pre.refusals.size() == 1 ? " refusal" : " refusals")
              << "; docs/compatibility.md)\n";
    return exit_status(ExitCode::usage);
  }
  std::cout << o.config << ": valid\n";
  return exit_status(ExitCode::ok);
}

}  // namespace continuum::cli

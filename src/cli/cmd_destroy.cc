// `continuum destroy RUN_DIR`: removes every resource the run created, from its ledger
// (RUN_DIR/state.json) alone. Idempotent: a second destroy has nothing to do and exits 0. A run
// that is still live is refused (exit 1): infra::destroy_dead_run.
#include <spdlog/spdlog.h>

#include "commands.h"
#include "continuum/infra/destroy.h"

namespace continuum::cli {

int cmd_destroy(const Options& o) {
  infra::DestroyOptions d;
  auto r = infra::destroy_dead_run(o.run_dir, d);
  if (!r.ok()) {
    spdlog::error("{}", r.error().message);
    return exit_status(r.error().exit_code);
  }
  for (const auto& e : r->errors) spdlog::error("could not remove {}", e);
  if (!r->errors.empty()) {
    spdlog::error(
        "{}: {} resource(s) could not be removed; run `continuum destroy {}` again once "
        "the cause is fixed",
        o.run_dir, r->errors.size(), o.run_dir);
    return exit_status(ExitCode::failure);
  }
  if (r->removed == 0)
    spdlog::info("{}: nothing to do ({} resource(s) already removed)", o.run_dir,
                 r->already_removed);
  else
    spdlog::info("{}: removed {} resource(s) in {:.1f} s", o.run_dir, r->removed, r->seconds);
  return exit_status(ExitCode::ok);
}

}  // namespace continuum::cli

// `continuum destroy RUN_DIR`: removes every resource the run created, from its ledger
// (RUN_DIR/state.json) alone. Idempotent: a second destroy has nothing to do and exits 0. A run
// that is still live is refused (exit 1): infra::destroy_dead_run.
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "continuum/infra/deployment.h"
#include "continuum/infra/destroy.h"
#include "continuum/util/files.h"

namespace continuum::cli {
namespace {

/// What a run made that is not the run's to remove: the image registry's storage, a cache of
/// continuum's own images shared by every run (docs/containers.md).
void say_what_is_kept(const std::filesystem::path& run_dir) {
  auto text = util::read_file(run_dir / "deployment.json");
  if (!text) return;
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object()) return;
  auto d = infra::deployment_from_json(j);
  if (!d || d->registry_storage.empty()) return;
  spdlog::info(
      "kept: the image registry's storage {} (a cache of continuum's container images, shared "
      "by runs; remove it to reclaim the space)",
      d->registry_storage.string());
}

}  // namespace

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
  say_what_is_kept(o.run_dir);
  return exit_status(ExitCode::ok);
}

}  // namespace continuum::cli

// `continuum report RUN_DIR`: rebuild energy tables and plots from a run directory's saved data.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>

#include "commands.h"
#include "continuum/record/run_dir.h"
#include "continuum/report/render.h"

namespace continuum::cli {

int cmd_report(const Options& o) {
  std::filesystem::path dir = o.run_dir;
  if (!record::is_run_dir(dir)) {
    spdlog::error("{}: not a run directory (none of plan.json, events.jsonl, state.json)",
                  o.run_dir);
    return exit_status(ExitCode::usage);
  }
  auto r = report::render(dir);
  if (!r) {
    spdlog::error("report: {}", r.error().message);
    return exit_status(r.error().exit_code);
  }
  for (const auto& w : r->warnings) spdlog::warn("{}", w);
  for (const auto& f : r->files) spdlog::info("wrote {}", f.string());
  std::fwrite(r->summary_md.data(), 1, r->summary_md.size(), stdout);
  return exit_status(ExitCode::ok);
}

}  // namespace continuum::cli

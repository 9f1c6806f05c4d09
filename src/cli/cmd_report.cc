// `continuum report RUN_DIR`: rebuild energy tables and plots from a run directory's saved data.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>

#include "commands.h"
#include "continuum/report/render.h"

namespace continuum::cli {

namespace {
// A run directory has at least one of the files every run writes first (docs/design.md §8).
bool looks_like_run_dir(const std::filesystem::path& d) {
  std::error_code ec;
  if (!std::filesystem::is_directory(d, ec)) return false;
  for (const char* f : {"events.jsonl", "plan.json", "state.json", "energy/samples.csv"})
    if (std::filesystem::exists(d / f, ec)) return true;
  return false;
}
}  // namespace

int cmd_report(const Options& o) {
  std::filesystem::path dir = o.run_dir;
  if (!looks_like_run_dir(dir)) {
    spdlog::error(
        "{}: not a run directory (no events.jsonl, plan.json, state.json or "
        "energy/samples.csv)",
        o.run_dir);
    return 2;
  }
  auto r = report::render(dir);
  if (!r) {
    spdlog::error("report: {}", r.error().message);
    return 1;
  }
  for (const auto& w : r->warnings) spdlog::warn("{}", w);
  for (const auto& f : r->files) spdlog::info("wrote {}", f.string());
  std::fwrite(r->summary_md.data(), 1, r->summary_md.size(), stdout);
  return 0;
}

}  // namespace continuum::cli

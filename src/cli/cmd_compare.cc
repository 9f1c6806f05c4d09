// `continuum compare RUN_DIR... [-o DIR]`: experiments side by side, from their run directories
// (src/report/include/continuum/report/compare.h, docs/energy.md "Comparing experiments").
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "commands.h"
#include "continuum/report/compare.h"

namespace continuum::cli {

int cmd_compare(const Options& o) {
  std::vector<std::filesystem::path> dirs(o.run_dirs.begin(), o.run_dirs.end());
  std::filesystem::path out = o.compare_output;
  // Without -o: next to the first run (usually in runs/), never inside a run directory.
  if (out.empty() && !dirs.empty())
    out = report::default_compare_dir(dirs.front(), std::chrono::system_clock::now());
  auto r = report::compare_runs(dirs, out);
  if (!r) {
    spdlog::error("compare: {}", r.error().message);
    return exit_status(r.error().exit_code);
  }
  for (const auto& w : r->warnings) spdlog::warn("{}", w);
  for (const auto& f : r->files) spdlog::info("wrote {}", f.string());
  std::fwrite(r->markdown.data(), 1, r->markdown.size(), stdout);
  return exit_status(ExitCode::ok);
}

}  // namespace continuum::cli

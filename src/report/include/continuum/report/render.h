#pragma once
// `continuum report RUN_DIR` and the end of a run (docs/design.md §2): everything derived is
// rebuilt from what the run saved (events.jsonl, energy/samples.csv, benchmark raw logs), so a
// report can be re-rendered later, on another machine, with better code.
#include <filesystem>
#include <string>
#include <vector>

#include "continuum/util/expected.h"

namespace continuum::report {

struct RenderResult {
  std::vector<std::filesystem::path> files;  ///< written: energy.csv, plots/*.png|svg, summary
  std::vector<std::string> warnings;         ///< inputs missing or plots skipped, for the log
  std::string summary_md;                    ///< Markdown fragment (also <run>/energy/summary.md)
};

struct RenderOptions {
  /// The run measured energy ([energy] enabled): a missing samples.csv is then worth a warning;
  /// without [energy] it is expected and nothing is said.
  bool energy_enabled = true;
};

/// Writes <run>/energy/energy.csv, <run>/plots/*.{png,svg} and <run>/energy/summary.md. Missing
/// inputs are not errors (a run without [energy] has no energy plots); an input that exists but
/// is malformed, or gnuplot failing, is an Error naming the file.
Expected<RenderResult> render(const std::filesystem::path& run_dir, const RenderOptions& opts = {});

/// Per-frame end-to-end latencies (ms) from the image_classification endpoint logs
/// (benchmark/repeat-<k>/<app>/*endpoint*.log), all repeats together; empty if none.
std::vector<double> read_latencies(const std::filesystem::path& run_dir);

}  // namespace continuum::report

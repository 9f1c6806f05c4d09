#pragma once
// `continuum compare RUN_DIR... [-o DIR]` (docs/energy.md, "Comparing experiments"): several
// experiments side by side, from their run directories alone.
//   <out>/compare.md                 per experiment, VM and phase: energy mean/min/max over
//                                    repeats (J) and mean power (W); the runs; the platforms
//   <out>/plots/compare_energy.*     energy per VM and phase, one bar per experiment, min–max bars
//   <out>/plots/compare_power.*      power timelines (averaged over repeats), experiments overlaid
//   <out>/plots/data/*.dat, *.gp     what gnuplot drew, as `continuum report` keeps them
// The numbers come from each run's energy/energy.csv (or, when a run has none, from its
// samples.csv and events.jsonl as `continuum report` would compute them) and the timelines from
// samples.csv with report::average_timeline. Nothing is written into the run directories.
//
// VMs are matched by plan node id (cloud0) through each run's plan.json, so runs of different
// users (cloud0_alice, cloud0_bob) line up; without plan.json the domain name is the key.
#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "continuum/report/plots.h"
#include "continuum/util/expected.h"

namespace continuum::report {

/// One run directory, read for comparison.
struct ComparedRun {
  std::filesystem::path dir;
  /// events.jsonl's "experiment" field, else plan.json's config_name, else the directory's name.
  std::string experiment;
  /// Unique among the runs compared: the experiment, or the directory's name when two runs share
  /// an experiment (two runs of one configuration).
  std::string label;
  std::vector<EnergyStat> energy;  ///< per (VM, phase) over repeats, J
  std::vector<EnergyStat> power;   ///< the same keys, mean power (W) over repeats
  Timeline timeline;               ///< VMs named by their keys; empty without samples.csv
  int repeats = 0;                 ///< repeats in energy.csv (or the timeline)
  std::optional<nlohmann::json> environment;  ///< environment.json; nullopt when absent
  std::vector<std::string> notes;             ///< what is missing or derived
};

/// Reads one run directory. An Error (exit code 1) names the malformed file and line; a missing
/// input is a note, not an error. `dir` must be a run directory (record::is_run_dir).
Expected<ComparedRun> load_compared_run(const std::filesystem::path& dir);

/// An environment.json as "field = value" pairs: nested objects joined with '.', null as
/// "(unknown)", arrays as JSON. Without "collected" (always differs) and "errors" (listed apart).
std::map<std::string, std::string> flatten_environment(const nlohmann::json& env);

/// A field whose value is not the same in every run that has an environment.json; `values` has
/// one entry per run, in order ("(absent)" where that run's file lacks the field, "" for a run
/// without environment.json).
struct PlatformDifference {
  std::string field;
  std::vector<std::string> values;
};
std::vector<PlatformDifference> platform_differences(const std::vector<ComparedRun>& runs);

/// compare.md's text (`plots` are the PNGs, relative to the output directory).
std::string compare_markdown(const std::vector<ComparedRun>& runs,
                             const std::vector<std::filesystem::path>& plots);

struct CompareResult {
  std::filesystem::path out_dir;
  std::vector<std::filesystem::path> files;  ///< compare.md and every plot
  std::vector<std::string> warnings;         ///< plots skipped for want of data
  std::string markdown;                      ///< compare.md
};

/// Reads every run, draws, writes <out_dir>/compare.md. Errors: usage (fewer than two run
/// directories, one that is not a run directory, out_dir a run directory), failure (malformed
/// input, naming file and line; gnuplot failing).
Expected<CompareResult> compare_runs(const std::vector<std::filesystem::path>& run_dirs,
                                     const std::filesystem::path& out_dir);

/// Where compare writes without -o: compare_<UTC %Y-%m-%dT%H-%M-%S> next to the first run
/// directory (in its parent, usually runs/), with -2, -3... when that exists.
std::filesystem::path default_compare_dir(const std::filesystem::path& first_run,
                                          std::chrono::system_clock::time_point now);

}  // namespace continuum::report

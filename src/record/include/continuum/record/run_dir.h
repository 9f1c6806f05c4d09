#pragma once
// The run directory (docs/design.md §8): one per run, never overwritten.
//   runs/<UTC timestamp>_<config name>/
//     config.cfg plan.json state.json continuum.log events.jsonl known_hosts
//     infrastructure/ software/ benchmark/ energy/ plots/ summary.md
#include <chrono>
#include <filesystem>
#include <string>

#include "continuum/util/expected.h"

namespace continuum::record {

/// Creates `<parent>/<UTC %Y-%m-%dT%H-%M-%S>_<config_name>` and its subdirectories. Never reuses an
/// existing directory: a clash (two runs in the same second) gets a `-2`, `-3`... suffix.
Expected<std::filesystem::path> create_run_dir(const std::filesystem::path& parent,
                                               const std::string& config_name,
                                               std::chrono::system_clock::time_point now);

/// The files of which a run directory has at least one: plan.json and events.jsonl are written
/// first by `continuum CONFIG`, state.json by the infrastructure phase.
inline constexpr const char* kRunDirMarkers[] = {"plan.json", "events.jsonl", "state.json"};

/// True if `dir` is a run directory: a directory holding one of kRunDirMarkers. `destroy` and
/// `report` refuse anything else with exit code 2 before they touch it.
bool is_run_dir(const std::filesystem::path& dir);

}  // namespace continuum::record

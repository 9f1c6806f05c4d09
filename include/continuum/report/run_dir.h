#pragma once
// The run directory (docs/design.md §8): one per run, never overwritten.
//   runs/<UTC timestamp>_<config name>/
//     config.cfg plan.json state.json continuum.log events.jsonl known_hosts
//     infrastructure/ software/ benchmark/ energy/ plots/ summary.md
#include <chrono>
#include <filesystem>
#include <string>

#include "continuum/util/expected.h"

namespace continuum::report {

/// Creates `<parent>/<UTC %Y-%m-%dT%H-%M-%S>_<config_name>` and its subdirectories. Never reuses an
/// existing directory: a clash (two runs in the same second) gets a `-2`, `-3`... suffix.
Expected<std::filesystem::path> create_run_dir(const std::filesystem::path& parent,
                                               const std::string& config_name,
                                               std::chrono::system_clock::time_point now);

/// True if `dir` looks like a run directory (has plan.json or state.json).
bool is_run_dir(const std::filesystem::path& dir);

}  // namespace continuum::report

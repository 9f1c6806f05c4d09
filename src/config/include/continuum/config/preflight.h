#pragma once
// What this build can run. config::load checks a file against the original tool's rules (a file
// the original accepts loads); preflight then says which of those valid configurations this
// build cannot run, before anything is created, and which accepted keys have no effect here.
// `continuum CONFIG` and `continuum validate CONFIG` refuse with exit 2 on any refusal;
// `continuum validate --compat CONFIG` skips the preflight. docs/compatibility.md has the table of
// every key and application.
#include <string>
#include <vector>

#include "continuum/config/config.h"

namespace continuum::config {

/// The verdict of preflight(): refusals stop a run; notes are printed and the run goes on.
struct Preflight {
  /// "FILE:LINE: [section] key = value: not supported by this build: why; what to use instead".
  std::vector<std::string> refusals;
  /// "FILE:LINE: [section] key = value: accepted for compatibility; no effect: why", or
  /// "...; differs from the original: how" for a key whose effect here is not the original's.
  std::vector<std::string> notes;
  bool ok() const { return refusals.empty(); }
};

/// Checks a loaded configuration against what this build implements. Pure: reads only `cfg`.
Preflight preflight(const Config& cfg);

}  // namespace continuum::config

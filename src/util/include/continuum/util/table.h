#pragma once
// Plain-text tables for the log and summary.md (the network, netperf and resource reports).
#include <string>
#include <vector>

namespace continuum::util {

/// Rows as a plain-text table: each column padded to its widest cell plus two spaces, trailing
/// blanks trimmed, one line per row (rows may have different lengths).
std::string align_columns(const std::vector<std::vector<std::string>>& rows);

}  // namespace continuum::util

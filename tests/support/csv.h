#pragma once
// A run directory's CSV files as tests read them: every row's fields (RFC 4180, via
// util::csv_split), or each data row as a header -> value map. Unreadable or malformed input is a
// test failure, named.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "continuum/util/files.h"
#include "continuum/util/strings.h"

namespace continuum::test_support {

/// Every non-empty line's fields, the header included.
inline std::vector<std::vector<std::string>> read_csv(const std::filesystem::path& p) {
  std::vector<std::vector<std::string>> rows;
  auto t = util::read_file(p);
  EXPECT_TRUE(t.ok()) << p;
  if (!t.ok()) return rows;
  for (const auto& line : util::split(*t, '\n')) {
    if (util::trim(line).empty()) continue;
    std::vector<std::string> f;
    EXPECT_TRUE(util::csv_split(line, f)) << p << ": " << line;
    rows.push_back(std::move(f));
  }
  return rows;
}

/// The data rows as header -> value maps; a row with another field count than the header fails.
inline std::vector<std::map<std::string, std::string>> csv_maps(const std::filesystem::path& p) {
  std::vector<std::map<std::string, std::string>> out;
  auto rows = read_csv(p);
  for (size_t i = 1; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].size(), rows[0].size()) << p << " row " << i;
    std::map<std::string, std::string> m;
    for (size_t k = 0; k < rows[0].size() && k < rows[i].size(); ++k) m[rows[0][k]] = rows[i][k];
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace continuum::test_support

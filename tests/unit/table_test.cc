// util::align_columns: the plain-text tables of the log and summary.md.
#include "continuum/util/table.h"

#include <gtest/gtest.h>

using continuum::util::align_columns;

namespace {

TEST(Table, ColumnsPaddedToTheWidestCellAndTrailingBlanksTrimmed) {
  EXPECT_EQ(
      align_columns({{"vm", "check", "status"}, {"endpoint0", "cpu_quota", "ok"}, {"c", "", ""}}),
      "vm         check      status\n"
      "endpoint0  cpu_quota  ok\n"
      "c\n");
  // A short row pads only the columns it has.
  EXPECT_EQ(align_columns({{"a", "bb"}, {"ccc"}}), "a    bb\nccc\n");
  EXPECT_EQ(align_columns({}), "");
}

}  // namespace

#include "continuum/util/strings.h"

#include <gtest/gtest.h>

using namespace continuum::util;

TEST(ShellQuote, LeavesSafeWordsAlone) { EXPECT_EQ(shell_quote("ens2"), "ens2"); }

TEST(ShellQuote, QuotesMetacharactersAndEmbeddedQuotes) {
  EXPECT_EQ(shell_quote("a b"), "'a b'");
  EXPECT_EQ(shell_quote("x;rm -rf /"), "'x;rm -rf /'");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote(""), "''");
  EXPECT_EQ(shell_quote("$(id)"), "'$(id)'");
}

TEST(ShellJoin, QuotesEachWord) {
  EXPECT_EQ(shell_join({"tc", "qdisc", "add", "dev", "eth 0"}), "tc qdisc add dev 'eth 0'");
}

TEST(ClosestMatch, SuggestsTypos) {
  std::vector<std::string> keys = {"cloud_nodes", "cloud_cores", "edge_nodes", "frequency"};
  EXPECT_EQ(closest_match("cloud_node", keys), "cloud_nodes");
  EXPECT_EQ(closest_match("frequncy", keys), "frequency");
  EXPECT_EQ(closest_match("completely_different", keys), "");
}

TEST(FormatNumber, DropsTrailingZeros) {
  EXPECT_EQ(format_number(7.21), "7.21");
  EXPECT_EQ(format_number(1000), "1000");
  EXPECT_EQ(format_number(0.5), "0.5");
  EXPECT_EQ(format_number(29.66), "29.66");
}

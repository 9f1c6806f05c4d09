#include "continuum/util/strings.h"

#include <gtest/gtest.h>

#include <cmath>

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

TEST(Strings, FormatFixedKeepsTheDigitsAndNamesMissingValues) {
  EXPECT_EQ(format_fixed(7.21, 3), "7.210");
  EXPECT_EQ(format_fixed(2.0 / 3.0, 2), "0.67");
  EXPECT_EQ(format_fixed(NAN, 3), "");
  EXPECT_EQ(format_fixed(NAN, 1, "-"), "-");
}

TEST(Strings, CsvFieldsQuoteWhatWouldSplitTheRowAndSplitBack) {
  EXPECT_EQ(csv_field("cloud0"), "cloud0");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  // A bare CR ends a row for many readers: quoted like LF.
  EXPECT_EQ(csv_field("x\ry"), "\"x\ry\"");
  const std::vector<std::string> cells = {"plain", "a,b", "say \"hi\"", "x\ry", ""};
  std::string line = csv_field(cells[0]);
  for (size_t i = 1; i < cells.size(); ++i) line += "," + csv_field(cells[i]);
  std::vector<std::string> back;
  ASSERT_TRUE(csv_split(line, back));
  EXPECT_EQ(back, cells);
  EXPECT_FALSE(csv_split("\"unclosed,x", back));
}

TEST(SplitCommand, QuotesAsAShellWithoutExpansion) {
  std::string err;
  auto w = split_command(R"(a  'b c' "d \"e\" $HOME" f\ g ~ *)", &err);
  ASSERT_TRUE(w) << err;
  EXPECT_EQ(*w, (std::vector<std::string>{"a", "b c", "d \"e\" $HOME", "f g", "~", "*"}));
  EXPECT_EQ(split_command("   ", &err)->size(), 0u);
  EXPECT_FALSE(split_command("a 'b", &err));
  EXPECT_EQ(err, "unclosed ' quote");
  EXPECT_FALSE(split_command("a \"b", &err));
  EXPECT_EQ(err, "unclosed \" quote");
  EXPECT_FALSE(split_command("a\\", &err));
  EXPECT_EQ(err, "trailing backslash");
}

TEST(ExpandPlaceholders, NamesAndEscapedBraces) {
  std::map<std::string, std::string> vars = {{"vm", "cloud0"}, {"port", "8081"}};
  std::string err;
  EXPECT_EQ(*expand_placeholders("{vm}:{port}/{{x}}", vars, &err), "cloud0:8081/{x}");
  EXPECT_FALSE(expand_placeholders("{nope}", vars, &err));
  EXPECT_EQ(err, "unknown placeholder {nope}; allowed: {port}, {vm}");
  EXPECT_FALSE(expand_placeholders("{vm", vars, &err));
  EXPECT_FALSE(expand_placeholders("vm}", vars, &err));
}

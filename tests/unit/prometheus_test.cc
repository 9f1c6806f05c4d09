// Prometheus text format 0.0.4 parser: every rule of the exposition format and every Scaphandre
// quirk listed in docs/energy.md, and malformed lines rejected with their line numbers.
#include "continuum/energy/prometheus.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace continuum::energy::prom;

namespace {

std::vector<OwnedSample> parse_ok(std::string_view text, ParseOptions o = {}) {
  std::vector<OwnedSample> out;
  auto r = parse_all(text, out, o);
  EXPECT_TRUE(r.ok()) << r.summary();
  EXPECT_EQ(r.samples, out.size());
  return out;
}

ParseResult parse_bad(std::string_view text, ParseOptions o = {}) {
  std::vector<OwnedSample> out;
  return parse_all(text, out, o);
}

}  // namespace

TEST(Prometheus, BasicSampleWithHelpAndType) {
  auto s = parse_ok(
      "# HELP scaph_host_power_microwatts Power measurement on the whole host, in microwatts\n"
      "# TYPE scaph_host_power_microwatts gauge\n"
      "scaph_host_power_microwatts{value_source=\"powercap_rapl_psys\"} 12500000\n");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].name, "scaph_host_power_microwatts");
  EXPECT_EQ(s[0].type, MetricType::gauge);
  EXPECT_EQ(s[0].label("value_source"), "powercap_rapl_psys");
  EXPECT_DOUBLE_EQ(s[0].value, 12500000);
  EXPECT_EQ(s[0].line, 3);
  EXPECT_FALSE(s[0].timestamp_ms);
}

TEST(Prometheus, HelpDocIsDeliveredAndUnescaped) {
  std::string help;
  Parser p;
  auto r = p.parse("# HELP m a \\\\ b\\nc\nm 1\n", [&](const Sample& s) { help = s.help; });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(unescape_help(help), "a \\ b\nc");
}

TEST(Prometheus, EmptyLinesCrLfAndMissingFinalNewline) {
  auto s = parse_ok("\n\na 1\r\n\r\n   \n\tb 2\r\nc 3");
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].line, 3);
  EXPECT_EQ(s[1].name, "b");
  EXPECT_EQ(s[1].line, 6);
  EXPECT_EQ(s[2].name, "c");
  EXPECT_DOUBLE_EQ(s[2].value, 3);
}

TEST(Prometheus, AnyRunOfBlanksSeparatesTokens) {
  auto s = parse_ok("  \t m{ a = \"x\" ,\tb=\"y\" }  \t 4.5 \t 1700000000000  \t \n");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].label("a"), "x");
  EXPECT_EQ(s[0].label("b"), "y");
  EXPECT_DOUBLE_EQ(s[0].value, 4.5);
  EXPECT_EQ(s[0].timestamp_ms, 1700000000000);
}

TEST(Prometheus, CommentsOtherThanHelpTypeAreIgnored) {
  auto s = parse_ok(
      "# just a comment\n#another\n# UNIT m joules\n#HELP m doc without space after hash\n"
      "# TYPE m counter\nm 1\n# EOF\n");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].type, MetricType::counter);
}

TEST(Prometheus, AllTypesAndUntypedDefault) {
  auto s = parse_ok(
      "# TYPE c counter\nc 1\n# TYPE g gauge\ng 2\n# TYPE u untyped\nu 3\nnotype 4\n"
      "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n"
      "# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 2\ns_count 3\n");
  ASSERT_EQ(s.size(), 11u);
  EXPECT_EQ(s[0].type, MetricType::counter);
  EXPECT_EQ(s[1].type, MetricType::gauge);
  EXPECT_EQ(s[2].type, MetricType::untyped);
  EXPECT_EQ(s[3].type, MetricType::untyped);
  for (int i = 4; i < 8; ++i) EXPECT_EQ(s[i].type, MetricType::histogram) << s[i].name;
  for (int i = 8; i < 11; ++i) EXPECT_EQ(s[i].type, MetricType::summary) << s[i].name;
}

TEST(Prometheus, UnknownTypeRejectedWithLine) {
  auto r = parse_bad("a 1\n# TYPE b meter\nb 2\n");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 2);
  EXPECT_NE(r.errors[0].message.find("meter"), std::string::npos);
  EXPECT_EQ(r.samples, 2u);  // the samples themselves are fine
}

TEST(Prometheus, SecondHelpOrTypeRejected) {
  auto r = parse_bad("# HELP a x\n# HELP a y\n# TYPE a gauge\n# TYPE a gauge\na 1\n");
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[0].line, 2);
  EXPECT_EQ(r.errors[1].line, 4);
}

TEST(Prometheus, TypeAfterFirstSampleRejected) {
  auto r = parse_bad("a 1\n# TYPE a gauge\n");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 2);
  EXPECT_NE(r.errors[0].message.find("after its first sample"), std::string::npos);
}

TEST(Prometheus, TrailingCommaInLabelSet) {
  auto s = parse_ok("m{a=\"1\",b=\"2\",} 7\nn{} 8\n");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].labels.size(), 2u);
  EXPECT_TRUE(s[1].labels.empty());
}

TEST(Prometheus, NamesWithColonsAndLabelNameRules) {
  auto s = parse_ok("job:rate_5m:sum{_x=\"1\",A9=\"2\"} 1\n");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].name, "job:rate_5m:sum");
  auto r = parse_bad("9m 1\nm{9a=\"x\"} 1\nm{a:b=\"x\"} 1\nm-x 1\n");
  ASSERT_EQ(r.errors.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(r.errors[i].line, i + 1);
}

TEST(Prometheus, LabelValueEscapes) {
  auto s = parse_ok(R"(m{a="q\"uo\"te",b="back\\slash",c="new\nline",d="é UTF-8 ✓"} 1)"
                    "\n");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].label("a"), "q\"uo\"te");
  EXPECT_EQ(s[0].label("b"), "back\\slash");
  EXPECT_EQ(s[0].label("c"), "new\nline");
  EXPECT_EQ(s[0].label("d"), "é UTF-8 ✓");
}

TEST(Prometheus, ManyEscapedLabelsStayValidInOneSample) {
  // Decoded values share one scratch buffer; it must not move while a line is parsed.
  std::string line = "m{";
  for (int i = 0; i < 40; ++i)
    line += "l" + std::to_string(i) + "=\"v\\\\" + std::to_string(i) + "\",";
  line += "} 1\n";
  auto s = parse_ok(line);
  ASSERT_EQ(s.size(), 1u);
  ASSERT_EQ(s[0].labels.size(), 40u);
  for (int i = 0; i < 40; ++i) EXPECT_EQ(s[0].labels[i].second, "v\\" + std::to_string(i));
}

TEST(Prometheus, GoFloatValues) {
  auto s = parse_ok(
      "a NaN\nb +Inf\nc -Inf\nd 1.7560473e+07\ne -0.5\nf 1E3\ng +12\nh 0x1p-2\ni inf\nj .5\n");
  ASSERT_EQ(s.size(), 10u);
  EXPECT_TRUE(std::isnan(s[0].value));
  EXPECT_TRUE(std::isinf(s[1].value) && s[1].value > 0);
  EXPECT_TRUE(std::isinf(s[2].value) && s[2].value < 0);
  EXPECT_DOUBLE_EQ(s[3].value, 17560473);
  EXPECT_DOUBLE_EQ(s[4].value, -0.5);
  EXPECT_DOUBLE_EQ(s[5].value, 1000);
  EXPECT_DOUBLE_EQ(s[6].value, 12);
  EXPECT_DOUBLE_EQ(s[7].value, 0.25);
  EXPECT_TRUE(std::isinf(s[8].value));
  EXPECT_DOUBLE_EQ(s[9].value, 0.5);
}

TEST(Prometheus, BadValuesRejectedWithLine) {
  auto r = parse_bad("ok 1\na 12abc\nb\nc --1\nd nan(1)\ne 1e999\nf 1,5\n");
  ASSERT_EQ(r.errors.size(), 6u);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(r.errors[i].line, i + 2) << r.errors[i].message;
  EXPECT_EQ(r.samples, 1u);
}

TEST(Prometheus, TimestampsIncludingNegative) {
  auto s = parse_ok("a 1 -1000\nb 2 1395066363000\n");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].timestamp_ms, -1000);
  EXPECT_EQ(s[1].timestamp_ms, 1395066363000);
  auto r = parse_bad("a 1 1.5\nb 2 3 extra\n");
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[0].line, 1);
  EXPECT_EQ(r.errors[1].line, 2);
}

TEST(Prometheus, MalformedLabelSetsRejectedWithLine) {
  auto r = parse_bad(
      "good 1\n"
      "m{a=\"x\" 1\n"           // 2: missing }
      "m{a=x} 1\n"              // 3: unquoted
      "m{a\"x\"} 1\n"           // 4: missing =
      "m{a=\"x\" b=\"y\"} 1\n"  // 5: missing comma
      "m{a=\"x} 1\n"            // 6: unterminated value
      "m{a=\"1\",a=\"2\"} 1\n"  // 7: duplicate label
      "m{,} 1\n"                // 8: empty label name
      "good2 2\n");
  ASSERT_EQ(r.errors.size(), 7u) << r.summary(10);
  for (int i = 0; i < 7; ++i) EXPECT_EQ(r.errors[i].line, i + 2) << r.errors[i].message;
  EXPECT_EQ(r.samples, 2u);
}

TEST(Prometheus, BadHelpTypeNames) {
  auto r = parse_bad("# HELP 1bad doc\n# TYPE\n");
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[0].line, 1);
  EXPECT_EQ(r.errors[1].line, 2);
}

TEST(Prometheus, StrictDuplicateSeriesAnyLabelOrder) {
  auto lenient = parse_bad("m{a=\"1\",b=\"2\"} 1\nm{b=\"2\",a=\"1\"} 2\n");
  EXPECT_TRUE(lenient.ok());
  auto r = parse_bad("m{a=\"1\",b=\"2\"} 1\nm{b=\"2\",a=\"1\"} 2\n", {.strict = true});
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 2);
}

TEST(Prometheus, StrictGroupsMustBeUninterrupted) {
  auto r = parse_bad("a 1\nb 1\na{x=\"1\"} 2\n", {.strict = true});
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 3);
  EXPECT_TRUE(parse_bad("a 1\nb 1\na{x=\"1\"} 2\n").ok());
}

TEST(Prometheus, StrictReservedLabelNames) {
  auto r = parse_bad("m{__name__=\"x\"} 1\n", {.strict = true});
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 1);
}

TEST(Prometheus, StrictHistogramConventions) {
  ParseOptions strict{.strict = true};
  EXPECT_TRUE(parse_bad("# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"1\"} 2\n"
                        "h_bucket{le=\"+Inf\"} 3\nh_sum 1.5\nh_count 3\n",
                        strict)
                  .ok());
  auto no_inf = parse_bad("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_count 2\n", strict);
  ASSERT_EQ(no_inf.errors.size(), 1u);
  EXPECT_NE(no_inf.errors[0].message.find("+Inf"), std::string::npos);
  auto mismatch = parse_bad("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 3\n", strict);
  ASSERT_EQ(mismatch.errors.size(), 1u);
  auto descending = parse_bad(
      "# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\n"
      "h_count 1\n",
      strict);
  ASSERT_EQ(descending.errors.size(), 1u);
  EXPECT_EQ(descending.errors[0].line, 2);
  auto q = parse_bad("# TYPE s summary\ns{quantile=\"0.9\"} 1\ns{quantile=\"0.5\"} 1\n", strict);
  ASSERT_EQ(q.errors.size(), 1u);
}

// --- Scaphandre quirks (docs/exporters.md §1) ---

TEST(Prometheus, ScaphandreRandomLabelOrderAndManyLabels) {
  std::string line = "scaph_process_power_consumption_microwatts{";
  for (int i = 0; i < 30; ++i) line += "container_label_" + std::to_string(i) + "=\"v\",";
  line +=
      "exe=\"qemu-system-x86\",cmdline=\"qemu-system-x86_64-name "
      "guest=cloud0_u,debug-threads=on\",vmname=\"cloud0_u\",pid=\"42\"} 3300000\n";
  auto s = parse_ok(line);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].labels.size(), 34u);
  EXPECT_EQ(s[0].label("vmname"), "cloud0_u");
  EXPECT_EQ(s[0].label("pid"), "42");
}

TEST(Prometheus, ScaphandreQuoteStylesBothAccepted) {
  // 1.0.x replaces " by _ and drops backslashes; older builds escape " (and leave other
  // backslashes as they are, e.g. a regex in a cmdline).
  auto s = parse_ok(
      "scaph_process_power_consumption_microwatts{cmdline=\"sh-c_echo hi_\",pid=\"1\"} 1\n"
      "scaph_process_power_consumption_microwatts{cmdline=\"sh-c\\\"echo \\d+\\\"\",pid=\"2\"} "
      "2\n");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].label("cmdline"), "sh-c_echo hi_");
  EXPECT_EQ(s[1].label("cmdline"), "sh-c\"echo \\d+\"");
}

TEST(Prometheus, ScaphandreHelpTypeNamesNeedNotMatchSamples) {
  // hubblo-org/scaphandre#44: HELP/TYPE without the scaph_ prefix, samples with it.
  auto s = parse_ok(
      "# HELP host_power_microwatts Power measurement on the whole host, in microwatts\n"
      "# TYPE host_power_microwatts gauge\n"
      "scaph_host_power_microwatts 9000000\n");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].type, MetricType::untyped);
  EXPECT_DOUBLE_EQ(s[0].value, 9000000);
}

TEST(Prometheus, ScaphandreOldNamesAndTypoMetric) {
  auto s = parse_ok(
      "scaph_self_mem_total_program_size 1\n"
      "scaph_domain_energy_microjoules{rapl_domain_name=\"core\",socket_id=\"0\"} 5\n"
      "scaph_process_power_consumption_microwats{pid=\"1\"} 7\n");
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[1].label("rapl_domain_name"), "core");
  EXPECT_EQ(s[2].name, "scaph_process_power_consumption_microwats");
}

TEST(Prometheus, ScaphandreFloatStringValuesAndNoTimestamps) {
  auto s = parse_ok("scaph_host_load_avg_one 0.73\nscaph_host_energy_microjoules 123456789012\n");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_DOUBLE_EQ(s[0].value, 0.73);
  EXPECT_DOUBLE_EQ(s[1].value, 123456789012.0);
}

TEST(Prometheus, ErrorsAreCappedButParsingGoesOn) {
  std::string text;
  for (int i = 0; i < 500; ++i) text += "bad{\n";
  text += "good 1\n";
  std::vector<OwnedSample> out;
  auto r = parse_all(text, out, {.max_errors = 10});
  EXPECT_EQ(r.errors.size(), 11u);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].line, 501);
}

TEST(Prometheus, CanonicalLabelsRoundTrip) {
  std::vector<OwnedSample> out;
  ASSERT_TRUE(parse_all("m{z=\"1\",a=\"q\\\"x\\\\\"} 1\n", out).ok());
  std::vector<Label> ls;
  for (auto& [k, v] : out[0].labels) ls.push_back({k, v});
  std::string canon = canonical_labels(ls);
  EXPECT_EQ(canon, "{a=\"q\\\"x\\\\\",z=\"1\"}");
  std::vector<std::pair<std::string, std::string>> back;
  ASSERT_TRUE(parse_label_set(canon, back));
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].second, "q\"x\\");
}

#pragma once
// Prometheus text exposition format 0.0.4 parser (the format Scaphandre and node-exporter serve).
// It runs on every scrape of every VM, so it allocates nothing per sample: names and label values
// are string_views into the scraped buffer (label values with escapes are decoded into a scratch
// buffer owned by the parser), and samples are handed to a callback one at a time.
//
// Rules (docs/energy.md lists them with the tests that cover each):
//  - `\n` or `\r\n` line ends, a missing final newline is fine, empty lines are ignored;
//  - tokens separated by any run of spaces/tabs; leading/trailing blanks ignored;
//  - `# HELP name doc` (doc escapes `\\`, `\n`) and `# TYPE name counter|gauge|histogram|summary|
//    untyped`; at most one of each per name; TYPE before the name's first sample; other comments
//    (including OpenMetrics `# UNIT`, `# EOF`) ignored;
//  - `name{l="v",...,} value [timestamp_ms]`, names `[a-zA-Z_:][a-zA-Z0-9_:]*`, label names
//    `[a-zA-Z_][a-zA-Z0-9_]*`, label value escapes `\\`, `\"`, `\n`; a label name twice is an
//    error;
//  - value as Go's ParseFloat (NaN, +Inf, -Inf, exponents, hex floats), timestamp an int64.
// Scaphandre quirks tolerated (docs/exporters.md §1): any label order; HELP/TYPE names that do not
// match the samples' names (#44); an unknown escape such as `\d` in a cmdline is kept literally.
// Strict mode adds the checks a conforming exposition passes but a scrape should not die on:
// metric groups uninterrupted, unique (name, labels), `__`-prefixed label names, histogram and
// summary conventions.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace continuum::energy::prom {

enum class MetricType { untyped, counter, gauge, histogram, summary };

/// "counter", "gauge", ...
std::string_view to_string(MetricType t);

struct Label {
  std::string_view name;
  std::string_view value;  ///< decoded (escapes resolved)
};

/// One sample; views are valid only during the callback.
struct Sample {
  std::string_view name;
  std::span<const Label> labels;  ///< in the order written (Scaphandre's is random)
  double value = 0;
  std::optional<int64_t> timestamp_ms;
  MetricType type = MetricType::untyped;  ///< from the TYPE line of its family, if any
  std::string_view help;                  ///< raw HELP doc of its family ("" if none)
  int line = 0;                           ///< 1-based line number

  /// Value of label `name`, or nullopt.
  std::optional<std::string_view> label(std::string_view name) const;
};

struct ParseError {
  int line = 0;
  std::string message;
};

struct ParseOptions {
  bool strict = false;      ///< see the header comment
  size_t max_errors = 100;  ///< stop collecting (not parsing) after this many
};

struct ParseResult {
  size_t samples = 0;
  size_t lines = 0;
  std::vector<ParseError> errors;  ///< malformed lines; their samples were not delivered
  bool ok() const { return errors.empty(); }
  /// "line 3: ...; line 9: ..." (first few), for logs.
  std::string summary(size_t max = 5) const;
};

/// Decodes a HELP doc (`\\` and `\n`).
std::string unescape_help(std::string_view raw);

/// Reusable parser: keep one per scrape target so its scratch buffers are reused.
class Parser {
 public:
  explicit Parser(ParseOptions opts = {}) : opts_(opts) {}

  /// Parses a whole exposition; calls `on_sample(const Sample&)` for each good sample. A malformed
  /// line is reported in the result (with its line number) and skipped; parsing continues.
  template <typename F>
  ParseResult parse(std::string_view text, F&& on_sample) {
    return parse_impl(
        text,
        [](void* ctx, const Sample& s) { (*static_cast<std::remove_reference_t<F>*>(ctx))(s); },
        &on_sample);
  }

 private:
  using Callback = void (*)(void*, const Sample&);
  ParseResult parse_impl(std::string_view text, Callback cb, void* ctx);

  ParseOptions opts_;
  std::vector<Label> labels_;
  std::string scratch_;
};

/// Collects every sample with owned strings (tests, `report`); not for the hot path.
struct OwnedSample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
  std::optional<int64_t> timestamp_ms;
  MetricType type = MetricType::untyped;
  int line = 0;
  std::string label(std::string_view n) const;
};
ParseResult parse_all(std::string_view text, std::vector<OwnedSample>& out, ParseOptions opts = {});

/// Labels in canonical form `{a="x",b="y"}` sorted by name, values escaped: a stable series key.
std::string canonical_labels(std::span<const Label> labels);
/// Parses the canonical form back (also accepts "" for no labels).
bool parse_label_set(std::string_view text, std::vector<std::pair<std::string, std::string>>& out);

}  // namespace continuum::energy::prom

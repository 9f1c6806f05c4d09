#include "continuum/energy/prometheus.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <map>
#include <unordered_map>
#include <unordered_set>

namespace continuum::energy::prom {
namespace {

// Character classes as lookup tables: the hot loop touches every byte of every scrape.
constexpr std::array<uint8_t, 256> make_table(bool colon, bool digits) {
  std::array<uint8_t, 256> t{};
  for (int c = 'a'; c <= 'z'; ++c) t[c] = 1;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = 1;
  t['_'] = 1;
  if (colon) t[':'] = 1;
  if (digits)
    for (int c = '0'; c <= '9'; ++c) t[c] = 1;
  return t;
}
constexpr auto kNameFirst = make_table(true, false);
constexpr auto kNameRest = make_table(true, true);
constexpr auto kLabelFirst = make_table(false, false);
constexpr auto kLabelRest = make_table(false, true);

inline bool is_blank(char c) { return c == ' ' || c == '\t'; }
inline unsigned char uc(char c) { return static_cast<unsigned char>(c); }

struct Cursor {
  const char* p;
  const char* end;
  bool done() const { return p == end; }
  void skip_blanks() {
    while (p != end && is_blank(*p)) ++p;
  }
  std::string_view token() {  // up to the next blank
    const char* s = p;
    while (p != end && !is_blank(*p)) ++p;
    return {s, static_cast<size_t>(p - s)};
  }
};

std::string_view read_name(Cursor& c, const std::array<uint8_t, 256>& first,
                           const std::array<uint8_t, 256>& rest) {
  const char* s = c.p;
  if (c.done() || !first[uc(*c.p)]) return {};
  ++c.p;
  while (c.p != c.end && rest[uc(*c.p)]) ++c.p;
  return {s, static_cast<size_t>(c.p - s)};
}

bool valid_metric_name(std::string_view n) {
  if (n.empty() || !kNameFirst[uc(n[0])]) return false;
  for (char ch : n.substr(1))
    if (!kNameRest[uc(ch)]) return false;
  return true;
}

// Go's strconv.ParseFloat(s, 64) as Prometheus uses it: optional sign, decimal or hex float,
// inf/infinity/nan in any case.
bool parse_go_float(std::string_view s, double& out) {
  if (s.empty()) return false;
  bool neg = false;
  if (s[0] == '+' || s[0] == '-') {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty() || s[0] == '+' || s[0] == '-') return false;
  std::chars_format fmt = std::chars_format::general;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s.remove_prefix(2);
    fmt = std::chars_format::hex;
  }
  // from_chars also takes "nan(chars)", which Go does not.
  if (s.find('(') != std::string_view::npos) return false;
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v, fmt);
  if (ptr != s.data() + s.size()) return false;
  if (ec == std::errc::result_out_of_range) {
    // Go returns ±Inf (or 0) with an error for out-of-range values; Prometheus rejects the line.
    return false;
  }
  if (ec != std::errc()) return false;
  out = neg ? -v : v;
  return true;
}

bool parse_int64(std::string_view s, int64_t& out) {
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

MetricType parse_type(std::string_view w, bool& ok) {
  ok = true;
  if (w == "counter") return MetricType::counter;
  if (w == "gauge") return MetricType::gauge;
  if (w == "histogram") return MetricType::histogram;
  if (w == "summary") return MetricType::summary;
  if (w == "untyped") return MetricType::untyped;
  ok = false;
  return MetricType::untyped;
}

void append_escaped(std::string& out, std::string_view v) {
  for (char ch : v) {
    if (ch == '\\')
      out += "\\\\";
    else if (ch == '"')
      out += "\\\"";
    else if (ch == '\n')
      out += "\\n";
    else
      out += ch;
  }
}

// Strict-mode bookkeeping for one histogram/summary series (labels without le/quantile).
struct SeriesShape {
  std::vector<double> bounds;  // le or quantile values in order seen
  std::optional<double> inf_bucket, count;
  int first_line = 0;
};

}  // namespace

std::string_view to_string(MetricType t) {
  switch (t) {
    case MetricType::counter:
      return "counter";
    case MetricType::gauge:
      return "gauge";
    case MetricType::histogram:
      return "histogram";
    case MetricType::summary:
      return "summary";
    case MetricType::untyped:
      break;
  }
  return "untyped";
}

std::optional<std::string_view> Sample::label(std::string_view n) const {
  for (const auto& l : labels)
    if (l.name == n) return l.value;
  return std::nullopt;
}

std::string OwnedSample::label(std::string_view n) const {
  for (const auto& [k, v] : labels)
    if (k == n) return v;
  return {};
}

std::string ParseResult::summary(size_t max) const {
  std::string s;
  for (size_t i = 0; i < errors.size() && i < max; ++i) {
    if (!s.empty()) s += "; ";
    s += "line " + std::to_string(errors[i].line) + ": " + errors[i].message;
  }
  if (errors.size() > max) s += "; ... (" + std::to_string(errors.size()) + " errors)";
  return s;
}

std::string unescape_help(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\\' && i + 1 < raw.size() && (raw[i + 1] == '\\' || raw[i + 1] == 'n')) {
      out += raw[i + 1] == 'n' ? '\n' : '\\';
      ++i;
    } else {
      out += raw[i];
    }
  }
  return out;
}

std::string canonical_labels(std::span<const Label> labels) {
  if (labels.empty()) return {};
  std::vector<const Label*> sorted;
  sorted.reserve(labels.size());
  for (const auto& l : labels) sorted.push_back(&l);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->name < b->name; });
  std::string out = "{";
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (i) out += ',';
    out.append(sorted[i]->name);
    out += "=\"";
    append_escaped(out, sorted[i]->value);
    out += '"';
  }
  out += '}';
  return out;
}

bool parse_label_set(std::string_view text, std::vector<std::pair<std::string, std::string>>& out) {
  out.clear();
  if (text.empty()) return true;
  std::string src = std::string("x") + std::string(text) + " 0\n";
  Parser p;
  bool got = false;
  auto r = p.parse(src, [&](const Sample& s) {
    got = true;
    for (const auto& l : s.labels) out.emplace_back(std::string(l.name), std::string(l.value));
  });
  return r.ok() && got;
}

ParseResult parse_all(std::string_view text, std::vector<OwnedSample>& out, ParseOptions opts) {
  Parser p(opts);
  return p.parse(text, [&](const Sample& s) {
    OwnedSample o;
    o.name = s.name;
    for (const auto& l : s.labels) o.labels.emplace_back(std::string(l.name), std::string(l.value));
    o.value = s.value;
    o.timestamp_ms = s.timestamp_ms;
    o.type = s.type;
    o.line = s.line;
    out.push_back(std::move(o));
  });
}

namespace {

// One parse of one exposition: the per-call state (keys are views into the text, valid for this
// call) and the steps of a line. Parser keeps only what is reused across calls (labels_, scratch_).
class Exposition {
 public:
  Exposition(const ParseOptions& opts, std::vector<Label>& labels, std::string& scratch)
      : opts_(opts), labels_(labels), scratch_(scratch) {}

  ParseResult run(std::string_view text, void (*cb)(void*, const Sample&), void* ctx) {
    const char* p = text.data();
    const char* const end = text.data() + text.size();
    while (p < end) {
      ++line_no_;
      Cursor c = next_line(p, end);
      if (c.done()) continue;
      ++result_.lines;
      if (*c.p == '#') {
        comment_line(c);
        continue;
      }
      Sample s;
      if (sample_line(c, s)) {
        ++result_.samples;
        cb(ctx, s);
      }
    }
    close_family();
    return std::move(result_);
  }

 private:
  void error(std::string msg) { error_at(line_no_, std::move(msg)); }
  void error_at(int line, std::string msg) {
    if (result_.errors.size() < opts_.max_errors)
      result_.errors.push_back({line, std::move(msg)});
    else if (result_.errors.size() == opts_.max_errors)
      result_.errors.push_back({line, "too many errors; further errors not listed"});
  }

  // The line starting at `p` without its `\n` or `\r\n` and its surrounding blanks; advances `p`
  // past the line end.
  Cursor next_line(const char*& p, const char* end) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    const char* le = nl ? nl : end;
    const char* next = nl ? nl + 1 : end;
    if (le > p && le[-1] == '\r') --le;
    Cursor c{p, le};
    line_begin_ = c.p;
    p = next;
    c.skip_blanks();
    while (c.end > c.p && is_blank(c.end[-1])) --c.end;
    return c;
  }

  // `# HELP name doc`, `# TYPE name type`; any other comment is ignored.
  void comment_line(Cursor& c) {
    ++c.p;
    c.skip_blanks();
    std::string_view word = c.token();
    bool help = word == "HELP";
    if (!help && word != "TYPE") return;  // plain comment, # UNIT, # EOF
    c.skip_blanks();
    std::string_view name = c.token();
    if (!valid_metric_name(name)) {
      error(std::string(word) + " line has an invalid metric name '" + std::string(name) + "'");
      return;
    }
    c.skip_blanks();
    std::string_view rest{c.p, static_cast<size_t>(c.end - c.p)};
    if (help) {
      if (!helps_.emplace(name, rest).second)
        error("second HELP line for metric '" + std::string(name) + "'");
      return;
    }
    bool ok = false;
    MetricType t = parse_type(rest, ok);
    if (!ok) {
      error("unknown metric type '" + std::string(rest) + "' for '" + std::string(name) +
            "' (counter, gauge, histogram, summary, untyped)");
      return;
    }
    if (types_.count(name)) {
      error("second TYPE line for metric '" + std::string(name) + "'");
      return;
    }
    if (seen_families_.count(name)) {
      error("TYPE line for '" + std::string(name) + "' after its first sample");
      return;
    }
    types_.emplace(name, t);
    last_name_ = {};  // a new TYPE may change the family of the cached name
  }

  // `name{labels} value [timestamp]`: fills `s` and returns true when the sample is delivered.
  bool sample_line(Cursor& c, Sample& s) {
    std::string_view name = read_name(c, kNameFirst, kNameRest);
    if (name.empty()) {
      error("a sample must start with a metric name [a-zA-Z_:][a-zA-Z0-9_:]*");
      return false;
    }
    labels_.clear();
    scratch_.clear();
    if (scratch_.capacity() < static_cast<size_t>(c.end - c.p)) scratch_.reserve(c.end - c.p);
    if (!c.done() && *c.p == '{') {
      ++c.p;
      if (!label_set(c)) return false;
    } else if (!c.done() && !is_blank(*c.p)) {
      error("invalid character '" + std::string(1, *c.p) + "' in metric name '" +
            std::string(name) + "'");
      return false;
    }
    if (!value_and_timestamp(c, name, s)) return false;
    resolve_family(name);
    s.name = name;
    s.labels = labels_;
    s.type = cur_type_;
    s.help = cur_help_;
    s.line = line_no_;
    return !opts_.strict || strict_checks(name, s);
  }

  // The labels after `{` up to and including `}`, into labels_.
  bool label_set(Cursor& c) {
    for (;;) {
      c.skip_blanks();
      if (c.done()) {
        error("unterminated label set (missing '}')");
        return false;
      }
      if (*c.p == '}') {
        ++c.p;
        return true;
      }
      std::string_view lname = read_name(c, kLabelFirst, kLabelRest);
      if (lname.empty()) {
        error("invalid label name at column " + std::to_string(c.p - line_begin_ + 1) +
              " (label names match [a-zA-Z_][a-zA-Z0-9_]*)");
        return false;
      }
      std::string_view value;
      if (!label_value(c, lname, value)) return false;
      for (const auto& l : labels_) {
        if (l.name == lname) {
          error("label '" + std::string(lname) + "' appears twice");
          return false;
        }
      }
      if (opts_.strict && lname.size() >= 2 && lname[0] == '_' && lname[1] == '_') {
        error("label name '" + std::string(lname) + "' is reserved (starts with __)");
        return false;
      }
      labels_.push_back({lname, value});
      c.skip_blanks();
      if (!c.done() && *c.p == ',') {
        ++c.p;
        continue;
      }
      if (!c.done() && *c.p == '}') {
        ++c.p;
        return true;
      }
      error("expected ',' or '}' after label '" + std::string(lname) + "'");
      return false;
    }
  }

  // `= "value"` after a label name; `value` is decoded (a view into scratch_ if it had escapes).
  bool label_value(Cursor& c, std::string_view lname, std::string_view& value) {
    c.skip_blanks();
    if (c.done() || *c.p != '=') {
      error("expected '=' after label name '" + std::string(lname) + "'");
      return false;
    }
    ++c.p;
    c.skip_blanks();
    if (c.done() || *c.p != '"') {
      error("label value of '" + std::string(lname) + "' must be in double quotes");
      return false;
    }
    ++c.p;
    const char* vs = c.p;
    bool escaped = false;
    while (c.p != c.end && *c.p != '"') {
      if (*c.p == '\\') {
        escaped = true;
        if (++c.p == c.end) break;
      }
      ++c.p;
    }
    if (c.done()) {
      error("unterminated label value of '" + std::string(lname) + "'");
      return false;
    }
    value = {vs, static_cast<size_t>(c.p - vs)};
    ++c.p;  // closing quote
    if (escaped) value = unescape_label_value(value);
    return true;
  }

  std::string_view unescape_label_value(std::string_view raw) {
    size_t start = scratch_.size();
    for (size_t i = 0; i < raw.size(); ++i) {
      char ch = raw[i];
      if (ch == '\\' && i + 1 < raw.size()) {
        char n2 = raw[++i];
        if (n2 == 'n') {
          scratch_ += '\n';
        } else if (n2 == '\\' || n2 == '"') {
          scratch_ += n2;
        } else {  // unknown escape: keep it (older Scaphandre cmdlines)
          scratch_ += '\\';
          scratch_ += n2;
        }
      } else {
        scratch_ += ch;
      }
    }
    return std::string_view(scratch_).substr(start);
  }

  bool value_and_timestamp(Cursor& c, std::string_view name, Sample& s) {
    c.skip_blanks();
    std::string_view vtok = c.token();
    if (vtok.empty()) {
      error("sample '" + std::string(name) + "' has no value");
      return false;
    }
    if (!parse_go_float(vtok, s.value)) {
      error("value '" + std::string(vtok) + "' of '" + std::string(name) + "' is not a float");
      return false;
    }
    c.skip_blanks();
    if (c.done()) return true;
    std::string_view ts = c.token();
    int64_t tv = 0;
    if (!parse_int64(ts, tv)) {
      error("timestamp '" + std::string(ts) + "' is not an integer (ms since epoch)");
      return false;
    }
    s.timestamp_ms = tv;
    c.skip_blanks();
    if (!c.done()) {
      error("unexpected text after the timestamp: '" +
            std::string(c.p, static_cast<size_t>(c.end - c.p)) + "'");
      return false;
    }
    return true;
  }

  // The family (histogram/summary suffixes folded) and type of `name`, cached per name: groups are
  // contiguous, so consecutive samples mostly share a name.
  void resolve_family(std::string_view name) {
    if (name == last_name_) return;
    last_name_ = name;
    std::string_view family = name;
    MetricType t = MetricType::untyped;
    if (auto it = types_.find(name); it != types_.end()) {
      t = it->second;
    } else {
      for (std::string_view suf :
           {std::string_view("_bucket"), std::string_view("_sum"), std::string_view("_count")}) {
        if (name.size() > suf.size() && name.ends_with(suf)) {
          auto base = name.substr(0, name.size() - suf.size());
          auto bt = types_.find(base);
          if (bt != types_.end() && (bt->second == MetricType::histogram ||
                                     (bt->second == MetricType::summary && suf != "_bucket"))) {
            family = base;
            t = bt->second;
          }
          break;
        }
      }
    }
    if (family != last_family_) {
      if (family != cur_family_) {
        close_family();
        if (opts_.strict && closed_families_.count(family)) {
          error("samples of '" + std::string(family) +
                "' interrupted by another metric (a metric's lines must form one group)");
        }
        seen_families_.insert(family);
        cur_family_ = family;
      }
      last_family_ = family;
    }
    cur_type_ = t;
    auto h = helps_.find(family);
    cur_help_ = h == helps_.end() ? std::string_view() : h->second;
  }

  // Strict mode: unique series, and the le/quantile bookkeeping close_family() checks.
  bool strict_checks(std::string_view name, const Sample& s) {
    std::string key(name);
    key += canonical_labels(labels_);
    if (!series_.insert(key).second) {
      error("duplicate series " + key);
      return false;
    }
    if (cur_type_ != MetricType::histogram && cur_type_ != MetricType::summary) return true;
    std::vector<Label> rest;
    std::optional<std::string_view> bound;
    std::string_view bname = cur_type_ == MetricType::histogram ? "le" : "quantile";
    for (const auto& l : labels_) {
      if (l.name == bname)
        bound = l.value;
      else
        rest.push_back(l);
    }
    auto& sh = shapes_[canonical_labels(rest)];
    if (!sh.first_line) sh.first_line = line_no_;
    bool is_bucket = name.ends_with("_bucket");
    if (name.ends_with("_count") && name != cur_family_) sh.count = s.value;
    if ((cur_type_ == MetricType::histogram && is_bucket) ||
        (cur_type_ == MetricType::summary && name == cur_family_)) {
      double b = 0;
      if (!bound || !parse_go_float(*bound, b)) {
        error(std::string(name) + ": needs a numeric " + std::string(bname) + " label");
        return false;
      }
      sh.bounds.push_back(b);
      if (std::isinf(b) && b > 0) sh.inf_bucket = s.value;
    }
    return true;
  }

  // The current family's group ended: strict mode checks its histogram/summary series.
  void close_family() {
    if (!opts_.strict || cur_family_.empty()) return;
    closed_families_.insert(cur_family_);
    for (auto& [key, sh] : shapes_) {
      std::string what = std::string(cur_family_) + key;
      for (size_t i = 1; i < sh.bounds.size(); ++i) {
        if (!(sh.bounds[i] > sh.bounds[i - 1])) {
          error_at(sh.first_line,
                   what + ": " +
                       (cur_type_ == MetricType::histogram ? "buckets (le)" : "quantiles") +
                       " must ascend");
          break;
        }
      }
      if (cur_type_ == MetricType::histogram && (!sh.bounds.empty() || sh.count)) {
        if (!sh.inf_bucket)
          error_at(sh.first_line, what + ": histogram has no le=\"+Inf\" bucket");
        else if (sh.count && *sh.count != *sh.inf_bucket)
          error_at(sh.first_line, what + ": le=\"+Inf\" bucket differs from _count");
      }
    }
    shapes_.clear();
  }

  const ParseOptions& opts_;
  std::vector<Label>& labels_;
  std::string& scratch_;
  ParseResult result_;
  int line_no_ = 0;
  const char* line_begin_ = nullptr;
  std::unordered_map<std::string_view, MetricType> types_;
  std::unordered_map<std::string_view, std::string_view> helps_;
  std::unordered_set<std::string_view> seen_families_;    // families that already had samples
  std::unordered_set<std::string_view> closed_families_;  // strict: groups that ended
  std::unordered_set<std::string> series_;                // strict: name+labels seen
  std::map<std::string, SeriesShape> shapes_;             // strict: current family's hist/summary
  std::string_view cur_family_;                           // family of the previous sample
  MetricType cur_type_ = MetricType::untyped;
  std::string_view cur_help_;
  std::string_view last_name_;  // cache of resolve_family()
  std::string_view last_family_;
};

}  // namespace

ParseResult Parser::parse_impl(std::string_view text, Callback cb, void* ctx) {
  return Exposition(opts_, labels_, scratch_).run(text, cb, ctx);
}

}  // namespace continuum::energy::prom

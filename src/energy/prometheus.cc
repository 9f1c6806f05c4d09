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
    if (ch == '\\') out += "\\\\";
    else if (ch == '"') out += "\\\"";
    else if (ch == '\n') out += "\\n";
    else out += ch;
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
    case MetricType::counter: return "counter";
    case MetricType::gauge: return "gauge";
    case MetricType::histogram: return "histogram";
    case MetricType::summary: return "summary";
    case MetricType::untyped: break;
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

ParseResult Parser::parse_impl(std::string_view text, Callback cb, void* ctx) {
  ParseResult result;
  // Per-exposition state. Keys are views into `text`, valid for this call.
  std::unordered_map<std::string_view, MetricType> types;
  std::unordered_map<std::string_view, std::string_view> helps;
  std::unordered_set<std::string_view> seen_families;  // families that already had samples
  std::unordered_set<std::string_view> closed_families;  // strict: groups that ended
  std::unordered_set<std::string> series;               // strict: name+labels seen
  std::map<std::string, SeriesShape> shapes;            // strict: current family's hist/summary
  std::string_view cur_family;  // family of the previous sample
  MetricType cur_type = MetricType::untyped;
  std::string_view cur_help;
  std::string_view last_name;  // cache: consecutive samples mostly share a name
  std::string_view last_family;

  auto error = [&](int line, std::string msg) {
    if (result.errors.size() < opts_.max_errors) result.errors.push_back({line, std::move(msg)});
    else if (result.errors.size() == opts_.max_errors)
      result.errors.push_back({line, "too many errors; further errors not listed"});
  };

  auto close_family = [&]() {
    if (!opts_.strict || cur_family.empty()) return;
    closed_families.insert(cur_family);
    for (auto& [key, sh] : shapes) {
      std::string what = std::string(cur_family) + key;
      for (size_t i = 1; i < sh.bounds.size(); ++i) {
        if (!(sh.bounds[i] > sh.bounds[i - 1])) {
          error(sh.first_line, what + ": " +
                                   (cur_type == MetricType::histogram ? "buckets (le)"
                                                                      : "quantiles") +
                                   " must ascend");
          break;
        }
      }
      if (cur_type == MetricType::histogram) {
        if (!sh.bounds.empty() || sh.count) {
          if (!sh.inf_bucket) error(sh.first_line, what + ": histogram has no le=\"+Inf\" bucket");
          else if (sh.count && *sh.count != *sh.inf_bucket)
            error(sh.first_line, what + ": le=\"+Inf\" bucket differs from _count");
        }
      }
    }
    shapes.clear();
  };

  const char* p = text.data();
  const char* const end = text.data() + text.size();
  int line_no = 0;
  while (p < end) {
    ++line_no;
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    const char* le = nl ? nl : end;
    const char* next = nl ? nl + 1 : end;
    if (le > p && le[-1] == '\r') --le;
    Cursor c{p, le};
    const char* line_begin = c.p;
    p = next;
    c.skip_blanks();
    while (c.end > c.p && is_blank(c.end[-1])) --c.end;
    if (c.done()) continue;
    ++result.lines;

    if (*c.p == '#') {
      ++c.p;
      c.skip_blanks();
      std::string_view word = c.token();
      bool help = word == "HELP";
      if (!help && word != "TYPE") continue;  // plain comment, # UNIT, # EOF
      c.skip_blanks();
      std::string_view name = c.token();
      if (!valid_metric_name(name)) {
        error(line_no, std::string(word) + " line has an invalid metric name '" +
                           std::string(name) + "'");
        continue;
      }
      c.skip_blanks();
      std::string_view rest{c.p, static_cast<size_t>(c.end - c.p)};
      if (help) {
        if (!helps.emplace(name, rest).second) {
          error(line_no, "second HELP line for metric '" + std::string(name) + "'");
        }
        continue;
      }
      bool ok = false;
      MetricType t = parse_type(rest, ok);
      if (!ok) {
        error(line_no, "unknown metric type '" + std::string(rest) + "' for '" +
                           std::string(name) + "' (counter, gauge, histogram, summary, untyped)");
        continue;
      }
      if (types.count(name)) {
        error(line_no, "second TYPE line for metric '" + std::string(name) + "'");
        continue;
      }
      if (seen_families.count(name)) {
        error(line_no, "TYPE line for '" + std::string(name) + "' after its first sample");
        continue;
      }
      types.emplace(name, t);
      last_name = {};  // a new TYPE may change the family of the cached name
      continue;
    }

    // Sample line.
    std::string_view name = read_name(c, kNameFirst, kNameRest);
    if (name.empty()) {
      error(line_no, "a sample must start with a metric name [a-zA-Z_:][a-zA-Z0-9_:]*");
      continue;
    }
    labels_.clear();
    scratch_.clear();
    if (scratch_.capacity() < static_cast<size_t>(c.end - c.p)) scratch_.reserve(c.end - c.p);
    bool bad = false;
    if (!c.done() && *c.p == '{') {
      ++c.p;
      for (;;) {
        c.skip_blanks();
        if (c.done()) {
          error(line_no, "unterminated label set (missing '}')");
          bad = true;
          break;
        }
        if (*c.p == '}') {
          ++c.p;
          break;
        }
        std::string_view lname = read_name(c, kLabelFirst, kLabelRest);
        if (lname.empty()) {
          error(line_no, "invalid label name at column " + std::to_string(c.p - line_begin + 1) +
                             " (label names match [a-zA-Z_][a-zA-Z0-9_]*)");
          bad = true;
          break;
        }
        c.skip_blanks();
        if (c.done() || *c.p != '=') {
          error(line_no, "expected '=' after label name '" + std::string(lname) + "'");
          bad = true;
          break;
        }
        ++c.p;
        c.skip_blanks();
        if (c.done() || *c.p != '"') {
          error(line_no, "label value of '" + std::string(lname) + "' must be in double quotes");
          bad = true;
          break;
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
          error(line_no, "unterminated label value of '" + std::string(lname) + "'");
          bad = true;
          break;
        }
        std::string_view value{vs, static_cast<size_t>(c.p - vs)};
        ++c.p;  // closing quote
        if (escaped) {
          size_t start = scratch_.size();
          for (size_t i = 0; i < value.size(); ++i) {
            char ch = value[i];
            if (ch == '\\' && i + 1 < value.size()) {
              char n2 = value[++i];
              if (n2 == 'n') scratch_ += '\n';
              else if (n2 == '\\' || n2 == '"') scratch_ += n2;
              else {  // unknown escape: keep it (older Scaphandre cmdlines)
                scratch_ += '\\';
                scratch_ += n2;
              }
            } else {
              scratch_ += ch;
            }
          }
          value = std::string_view(scratch_).substr(start);
        }
        for (const auto& l : labels_) {
          if (l.name == lname) {
            error(line_no, "label '" + std::string(lname) + "' appears twice");
            bad = true;
            break;
          }
        }
        if (bad) break;
        if (opts_.strict && lname.size() >= 2 && lname[0] == '_' && lname[1] == '_') {
          error(line_no, "label name '" + std::string(lname) + "' is reserved (starts with __)");
          bad = true;
          break;
        }
        labels_.push_back({lname, value});
        c.skip_blanks();
        if (!c.done() && *c.p == ',') {
          ++c.p;
          continue;
        }
        if (!c.done() && *c.p == '}') {
          ++c.p;
          break;
        }
        error(line_no, "expected ',' or '}' after label '" + std::string(lname) + "'");
        bad = true;
        break;
      }
      if (bad) continue;
    } else if (!c.done() && !is_blank(*c.p)) {
      error(line_no, "invalid character '" + std::string(1, *c.p) + "' in metric name '" +
                         std::string(name) + "'");
      continue;
    }
    c.skip_blanks();
    std::string_view vtok = c.token();
    Sample s;
    if (vtok.empty()) {
      error(line_no, "sample '" + std::string(name) + "' has no value");
      continue;
    }
    if (!parse_go_float(vtok, s.value)) {
      error(line_no, "value '" + std::string(vtok) + "' of '" + std::string(name) +
                         "' is not a float");
      continue;
    }
    c.skip_blanks();
    if (!c.done()) {
      std::string_view ts = c.token();
      int64_t tv = 0;
      if (!parse_int64(ts, tv)) {
        error(line_no, "timestamp '" + std::string(ts) + "' is not an integer (ms since epoch)");
        continue;
      }
      s.timestamp_ms = tv;
      c.skip_blanks();
      if (!c.done()) {
        error(line_no, "unexpected text after the timestamp: '" +
                           std::string(c.p, static_cast<size_t>(c.end - c.p)) + "'");
        continue;
      }
    }

    // Family and type (cached per name: groups are contiguous).
    if (name != last_name) {
      last_name = name;
      std::string_view family = name;
      auto it = types.find(name);
      MetricType t = MetricType::untyped;
      if (it != types.end()) {
        t = it->second;
      } else {
        for (std::string_view suf : {std::string_view("_bucket"), std::string_view("_sum"),
                                     std::string_view("_count")}) {
          if (name.size() > suf.size() && name.ends_with(suf)) {
            auto base = name.substr(0, name.size() - suf.size());
            auto bt = types.find(base);
            if (bt != types.end() && (bt->second == MetricType::histogram ||
                                      (bt->second == MetricType::summary && suf != "_bucket"))) {
              family = base;
              t = bt->second;
            }
            break;
          }
        }
      }
      if (family != last_family) {
        if (family != cur_family) {
          close_family();
          if (opts_.strict && closed_families.count(family)) {
            error(line_no, "samples of '" + std::string(family) +
                               "' interrupted by another metric (a metric's lines must form one "
                               "group)");
          }
          seen_families.insert(family);
          cur_family = family;
        }
        last_family = family;
      }
      cur_type = t;
      auto h = helps.find(family);
      cur_help = h == helps.end() ? std::string_view() : h->second;
    }
    s.name = name;
    s.labels = labels_;
    s.type = cur_type;
    s.help = cur_help;
    s.line = line_no;

    if (opts_.strict) {
      std::string key(name);
      key += canonical_labels(labels_);
      if (!series.insert(key).second) {
        error(line_no, "duplicate series " + key);
        continue;
      }
      if (cur_type == MetricType::histogram || cur_type == MetricType::summary) {
        std::vector<Label> rest;
        std::optional<std::string_view> bound;
        std::string_view bname = cur_type == MetricType::histogram ? "le" : "quantile";
        for (const auto& l : labels_) {
          if (l.name == bname) bound = l.value;
          else rest.push_back(l);
        }
        auto& sh = shapes[canonical_labels(rest)];
        if (!sh.first_line) sh.first_line = line_no;
        bool is_bucket = name.ends_with("_bucket");
        if (name.ends_with("_count") && name != cur_family) sh.count = s.value;
        if ((cur_type == MetricType::histogram && is_bucket) ||
            (cur_type == MetricType::summary && name == cur_family)) {
          double b = 0;
          if (!bound || !parse_go_float(*bound, b)) {
            error(line_no, std::string(name) + ": needs a numeric " + std::string(bname) +
                               " label");
            continue;
          }
          sh.bounds.push_back(b);
          if (std::isinf(b) && b > 0) sh.inf_bucket = s.value;
        }
      }
    }
    ++result.samples;
    cb(ctx, s);
  }
  close_family();
  return result;
}

}  // namespace continuum::energy::prom

#include "continuum/benchmark/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <limits>
#include <sstream>

namespace continuum::benchmark {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool contains(std::string_view s, std::string_view w) {
  return s.find(w) != std::string_view::npos;
}

int digits(std::string_view s, size_t pos, size_t n, bool* ok) {
  int v = 0;
  if (pos + n > s.size()) {
    *ok = false;
    return 0;
  }
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') {
      *ok = false;
      return 0;
    }
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

// Timestamp of a log line: its first word.
std::optional<int64_t> line_time(std::string_view line) {
  auto sp = line.find(' ');
  auto r = parse_rfc3339(line.substr(0, sp));
  if (!r.ok()) return std::nullopt;
  return *r;
}

std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view l = text.substr(pos, nl - pos);
    while (!l.empty() && (l.back() == '\r' || l.back() == ' ')) l.remove_suffix(1);
    if (!l.empty()) out.push_back(l);
    pos = nl + 1;
  }
  return out;
}

double ms4(int64_t ns) { return round_to(static_cast<double>(ns) / 1e6, 4); }

}  // namespace

Expected<int64_t> parse_rfc3339(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm)
  bool ok = true;
  std::tm tm{};
  tm.tm_year = digits(s, 0, 4, &ok) - 1900;
  tm.tm_mon = digits(s, 5, 2, &ok) - 1;
  tm.tm_mday = digits(s, 8, 2, &ok);
  tm.tm_hour = digits(s, 11, 2, &ok);
  tm.tm_min = digits(s, 14, 2, &ok);
  tm.tm_sec = digits(s, 17, 2, &ok);
  if (!ok || s.size() < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') ||
      s[13] != ':' || s[16] != ':')
    return make_error(fmt::format("not an RFC 3339 timestamp: '{}'", s));
  size_t pos = 19;
  int64_t frac_ns = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int n = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (n < 9) {
        frac_ns = frac_ns * 10 + (s[pos] - '0');
        ++n;
      }
      ++pos;
    }
    for (; n < 9; ++n) frac_ns *= 10;
  }
  int64_t offset_s = 0;
  if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int hh = digits(s, pos + 1, 2, &ok), mm = digits(s, pos + 4, 2, &ok);
    if (!ok) return make_error(fmt::format("bad UTC offset in timestamp '{}'", s));
    offset_s = (s[pos] == '+' ? 1 : -1) * (hh * 3600 + mm * 60);
    pos += 6;
  } else if (pos < s.size() && s[pos] == 'Z') {
    ++pos;
  } else {
    return make_error(fmt::format("timestamp without time zone: '{}'", s));
  }
  if (pos != s.size()) return make_error(fmt::format("trailing characters in timestamp '{}'", s));
  const int64_t secs = static_cast<int64_t>(timegm(&tm)) - offset_s;
  // The original truncates to microseconds (datetime's resolution).
  return secs * 1000000000 + frac_ns / 1000 * 1000;
}

std::optional<LogValue> parse_value_line(std::string_view line) {
  auto open = line.find('('), close = line.find(')');
  auto colon = line.rfind(':');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open ||
      colon == std::string_view::npos)
    return std::nullopt;
  std::string_view num = line.substr(colon + 1);
  while (!num.empty() && num.front() == ' ') num.remove_prefix(1);
  LogValue v;
  auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), v.value);
  if (ec != std::errc() || p != num.data() + num.size()) return std::nullopt;
  v.unit = std::string(line.substr(open + 1, close - open - 1));
  return v;
}

WorkerLog parse_worker_log(std::string_view output) {
  WorkerLog w;
  for (std::string_view line : lines_of(output)) {
    if (!w.start_ns && contains(line, "Read image and apply ML")) {
      w.start_ns = line_time(line);
    } else if (contains(line, "Get item")) {
      if (auto t = line_time(line)) w.end_ns = t;
    } else if (contains(line, "Latency") || contains(line, "Processing")) {
      auto v = parse_value_line(line);
      if (!v) {
        w.warnings.push_back(fmt::format("cannot parse line: {}", line));
        continue;
      }
      if (v->value < 0) {
        ++w.negatives;
        continue;
      }
      if (v->unit != "ns") {
        w.warnings.push_back(fmt::format("unit should be [ns], got {}: {}", v->unit, line));
        continue;
      }
      (contains(line, "Latency") ? w.delays_ms : w.processing_ms).push_back(ms4(v->value));
    }
  }
  if (w.negatives) w.warnings.push_back(fmt::format("got {} negative time values", w.negatives));
  return w;
}

EndpointLog parse_endpoint_log(std::string_view output) {
  EndpointLog e;
  auto lines = lines_of(output);
  if (!lines.empty()) {
    e.first_ns = line_time(lines.front());
    e.last_ns = line_time(lines.back());
  }
  for (std::string_view line : lines) {
    const bool proc = contains(line, "Preparation and preprocessing") ||
                      contains(line, "Preparation, preprocessing and processing");
    const bool size = contains(line, "Sending data");
    const bool lat = contains(line, "Latency");
    if (!proc && !size && !lat) continue;
    auto v = parse_value_line(line);
    if (!v) {
      e.warnings.push_back(fmt::format("cannot parse line: {}", line));
      continue;
    }
    if (v->value < 0) {
      ++e.negatives;
      e.warnings.push_back(fmt::format("time/size < 0 should not be possible: {}", v->value));
      continue;
    }
    if (v->unit != "ns" && v->unit != "bytes") {
      e.warnings.push_back(
          fmt::format("unit should be one of [ns,bytes], got {}: {}", v->unit, line));
      continue;
    }
    if (proc)
      e.processing_ms.push_back(ms4(v->value));
    else if (lat)
      e.latency_ms.push_back(ms4(v->value));
    else
      e.data_kb.push_back(round_to(static_cast<double>(v->value) / 1e3, 4));
  }
  return e;
}

std::vector<double> percentile_slice(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const double n = static_cast<double>(values.size());
  // Same double arithmetic as Python's int(len(x) * 0.05), so the same elements are kept.
  const size_t lo = static_cast<size_t>(n * 0.05);
  const size_t hi = static_cast<size_t>(n * 0.90);
  if (hi <= lo) return {};
  return std::vector<double>(values.begin() + static_cast<std::ptrdiff_t>(lo),
                             values.begin() + static_cast<std::ptrdiff_t>(hi));
}

SliceStats slice_stats(const std::vector<double>& values) {
  SliceStats s;
  s.n = values.size();
  auto slice = percentile_slice(values);
  s.kept = slice.size();
  if (slice.empty()) {
    s.mean = s.stdev = kNaN;
    return s;
  }
  double sum = 0;
  for (double v : slice) sum += v;
  s.mean = sum / static_cast<double>(slice.size());
  double sq = 0;
  for (double v : slice) sq += (v - s.mean) * (v - s.mean);
  s.stdev = std::sqrt(sq / static_cast<double>(slice.size()));
  return s;
}

double round_to(double v, int decimals) {
  if (!std::isfinite(v)) return v;
  const double f = std::pow(10.0, decimals);
  return std::nearbyint(v * f) / f;
}

WorkerMetrics worker_metrics(int worker_id, const std::string& node, const WorkerLog& log) {
  WorkerMetrics m;
  m.worker_id = worker_id;
  m.node = node;
  m.total_time_s = (log.start_ns && log.end_ns)
                       ? round_to(static_cast<double>(*log.end_ns - *log.start_ns) / 1e9, 2)
                       : kNaN;
  auto d = slice_stats(log.delays_ms);
  auto p = slice_stats(log.processing_ms);
  m.delay_avg_ms = round_to(d.mean, 2);
  m.delay_stdev_ms = round_to(d.stdev, 2);
  m.proc_avg_ms = round_to(p.mean, 2);
  m.frames = log.processing_ms.size();
  return m;
}

EndpointMetrics endpoint_metrics(int endpoint_id, int connected_to, const std::string& node,
                                 const EndpointLog& log) {
  EndpointMetrics m;
  m.endpoint_id = endpoint_id;
  m.connected_to = connected_to;
  m.node = node;
  m.total_time_s = (log.first_ns && log.last_ns)
                       ? round_to(static_cast<double>(*log.last_ns - *log.first_ns) / 1e9, 2)
                       : kNaN;
  m.proc_avg_ms = round_to(slice_stats(log.processing_ms).mean, 2);
  if (log.data_kb.empty()) {
    m.data_avg_kb = 0.0;  // the original's initial value when nothing was sent
  } else {
    double sum = 0;
    for (double v : log.data_kb) sum += v;
    m.data_avg_kb = round_to(sum / static_cast<double>(log.data_kb.size()), 2);
  }
  auto l = slice_stats(log.latency_ms);
  m.latency_avg_ms = round_to(l.mean, 2);
  m.latency_stdev_ms = round_to(l.stdev, 2);
  m.frames = log.latency_ms.size();
  return m;
}

namespace {

std::string cell(double v, bool integer, int decimals) {
  if (std::isnan(v)) return "NaN";
  if (integer) return fmt::format("{}", static_cast<long long>(v));
  return fmt::format("{:.{}f}", v, decimals);
}

// Decimals a column needs (at most 4): pandas prints a float column with a common precision.
int column_decimals(const Table& t, size_t c) {
  int need = 1;
  for (const auto& row : t.rows) {
    double v = row[c];
    if (!std::isfinite(v)) continue;
    for (int d = need; d <= 4; ++d) {
      double f = std::pow(10.0, d);
      if (std::fabs(std::nearbyint(v * f) - v * f) < 1e-6 * std::max(1.0, std::fabs(v * f))) break;
      need = d + 1;
    }
  }
  return std::min(need, 4);
}

}  // namespace

std::string render_table(const Table& t) {
  const size_t cols = t.headers.size();
  std::vector<std::vector<std::string>> cells;
  for (const auto& row : t.rows) {
    std::vector<std::string> r;
    for (size_t c = 0; c < cols; ++c) {
      bool integer = c < t.integer_column.size() && t.integer_column[c];
      r.push_back(
          cell(c < row.size() ? row[c] : kNaN, integer, integer ? 0 : column_decimals(t, c)));
    }
    cells.push_back(std::move(r));
  }
  std::vector<size_t> width(cols);
  for (size_t c = 0; c < cols; ++c) {
    width[c] = t.headers[c].size();
    for (const auto& r : cells) width[c] = std::max(width[c], r[c].size());
  }
  auto line = [&](const std::vector<std::string>& r) {
    std::string s;
    for (size_t c = 0; c < cols; ++c) {
      s += c ? "  " : " ";
      s += std::string(width[c] - r[c].size(), ' ') + r[c];
    }
    return s + "\n";
  };
  std::string out = line(t.headers);
  for (const auto& r : cells) out += line(r);
  return out;
}

Table worker_table(const AppMetrics& m) {
  Table t;
  t.headers = {"worker_id", "total_time (s)", "delay_avg (ms)", "delay_stdev (ms)",
               "proc_time/data (ms)"};
  t.integer_column = {true, false, false, false, false};
  for (const auto& w : m.workers)
    t.rows.push_back({static_cast<double>(w.worker_id), w.total_time_s, w.delay_avg_ms,
                      w.delay_stdev_ms, w.proc_avg_ms});
  return t;
}

Table endpoint_table(const AppMetrics& m) {
  Table t;
  if (m.mode == "endpoint") {
    t.headers = {"endpoint_id", "total_time (s)", "proc_time/data (ms)", "latency_avg (ms)",
                 "latency_stdev (ms)"};
    t.integer_column = {true, false, false, false, false};
    for (const auto& e : m.endpoints)
      t.rows.push_back({static_cast<double>(e.endpoint_id), e.total_time_s, e.proc_avg_ms,
                        e.latency_avg_ms, e.latency_stdev_ms});
  } else {
    t.headers = {"connected_to",       "total_time (s)",   "preproc_time/data (ms)",
                 "data_size_avg (kb)", "latency_avg (ms)", "latency_stdev (ms)"};
    t.integer_column = {true, false, false, false, false, false};
    for (const auto& e : m.endpoints)
      t.rows.push_back({static_cast<double>(e.connected_to), e.total_time_s, e.proc_avg_ms,
                        e.data_avg_kb, e.latency_avg_ms, e.latency_stdev_ms});
  }
  return t;
}

std::string render_app_tables(const AppMetrics& m) {
  const std::string rule = "------------------------------------\n";
  std::string out;
  if (m.mode != "endpoint") {
    std::string title = m.mode == "edge" ? "EDGE" : "CLOUD";
    out += rule + title + " OUTPUT\n" + rule + render_table(worker_table(m));
  }
  out += rule + "ENDPOINT OUTPUT\n" + rule + render_table(endpoint_table(m));
  return out;
}

}  // namespace continuum::benchmark

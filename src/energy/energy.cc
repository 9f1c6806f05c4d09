#include "continuum/energy/energy.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <map>
#include <set>

#include "continuum/energy/prometheus.h"
#include "continuum/util/files.h"
#include "continuum/util/strings.h"

namespace continuum::energy {
namespace {

bool parse_double(const std::string& s, double& out) {
  if (s.empty()) {
    out = NAN;
    return true;
  }
  const char* b = s.data();
  const char* e = b + s.size();
  if (*b == '+') ++b;
  auto [p, ec] = std::from_chars(b, e, out);
  return ec == std::errc() && p == e;
}

}  // namespace

std::string samples_csv_header() { return "time,t,vm,target,metric,labels,value"; }

std::string samples_csv_line(const SampleRow& r) {
  char val[64];
  std::snprintf(val, sizeof val, "%.17g", r.value);
  std::string s;
  s.reserve(96 + r.labels.size());
  s += r.time;
  s += ',';
  s += util::format_fixed(r.t, 6);
  s += ',';
  s += util::csv_field(r.vm);
  s += ',';
  s += util::csv_field(r.target);
  s += ',';
  s += r.metric;
  s += ',';
  s += util::csv_field(r.labels);
  s += ',';
  s += val;
  s += '\n';
  return s;
}

Expected<std::vector<SampleRow>> read_samples(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return make_error(file.string() + ": cannot open");
  std::vector<SampleRow> rows;
  std::string line;
  std::vector<std::string> f;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (n == 1) {
      if (line != samples_csv_header())
        return make_error(file.string() + ":1: unexpected header '" + line + "' (expected '" +
                          samples_csv_header() + "')");
      continue;
    }
    if (line.empty()) continue;
    SampleRow r;
    if (!util::csv_split(line, f) || f.size() != 7 || !parse_double(f[1], r.t) ||
        !parse_double(f[6], r.value) || std::isnan(r.t)) {
      // A crash mid-write leaves a cut last line: skip it, as read_events does.
      if (in.peek() == EOF) break;
      return make_error(file.string() + ":" + std::to_string(n) + ": malformed sample row");
    }
    r.time = f[0];
    r.vm = f[2];
    r.target = f[3];
    r.metric = f[4];
    r.labels = f[5];
    rows.push_back(std::move(r));
  }
  return rows;
}

// ---------------------------------------------------------------- series math

size_t reject_spikes(Series& s, const SpikeRule& rule) {
  if (s.size() < 3) return 0;
  std::vector<bool> drop(s.size(), false);
  size_t n = 0;
  for (size_t i = 1; i + 1 < s.size(); ++i) {
    double nb = std::max(s.v[i - 1], s.v[i + 1]);
    if (s.v[i] > rule.factor * std::max(nb, 0.0) && s.v[i] - nb > rule.min_jump_watts) {
      drop[i] = true;
      ++n;
    }
  }
  if (!n) return 0;
  Series out;
  for (size_t i = 0; i < s.size(); ++i)
    if (!drop[i]) {
      out.t.push_back(s.t[i]);
      out.v.push_back(s.v[i]);
    }
  s = std::move(out);
  return n;
}

Series counter_to_joules(const Series& raw, const CounterOptions& opts, CounterStats* stats) {
  CounterStats st;
  Series out;
  if (raw.size() == 0) return out;
  double prev = raw.v[0], prev_t = raw.t[0], cum = 0;
  out.t.push_back(prev_t);
  out.v.push_back(0);
  for (size_t i = 1; i < raw.size(); ++i) {
    double cur = raw.v[i];
    bool has_next = i + 1 < raw.size();
    double next = has_next ? raw.v[i + 1] : 0;
    if (cur >= prev) {
      // Torn read that came out too large: the next sample continues from `prev`.
      if (has_next && next >= prev && next < cur) {
        ++st.torn_reads;
        continue;
      }
      cum += (cur - prev) / 1e6;
    } else {
      // A dip followed by a sample on the old trajectory is a torn read, not a reset.
      if (has_next && next >= prev) {
        ++st.torn_reads;
        continue;
      }
      double dt = std::max(raw.t[i] - prev_t, 1e-9);
      bool wrapped = false;
      for (double range : opts.wrap_ranges_uj) {
        if (prev < range) {
          double d = range - prev + cur;
          if (d / 1e6 / dt <= opts.max_plausible_watts) {
            cum += d / 1e6;
            ++st.wraps;
            wrapped = true;
            break;
          }
        }
      }
      if (!wrapped) {
        cum += cur / 1e6;
        ++st.resets;
      }
    }
    prev = cur;
    prev_t = raw.t[i];
    out.t.push_back(raw.t[i]);
    out.v.push_back(cum);
  }
  if (stats) *stats = st;
  return out;
}

std::optional<double> interpolate(const Series& s, double t) {
  if (s.size() == 0 || t < s.t.front() || t > s.t.back()) return std::nullopt;
  auto it = std::lower_bound(s.t.begin(), s.t.end(), t);
  size_t i = static_cast<size_t>(it - s.t.begin());
  if (s.t[i] == t) return s.v[i];
  double t0 = s.t[i - 1], t1 = s.t[i];
  double f = (t - t0) / (t1 - t0);
  return s.v[i - 1] + f * (s.v[i] - s.v[i - 1]);
}

double integrate(const Series& w, double a, double b, double* covered) {
  if (covered) *covered = 0;
  if (w.size() < 2) return 0;
  a = std::max(a, w.t.front());
  b = std::min(b, w.t.back());
  if (b <= a) return 0;
  if (covered) *covered = b - a;
  double prev_t = a, prev_v = *interpolate(w, a), sum = 0;
  auto it = std::upper_bound(w.t.begin(), w.t.end(), a);
  for (size_t i = static_cast<size_t>(it - w.t.begin()); i < w.size() && w.t[i] < b; ++i) {
    sum += 0.5 * (prev_v + w.v[i]) * (w.t[i] - prev_t);
    prev_t = w.t[i];
    prev_v = w.v[i];
  }
  sum += 0.5 * (prev_v + *interpolate(w, b)) * (b - prev_t);
  return sum;
}

double difference(const Series& j, double a, double b, double* covered) {
  if (covered) *covered = 0;
  if (j.size() < 2) return 0;
  a = std::max(a, j.t.front());
  b = std::min(b, j.t.back());
  if (b <= a) return 0;
  if (covered) *covered = b - a;
  return *interpolate(j, b) - *interpolate(j, a);
}

Series power_from_joules(const Series& j) {
  Series p;
  for (size_t i = 1; i < j.size(); ++i) {
    double dt = j.t[i] - j.t[i - 1];
    if (dt <= 0) continue;
    p.t.push_back(0.5 * (j.t[i] + j.t[i - 1]));
    p.v.push_back((j.v[i] - j.v[i - 1]) / dt);
  }
  return p;
}

Series VmSeries::power() const { return watts.size() >= 2 ? watts : power_from_joules(joules); }

bool VmSeries::in_gap(double t) const {
  for (const auto& g : gaps)
    if (t > g.from && t < g.to) return true;
  return false;
}

// ---------------------------------------------------------------- exporter kinds

const std::vector<KindSpec>& kind_specs() {
  using config::ExporterKind;
  // One entry per kind; docs/energy.md "Exporter kinds" explains each choice.
  static const std::vector<KindSpec> kinds = {
      {.kind = ExporterKind::scaphandre,
       .name = "scaphandre",
       .energy_metrics = {kEnergyMetric},
       .energy_to_uj = 1,
       .power_metrics = {kPowerMetric},
       .power_to_w = 1e-6,
       // value_source alternatives measure the same thing: follow one.
       .sum_series = false,
       .vm_label = "",
       .select = {},
       .keep = {"scaph_host_", "scaph_socket_", "scaph_domain_", "scaph_self_"},
       // "microwats": the typo some exporters ship (docs/exporters.md §1).
       .keep_if = {{"scaph_process_power_consumption_microwat", "vmname"}},
       .scope = "per VM (one exporter per VM; its host metrics are the VM)"},
      {.kind = ExporterKind::node_exporter,
       .name = "node_exporter",
       // Package (cores + uncore) and DRAM, every socket: the RAPL domains that do not overlap.
       // core/uncore are inside package, psys includes package: kept in samples.csv, not summed.
       .energy_metrics = {"node_rapl_package_joules_total", "node_rapl_dram_joules_total"},
       .energy_to_uj = 1e6,
       .power_metrics = {},
       .power_to_w = 1,
       .sum_series = true,
       .vm_label = "",
       .select = {},
       .keep = {"node_rapl_"},
       .keep_if = {},
       .scope = "whole host (the RAPL counters the exporter reads)"},
      {.kind = ExporterKind::kepler,
       .name = "kepler",
       .energy_metrics = {"kepler_vm_cpu_joules_total"},
       .energy_to_uj = 1e6,
       .power_metrics = {"kepler_vm_cpu_watts"},
       .power_to_w = 1,
       .sum_series = true,
       .vm_label = "vm_name",
       // Same non-overlapping domains as node_exporter (Kepler aggregates sockets per zone).
       .select = {{"zone", {"package", "dram"}}},
       .keep = {"kepler_vm_"},
       .keep_if = {},
       .scope = "per VM (one Kepler on the host; the VM's series by vm_name)"},
  };
  return kinds;
}

const KindSpec& kind_spec(config::ExporterKind k) {
  for (const auto& s : kind_specs())
    if (s.kind == k) return s;
  return kind_specs().front();
}

const KindSpec* kind_of_metric(std::string_view metric) {
  for (const auto& s : kind_specs()) {
    for (auto m : s.energy_metrics)
      if (m == metric) return &s;
    for (auto m : s.power_metrics)
      if (m == metric) return &s;
  }
  return nullptr;
}

std::string wanted_metrics(const KindSpec& k, std::string_view vm) {
  std::string filter;
  if (!k.vm_label.empty() && !vm.empty())
    filter += std::string(k.vm_label) + "=\"" + std::string(vm) + "\"";
  for (const auto& f : k.select) {
    if (!filter.empty()) filter += ",";
    filter += std::string(f.label) + "=";
    for (size_t i = 0; i < f.values.size(); ++i)
      filter += (i ? "|" : "") + std::string(f.values[i]);
  }
  std::string s;
  for (const auto* list : {&k.power_metrics, &k.energy_metrics})
    for (auto m : *list) {
      if (!s.empty()) s += " or ";
      s += m;
      if (!filter.empty()) s += "{" + filter + "}";
    }
  return s;
}

// ---------------------------------------------------------------- scrapes and gaps

double ScrapeRecord::gap_seconds() const {
  double s = 0;
  for (const auto& g : gaps) s += g.seconds();
  return s;
}

std::vector<ScrapeRecord> scrape_records(const std::vector<SampleRow>& rows) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<const SampleRow*>> by_vm;
  for (const auto& r : rows) {
    if (r.metric != kUpMetric) continue;
    auto [it, inserted] = by_vm.try_emplace(r.vm);
    if (inserted) order.push_back(r.vm);
    it->second.push_back(&r);
  }
  std::vector<ScrapeRecord> out;
  std::vector<std::pair<std::string, std::string>> labels;
  for (const auto& vm : order) {
    auto& ups = by_vm[vm];
    std::stable_sort(ups.begin(), ups.end(),
                     [](const SampleRow* a, const SampleRow* b) { return a->t < b->t; });
    ScrapeRecord rec;
    rec.vm = vm;
    rec.target = ups.front()->target;
    rec.first = ups.front()->t;
    rec.last = ups.back()->t;
    double last_ok = NAN;
    std::optional<Gap> open;
    for (const SampleRow* r : ups) {
      ++rec.scrapes;
      if (r->value >= 0.5) {
        ++rec.with_data;
        if (open) {
          open->to = r->t;
          rec.gaps.push_back(std::move(*open));
          open.reset();
        }
        last_ok = r->t;
        continue;
      }
      if (!open) {
        open.emplace();
        // Data stops after the last good scrape; from the very start, at the first failure.
        open->from = std::isnan(last_ok) ? r->t : last_ok;
      }
      ++open->failed;
      labels.clear();
      if (prom::parse_label_set(r->labels, labels))
        for (const auto& [k, v] : labels)
          if (k == "error") open->last_error = v;
    }
    if (open) {
      open->to = rec.last;
      open->open_end = true;
      rec.gaps.push_back(std::move(*open));
    }
    out.push_back(std::move(rec));
  }
  return out;
}

// ---------------------------------------------------------------- combining series

Series sum_series(const std::vector<Series>& parts) {
  std::vector<const Series*> use;
  for (const auto& p : parts)
    if (p.size()) use.push_back(&p);
  if (use.empty()) return {};
  if (use.size() == 1) return *use[0];
  // Gauges: a sum is only known where every part is.
  double lo = -INFINITY, hi = INFINITY;
  for (const auto* p : use) {
    lo = std::max(lo, p->t.front());
    hi = std::min(hi, p->t.back());
  }
  std::vector<double> ts;
  for (const auto* p : use)
    for (double t : p->t)
      if (t >= lo && t <= hi) ts.push_back(t);
  std::sort(ts.begin(), ts.end());
  ts.erase(std::unique(ts.begin(), ts.end()), ts.end());
  Series out;
  for (double t : ts) {
    double sum = 0;
    for (const auto* p : use) sum += *interpolate(*p, t);
    out.t.push_back(t);
    out.v.push_back(sum);
  }
  return out;
}

namespace {

// Cumulative-joules series summed: a part contributes nothing before its first sample and holds
// its last value after its last one (the energy it counted does not go away when a series ends,
// e.g. a Kepler VM series that changes `state`).
Series sum_cumulative(const std::vector<Series>& parts) {
  std::vector<const Series*> use;
  for (const auto& p : parts)
    if (p.size()) use.push_back(&p);
  if (use.empty()) return {};
  if (use.size() == 1) return *use[0];
  std::vector<double> ts;
  for (const auto* p : use) ts.insert(ts.end(), p->t.begin(), p->t.end());
  std::sort(ts.begin(), ts.end());
  ts.erase(std::unique(ts.begin(), ts.end()), ts.end());
  Series out;
  for (double t : ts) {
    double sum = 0;
    for (const auto* p : use) {
      if (t < p->t.front()) continue;
      sum += t > p->t.back() ? p->v.back() : *interpolate(*p, t);
    }
    out.t.push_back(t);
    out.v.push_back(sum);
  }
  return out;
}

}  // namespace

std::vector<VmSeries> build_series(const std::vector<SampleRow>& rows, const SpikeRule& rule,
                                   const CounterOptions& opts) {
  // Per VM: its kind (the first whose metric appears), then its series keyed by metric + labels.
  struct Raw {
    const KindSpec* kind = nullptr;
    std::vector<std::string> keys;                          // first-seen order
    std::map<std::string, std::pair<bool, Series>> series;  // key -> (is_energy, raw values)
    std::string first_energy_metric, first_power_metric;    // for sum_series = false
  };
  std::vector<std::string> order;
  std::map<std::string, Raw> by_vm;
  std::vector<std::pair<std::string, std::string>> labels;
  for (const auto& r : rows) {
    const KindSpec* k = kind_of_metric(r.metric);
    if (!k) continue;
    auto [it, inserted] = by_vm.try_emplace(r.vm);
    if (inserted) order.push_back(r.vm);
    Raw& raw = it->second;
    if (!raw.kind) raw.kind = k;
    if (raw.kind != k) continue;  // one kind per VM
    labels.clear();
    if (!r.labels.empty() && !prom::parse_label_set(r.labels, labels)) continue;
    auto label = [&](std::string_view name) -> std::optional<std::string_view> {
      for (const auto& [n, v] : labels)
        if (n == name) return std::string_view(v);
      return std::nullopt;
    };
    bool is_energy = false;
    if (!selects(*k, r.metric, r.vm, label, &is_energy)) continue;
    std::string key = r.metric + r.labels;
    auto [sit, fresh] = raw.series.try_emplace(key);
    if (fresh) {
      // Several label sets of one quantity (value_source): follow the first one seen.
      std::string& first = is_energy ? raw.first_energy_metric : raw.first_power_metric;
      if (!k->sum_series && !first.empty()) {
        raw.series.erase(sit);
        continue;
      }
      if (first.empty()) first = key;
      raw.keys.push_back(key);
      sit->second.first = is_energy;
    }
    Series& s = sit->second.second;
    if (!std::isfinite(r.value)) continue;
    if (s.size() && r.t <= s.t.back()) continue;  // scrapes are in time order per target
    s.t.push_back(r.t);
    s.v.push_back(r.value);
  }
  auto records = scrape_records(rows);
  std::vector<VmSeries> out;
  for (const auto& vm : order) {
    Raw& raw = by_vm[vm];
    VmSeries v;
    v.vm = vm;
    v.kind = std::string(raw.kind->name);
    std::vector<Series> watts, joules;
    for (const auto& key : raw.keys) {
      auto& [is_energy, s] = raw.series[key];
      if (is_energy) {
        Series uj = s;
        for (double& x : uj.v) x *= raw.kind->energy_to_uj;
        CounterStats st;
        joules.push_back(counter_to_joules(uj, opts, &st));
        v.counter.resets += st.resets;
        v.counter.wraps += st.wraps;
        v.counter.torn_reads += st.torn_reads;
      } else {
        Series w = s;
        for (double& x : w.v) x *= raw.kind->power_to_w;
        v.spikes_rejected += reject_spikes(w, rule);
        watts.push_back(std::move(w));
      }
    }
    v.watts = sum_series(watts);
    v.joules = sum_cumulative(joules);
    for (const auto& rec : records)
      if (rec.vm == vm) v.gaps = rec.gaps;
    out.push_back(std::move(v));
  }
  return out;
}

// ---------------------------------------------------------------- attribution

std::vector<EnergyRow> attribute(const std::vector<VmSeries>& vms,
                                 const std::vector<record::PhaseInterval>& phases) {
  std::vector<record::PhaseInterval> all = phases;
  std::map<int, record::PhaseInterval> totals;
  for (const auto& p : phases) {
    if (p.repeat < 0) continue;
    auto [it, inserted] = totals.try_emplace(p.repeat, p);
    auto& t = it->second;
    if (inserted) {
      t.phase = "total";
      t.node = "";
    }
    t.start = std::min(t.start, p.start);
    t.end = std::max(t.end, p.end);
  }
  if (totals.empty()) {
    record::PhaseInterval t;
    t.phase = "total";
    t.start = INFINITY;
    t.end = -INFINITY;
    for (const auto& p : phases) {
      t.start = std::min(t.start, p.start);
      t.end = std::max(t.end, p.end);
    }
    if (phases.empty()) {
      for (const auto& v : vms) {
        for (const Series* s : {&v.watts, &v.joules}) {
          if (s->size()) {
            t.start = std::min(t.start, s->t.front());
            t.end = std::max(t.end, s->t.back());
          }
        }
      }
    }
    if (t.end > t.start) totals.emplace(-1, t);
  }
  for (auto& [r, t] : totals) all.push_back(t);

  std::vector<EnergyRow> rows;
  for (const auto& p : all) {
    if (!(p.end > p.start)) continue;
    for (const auto& v : vms) {
      EnergyRow row;
      row.app = p.app;
      row.phase = p.phase;
      row.node = p.node;
      row.vm = v.vm;
      row.repeat = p.repeat;
      row.start = p.start;
      row.end = p.end;
      double cov_p = 0, cov_c = 0;
      if (v.watts.size() >= 2) row.joules_power = integrate(v.watts, p.start, p.end, &cov_p);
      if (v.joules.size() >= 2) row.joules_counter = difference(v.joules, p.start, p.end, &cov_c);
      if (cov_p <= 0) row.joules_power = NAN;
      if (cov_c <= 0) row.joules_counter = NAN;
      double cov = std::max(cov_p, cov_c);
      if (cov <= 0) continue;
      // The counter is exact between scrapes; prefer it unless it covers less of the interval.
      if (!std::isnan(row.joules_counter) && cov_c + 1e-9 >= cov_p) {
        row.joules = row.joules_counter;
        row.source = "counter";
      } else {
        row.joules = row.joules_power;
        row.source = "power";
      }
      row.coverage = cov / (p.end - p.start);
      const Series& s = row.source == "counter" ? v.joules : v.watts;
      row.samples = static_cast<size_t>(std::upper_bound(s.t.begin(), s.t.end(), p.end) -
                                        std::lower_bound(s.t.begin(), s.t.end(), p.start));
      rows.push_back(std::move(row));
    }
  }
  return rows;
}

namespace {
constexpr const char* kEnergyHeader =
    "app,repeat,phase,node,vm,start_s,end_s,seconds,joules,mean_watts,source,joules_power,"
    "joules_counter,coverage,samples";
}

std::string energy_csv(const std::vector<EnergyRow>& rows) {
  std::string s = std::string(kEnergyHeader) + "\n";
  for (const auto& r : rows) {
    s += util::csv_field(r.app) + "," + std::to_string(r.repeat) + "," + util::csv_field(r.phase) +
         "," + util::csv_field(r.node) + "," + util::csv_field(r.vm) + "," +
         // start/end to the µs of events.jsonl: which phases coincide must be decidable from
         // this file alone (tests/support/plot_data.h recomputes the bars from it).
         util::format_fixed(r.start, 6) + "," + util::format_fixed(r.end, 6) + "," +
         util::format_fixed(r.end - r.start, 3) + "," + util::format_fixed(r.joules, 3) + "," +
         util::format_fixed(r.mean_watts(), 3) + "," + r.source + "," +
         util::format_fixed(r.joules_power, 3) + "," + util::format_fixed(r.joules_counter, 3) +
         "," + util::format_fixed(r.coverage, 4) + "," + std::to_string(r.samples) + "\n";
  }
  return s;
}

Expected<std::vector<EnergyRow>> read_energy_csv(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return make_error(file.string() + ": cannot open");
  std::vector<EnergyRow> rows;
  std::string line;
  std::vector<std::string> f;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (n == 1) {
      if (line != kEnergyHeader) return make_error(file.string() + ":1: unexpected header");
      continue;
    }
    if (line.empty()) continue;
    EnergyRow r;
    double seconds = 0, mean = 0, samples = 0;
    if (!util::csv_split(line, f) || f.size() != 15 || !parse_double(f[5], r.start) ||
        !parse_double(f[6], r.end) || !parse_double(f[7], seconds) ||
        !parse_double(f[8], r.joules) || !parse_double(f[9], mean) ||
        !parse_double(f[11], r.joules_power) || !parse_double(f[12], r.joules_counter) ||
        !parse_double(f[13], r.coverage) || !parse_double(f[14], samples)) {
      return make_error(file.string() + ":" + std::to_string(n) + ": malformed energy row");
    }
    r.app = f[0];
    r.repeat = std::atoi(f[1].c_str());
    r.phase = f[2];
    r.node = f[3];
    r.vm = f[4];
    r.source = f[10];
    r.samples = static_cast<size_t>(samples);
    rows.push_back(std::move(r));
  }
  return rows;
}

}  // namespace continuum::energy

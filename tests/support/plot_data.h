#pragma once
// Checks the numbers behind a run's plots (<run>/plots/data/*.dat, columns in
// src/report/include/continuum/report/plots.h and docs/energy.md "Plot data files") against the
// run's own records, recomputed here without src/report:
//
//   energy bars      energy_total.dat / energy_phase.dat: per (phase, VM) the mean, min, max and
//                    count of the per-repeat joules in energy/energy.csv (rows with coverage
//                    >= 0.5, repeats >= 0 when the run has repeats, a phase spanning its repeat
//                    to within 1 ms being the same bar as "total")
//   power timeline   power_timeline.dat: at every offset t, per VM, the mean over repeats of the
//                    Scaphandre power gauge in energy/samples.csv (W, torn-read spikes dropped by
//                    the rule of docs/energy.md), linearly interpolated at repeat start + t, over
//                    the repeats that have data there: inside the repeat's span (events.jsonl),
//                    inside the sampled range, and not between two samples with a failed scrape
//                    (`up` 0) in between; NaN and n = 0 where no repeat has data.
//
// For any run directory, e.g. an e2e test after `continuum CONFIG`:
//
//   auto check = continuum::test_support::check_plot_data(run_dir);
//   EXPECT_TRUE(check.ok()) << check.report();
//   EXPECT_GT(check.bars_checked, 0u);
//
// Only readers of the run's files are shared with the code under test (energy::read_samples,
// energy::read_energy_csv, record::read_events/phase_intervals); the arithmetic is this file's.
// VMs without a Scaphandre gauge (node_exporter, Kepler without watts) are listed in `unchecked`.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "continuum/energy/energy.h"
#include "continuum/record/events.h"

namespace continuum::test_support {

struct PlotDataCheck {
  std::vector<std::string> failures;
  std::vector<std::string> unchecked;  ///< what could not be checked, and why
  size_t bars_checked = 0;             ///< (phase, VM) bars compared
  size_t timeline_points_checked = 0;  ///< (offset, VM) points compared
  bool ok() const { return failures.empty(); }
  std::string report() const {
    std::string s;
    for (size_t i = 0; i < failures.size() && i < 20; ++i) s += failures[i] + "\n";
    if (failures.size() > 20) s += "... " + std::to_string(failures.size() - 20) + " more\n";
    return s;
  }
};

namespace plot_data_detail {

namespace fs = std::filesystem;

// A .dat file: the header's quoted names and each data row's fields ("..." or a number).
struct DatFile {
  std::vector<std::string> header;  // tokens after '#'
  std::vector<std::vector<std::string>> rows;
};

inline std::vector<std::string> tokens(const std::string& line) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    if (line[i] == ' ' || line[i] == '\t') {
      ++i;
      continue;
    }
    if (line[i] == '"') {
      size_t j = line.find('"', i + 1);
      if (j == std::string::npos) j = line.size();
      out.push_back(line.substr(i + 1, j - i - 1));
      i = j + 1;
    } else {
      size_t j = line.find_first_of(" \t", i);
      if (j == std::string::npos) j = line.size();
      out.push_back(line.substr(i, j - i));
      i = j;
    }
  }
  return out;
}

inline std::optional<DatFile> read_dat(const fs::path& p) {
  std::ifstream in(p);
  if (!in) return std::nullopt;
  DatFile d;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line[0] == '#') {
      if (d.header.empty()) d.header = tokens(line.substr(1));
      continue;
    }
    d.rows.push_back(tokens(line));
  }
  return d;
}

inline double to_num(const std::string& s) {
  if (s == "NaN" || s == "nan") return NAN;
  try {
    return std::stod(s);
  } catch (...) {
    return NAN;
  }
}

inline bool close(double got, double want, double abs_tol, double rel_tol) {
  if (std::isnan(got) || std::isnan(want)) return std::isnan(got) && std::isnan(want);
  return std::abs(got - want) <= abs_tol + rel_tol * std::abs(want);
}

inline std::string fmt(double v) {
  std::ostringstream o;
  o.precision(10);
  o << v;
  return o.str();
}

struct Stat {
  double mean = 0, min = INFINITY, max = -INFINITY;
  int n = 0;
  std::vector<double> values;
};

// Per (phase, VM), the per-repeat joules the bars must show.
inline std::map<std::pair<std::string, std::string>, Stat> bar_values(
    const std::vector<energy::EnergyRow>& rows) {
  bool repeats = false;
  std::map<int, std::pair<double, double>> total_span;
  for (const auto& r : rows) {
    if (r.repeat >= 0) repeats = true;
    if (r.phase == "total") total_span[r.repeat] = {r.start, r.end};
  }
  std::map<std::pair<std::string, std::string>, Stat> out;
  for (const auto& r : rows) {
    if (r.coverage < 0.5) continue;
    if (repeats && r.repeat < 0) continue;
    if (r.phase != "total") {
      auto t = total_span.find(r.repeat);
      if (t != total_span.end() && std::abs(t->second.first - r.start) < 1e-3 &&
          std::abs(t->second.second - r.end) < 1e-3)
        continue;
    }
    out[{r.phase, r.vm}].values.push_back(r.joules);
  }
  for (auto& [k, s] : out) {
    double sum = 0;
    for (double v : s.values) {
      sum += v;
      s.min = std::min(s.min, v);
      s.max = std::max(s.max, v);
    }
    s.n = static_cast<int>(s.values.size());
    s.mean = sum / s.n;
  }
  return out;
}

inline void compare_bar(PlotDataCheck& c, const std::string& where, const Stat* want, double mean,
                        double min, double max, double n) {
  // energy.csv has joules to 3 decimals, the .dat 12 significant digits of the unrounded values.
  auto ok = [](double got, double w) { return close(got, w, 1.5e-3, 1e-8); };
  if (!want) {
    if (!std::isnan(mean))
      c.failures.push_back(where + ": a bar (" + fmt(mean) +
                           " J) with no qualifying rows in energy.csv");
    return;
  }
  ++c.bars_checked;
  if (!ok(mean, want->mean) || !ok(min, want->min) || !ok(max, want->max) || n != want->n)
    c.failures.push_back(where + ": .dat mean/min/max/n " + fmt(mean) + "/" + fmt(min) + "/" +
                         fmt(max) + "/" + fmt(n) + ", energy.csv gives " + fmt(want->mean) + "/" +
                         fmt(want->min) + "/" + fmt(want->max) + "/" + std::to_string(want->n));
}

// A VM's power gauge in W (first label set seen), spikes dropped, and its failed scrape times.
struct VmPower {
  std::vector<double> t, w;
  std::vector<double> failed;  // t of `up` 0 rows
};

inline void drop_spikes(VmPower& p) {
  // docs/energy.md "Torn reads, gauge": interior i dropped if P[i] > 5 max(nb) and by > 20 W.
  if (p.t.size() < 3) return;
  std::vector<bool> drop(p.t.size(), false);
  for (size_t i = 1; i + 1 < p.t.size(); ++i) {
    double nb = std::max(p.w[i - 1], p.w[i + 1]);
    drop[i] = p.w[i] > 5 * std::max(nb, 0.0) && p.w[i] - nb > 20;
  }
  VmPower out;
  out.failed = p.failed;
  for (size_t i = 0; i < p.t.size(); ++i)
    if (!drop[i]) {
      out.t.push_back(p.t[i]);
      out.w.push_back(p.w[i]);
    }
  p = std::move(out);
}

// Power at x, or nullopt outside the samples or across a failed scrape.
inline std::optional<double> power_at(const VmPower& p, double x) {
  if (p.t.empty() || x < p.t.front() || x > p.t.back()) return std::nullopt;
  size_t i = static_cast<size_t>(std::lower_bound(p.t.begin(), p.t.end(), x) - p.t.begin());
  if (p.t[i] == x) return p.w[i];
  double a = p.t[i - 1], b = p.t[i];
  for (double f : p.failed)
    if (f > a && f < b) return std::nullopt;
  return p.w[i - 1] + (x - a) / (b - a) * (p.w[i] - p.w[i - 1]);
}

}  // namespace plot_data_detail

/// energy_total.dat and energy_phase.dat against energy/energy.csv.
inline PlotDataCheck check_energy_bars(const std::filesystem::path& run_dir) {
  using namespace plot_data_detail;
  PlotDataCheck c;
  auto rows = energy::read_energy_csv(run_dir / "energy" / "energy.csv");
  if (!rows.ok()) {
    c.failures.push_back(rows.error().message);
    return c;
  }
  auto want = bar_values(*rows);
  auto find = [&](const std::string& phase, const std::string& vm) -> const Stat* {
    auto it = want.find({phase, vm});
    return it == want.end() ? nullptr : &it->second;
  };
  std::set<std::pair<std::string, std::string>> seen;
  auto total = read_dat(run_dir / "plots" / "data" / "energy_total.dat");
  if (!total) {
    c.failures.push_back("plots/data/energy_total.dat missing");
  } else {
    for (const auto& r : total->rows) {
      if (r.size() < 5) {
        c.failures.push_back("energy_total.dat: short row");
        continue;
      }
      seen.insert({"total", r[0]});
      compare_bar(c, "energy_total.dat " + r[0], find("total", r[0]), to_num(r[1]), to_num(r[2]),
                  to_num(r[3]), to_num(r[4]));
    }
  }
  auto phase = read_dat(run_dir / "plots" / "data" / "energy_phase.dat");
  if (!phase) {
    c.failures.push_back("plots/data/energy_phase.dat missing");
  } else {
    // Header: phase, then per VM "<vm> mean" min max n.
    std::vector<std::string> vms;
    for (const auto& h : phase->header)
      if (h.size() > 5 && h.ends_with(" mean")) vms.push_back(h.substr(0, h.size() - 5));
    for (const auto& r : phase->rows) {
      if (r.size() != 1 + 4 * vms.size()) {
        c.failures.push_back("energy_phase.dat: row of " + std::to_string(r.size()) +
                             " fields for " + std::to_string(vms.size()) + " VMs");
        continue;
      }
      for (size_t v = 0; v < vms.size(); ++v) {
        seen.insert({r[0], vms[v]});
        compare_bar(c, "energy_phase.dat " + r[0] + " " + vms[v], find(r[0], vms[v]),
                    to_num(r[1 + 4 * v]), to_num(r[2 + 4 * v]), to_num(r[3 + 4 * v]),
                    to_num(r[4 + 4 * v]));
      }
    }
  }
  // Every bar energy.csv calls for is drawn.
  if (total && phase)
    for (const auto& [key, s] : want)
      if (!seen.count(key))
        c.failures.push_back("no bar for " + key.second + " in phase " + key.first + " (" +
                             std::to_string(s.n) + " repeat(s) in energy.csv)");
  return c;
}

/// power_timeline.dat against energy/samples.csv and events.jsonl.
inline PlotDataCheck check_power_timeline(const std::filesystem::path& run_dir) {
  using namespace plot_data_detail;
  PlotDataCheck c;
  auto samples = energy::read_samples(run_dir / "energy" / "samples.csv");
  if (!samples.ok()) {
    c.failures.push_back(samples.error().message);
    return c;
  }
  std::map<std::string, VmPower> power;
  std::map<std::string, std::string> first_labels;
  for (const auto& r : *samples) {
    if (r.metric == energy::kUpMetric && r.value < 0.5) power[r.vm].failed.push_back(r.t);
    if (r.metric != energy::kPowerMetric || !std::isfinite(r.value)) continue;
    auto [it, fresh] = first_labels.try_emplace(r.vm, r.labels);
    if (!fresh && it->second != r.labels) continue;
    auto& p = power[r.vm];
    if (!p.t.empty() && r.t <= p.t.back()) continue;
    p.t.push_back(r.t);
    p.w.push_back(r.value / 1e6);
  }
  for (auto& [vm, p] : power) drop_spikes(p);

  // Repeat spans: from the earliest phase start to the latest end of each repeat.
  std::map<int, std::pair<double, double>> spans;
  auto events = record::read_events(run_dir / "events.jsonl");
  if (events.ok())
    for (const auto& ph : record::phase_intervals(*events)) {
      if (ph.repeat < 0) continue;
      auto [it, fresh] = spans.try_emplace(ph.repeat, ph.start, ph.end);
      if (!fresh) {
        it->second.first = std::min(it->second.first, ph.start);
        it->second.second = std::max(it->second.second, ph.end);
      }
    }
  if (spans.empty()) {
    double a = INFINITY, b = -INFINITY;
    for (const auto& [vm, p] : power)
      if (!p.t.empty()) {
        a = std::min(a, p.t.front());
        b = std::max(b, p.t.back());
      }
    if (b > a) spans[0] = {a, b};
  }

  auto dat = read_dat(run_dir / "plots" / "data" / "power_timeline.dat");
  if (!dat) {
    c.failures.push_back("plots/data/power_timeline.dat missing");
    return c;
  }
  // Header: t_s, then per VM "<vm>" "<vm>:n".
  std::vector<std::string> vms;
  for (size_t i = 1; i + 1 < dat->header.size(); i += 2) vms.push_back(dat->header[i]);
  for (size_t v = 0; v < vms.size(); ++v) {
    const auto it = power.find(vms[v]);
    if (it == power.end() || it->second.t.size() < 2) {
      c.unchecked.push_back(vms[v] + ": no " + std::string(energy::kPowerMetric) +
                            " gauge in samples.csv");
      continue;
    }
    const VmPower& p = it->second;
    for (const auto& row : dat->rows) {
      if (row.size() != 1 + 2 * vms.size()) {
        c.failures.push_back("power_timeline.dat: row of " + std::to_string(row.size()) +
                             " fields for " + std::to_string(vms.size()) + " VMs");
        return c;
      }
      double t = to_num(row[0]);
      double sum = 0;
      int n = 0;
      for (const auto& [r, span] : spans) {
        double x = span.first + t;
        if (x > span.second + 1e-9) continue;
        if (auto w = power_at(p, x)) {
          sum += *w;
          ++n;
        }
      }
      double want = n ? sum / n : NAN;
      double got = to_num(row[1 + 2 * v]);
      double got_n = to_num(row[2 + 2 * v]);
      ++c.timeline_points_checked;
      // The .dat has 12 digits of the offset and of the watts.
      if (!close(got, want, 1e-6, 1e-6) || got_n != n)
        c.failures.push_back("power_timeline.dat t=" + row[0] + " " + vms[v] + ": " + fmt(got) +
                             " W over " + fmt(got_n) + " repeat(s), samples.csv gives " +
                             fmt(want) + " W over " + std::to_string(n));
    }
  }
  return c;
}

/// Both checks, merged.
inline PlotDataCheck check_plot_data(const std::filesystem::path& run_dir) {
  PlotDataCheck c = check_energy_bars(run_dir);
  PlotDataCheck t = check_power_timeline(run_dir);
  c.failures.insert(c.failures.end(), t.failures.begin(), t.failures.end());
  c.unchecked.insert(c.unchecked.end(), t.unchecked.begin(), t.unchecked.end());
  c.timeline_points_checked = t.timeline_points_checked;
  return c;
}

}  // namespace continuum::test_support

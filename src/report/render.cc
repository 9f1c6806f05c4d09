#include "continuum/report/render.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "continuum/benchmark/metrics.h"
#include "continuum/energy/energy.h"
#include "continuum/record/events.h"
#include "continuum/report/plots.h"
#include "continuum/util/files.h"
#include "continuum/util/strings.h"

namespace continuum::report {
namespace {

namespace fs = std::filesystem;

std::string fixed(double v, int prec) { return util::format_fixed(v, prec, "-"); }

std::string app_name(const std::vector<record::PhaseInterval>& phases, const fs::path& run_dir) {
  for (const auto& p : phases)
    if (p.phase == "benchmark" && !p.app.empty()) return p.app;
  for (const auto& p : phases)
    if (p.repeat >= 0 && p.phase == "application" && !p.app.empty()) return p.app;
  for (const auto& p : phases)
    if (p.repeat >= 0 && !p.app.empty()) return p.app;
  // runs/<timestamp>_<config name>
  std::string d = run_dir.filename().string();
  if (d.empty()) d = run_dir.parent_path().filename().string();
  auto us = d.find('_');
  return us == std::string::npos ? d : d.substr(us + 1);
}

std::string pct(double share) { return util::format_fixed(100 * share, 0) + " %"; }

// The exporters' outages, from the `up` rows of samples.csv: a VM whose line or bars rest on
// fewer repeats must say why, here and not only as a count in a table.
std::string gaps_section(const std::vector<energy::ScrapeRecord>& recs) {
  if (recs.empty()) return "";
  std::string md = "\n### Exporter gaps\n\n";
  md +=
      "Per VM, the scrapes of its exporter (`up` rows of `energy/samples.csv`: 1 when a scrape "
      "gave the VM's energy data). Times are seconds since the run start; a gap runs from the "
      "last scrape with data to the next one. Whether the run passed is `[energy] min_coverage`'s "
      "verdict (exit code 1 below it).\n\n";
  md += "| VM | exporter | scrapes with data | gaps | without data (s) | share of window |\n";
  md += "|---|---|---:|---:|---:|---:|\n";
  bool any = false;
  for (const auto& r : recs) {
    double share = r.window() > 0 ? r.gap_seconds() / r.window() : (r.with_data ? 0.0 : 1.0);
    md += "| " + r.vm + " | " + r.target + " | " + std::to_string(r.with_data) + " of " +
          std::to_string(r.scrapes) + " | " + std::to_string(r.gaps.size()) + " | " +
          fixed(r.gap_seconds(), 1) + " | " + pct(share) + " |\n";
    any |= !r.gaps.empty();
  }
  if (!any) return md + "\nEvery exporter gave data at every scrape.\n";
  md += "\n";
  for (const auto& r : recs) {
    for (const auto& g : r.gaps) {
      double share = r.window() > 0 ? g.seconds() / r.window() : 1.0;
      md += "- **" + r.vm + "**: no data from " + fixed(g.from, 1) + " s to " + fixed(g.to, 1) +
            " s (" + fixed(g.seconds(), 1) + " s, " + pct(share) + " of its " +
            fixed(r.window(), 1) + " s scrape window; " + std::to_string(g.failed) +
            " scrape(s) without data" + (g.open_end ? ", never came back" : "") +
            "); last error: " + (g.last_error.empty() ? "(none recorded)" : g.last_error) + "\n";
    }
  }
  return md;
}

}  // namespace

std::vector<double> read_latencies(const fs::path& run_dir) {
  std::vector<double> out;
  std::error_code ec;
  auto dir = run_dir / "benchmark";
  if (!fs::is_directory(dir, ec)) return out;
  std::vector<fs::path> files;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    auto name = it->path().filename().string();
    if (it->is_regular_file() && name.ends_with(".log") &&
        name.find("endpoint") != std::string::npos)
      files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    auto text = util::read_file(f);
    if (!text) continue;
    auto log = benchmark::parse_endpoint_log(*text);
    out.insert(out.end(), log.latency_ms.begin(), log.latency_ms.end());
  }
  return out;
}

Expected<RenderResult> render(const fs::path& run_dir, const RenderOptions& opts) {
  RenderResult res;
  std::error_code ec;
  std::vector<record::PhaseInterval> phases;
  std::string experiment;
  auto events_file = run_dir / "events.jsonl";
  if (fs::exists(events_file, ec)) {
    auto events = TRY(record::read_events(events_file));
    phases = record::phase_intervals(events);
    for (const auto& e : events)
      if (!e.experiment.empty()) {
        experiment = e.experiment;
        break;
      }
  } else {
    res.warnings.push_back(events_file.string() + " missing: energy is not split into phases");
  }
  // The plots' titles name the experiment (what a reader compares), and the application when
  // there is one; a run with workloads only is not named after its first workload.
  std::string app = app_name(phases, run_dir);
  bool has_app = false;
  for (const auto& p : phases)
    if ((p.phase == "benchmark" || p.phase == "application") && !p.app.empty()) has_app = true;
  if (!experiment.empty())
    app = has_app && app != experiment ? experiment + ": " + app : experiment;
  auto plots_dir = run_dir / "plots";
  std::string md = "## Energy\n\n";

  auto samples_file = run_dir / "energy" / "samples.csv";
  std::vector<energy::EnergyRow> rows;
  if (fs::exists(samples_file, ec)) {
    auto samples = TRY(energy::read_samples(samples_file));
    auto vms = energy::build_series(samples);
    rows = energy::attribute(vms, phases);
    auto energy_file = run_dir / "energy" / "energy.csv";
    TRY_STATUS(util::write_file_atomic(energy_file, energy::energy_csv(rows)));
    res.files.push_back(energy_file);
    for (const auto& v : vms) {
      if (v.spikes_rejected || v.counter.torn_reads || v.counter.resets || v.counter.wraps)
        md += "- " + v.vm + ": " + std::to_string(v.spikes_rejected) +
              " power spike(s) rejected, counter: " + std::to_string(v.counter.torn_reads) +
              " torn read(s), " + std::to_string(v.counter.resets) + " reset(s), " +
              std::to_string(v.counter.wraps) + " wrap(s)\n";
    }
    std::string timeline_note;
    if (vms.empty()) {
      res.warnings.push_back(samples_file.string() + " has no power or energy samples");
    } else {
      auto tl = average_timeline(vms, phases);
      auto f = TRY(plot_power_timeline(tl, app, plots_dir));
      res.files.push_back(f.png);
      res.files.push_back(f.svg);
      if (!tl.complete() && tl.repeats > 1) {
        timeline_note = "\nThe power timeline's lines do not all average every repeat:\n";
        for (size_t v = 0; v < tl.vms.size(); ++v) timeline_note += "- " + tl.legend(v) + "\n";
      }
    }
    auto stats = energy_stats(rows);
    if (!stats.empty()) {
      auto f = TRY(plot_energy_bars(stats, app, plots_dir));
      res.files.push_back(f.png);
      res.files.push_back(f.svg);
      md +=
          "\n| VM | phase | mean (J) | min (J) | max (J) | repeats "
          "|\n|---|---|---:|---:|---:|---:|\n";
      for (const auto& s : stats)
        md += "| " + s.vm + " | " + s.phase + " | " + fixed(s.mean, 1) + " | " + fixed(s.min, 1) +
              " | " + fixed(s.max, 1) + " | " + std::to_string(s.n) + " |\n";
      md += "\nPer-repeat values: `energy/energy.csv`; raw samples: `energy/samples.csv`.\n";
    }
    md += timeline_note;
    md += gaps_section(energy::scrape_records(samples));
  } else if (opts.energy_enabled) {
    res.warnings.push_back(samples_file.string() + " missing: no energy figures");
    md += "No energy samples in this run.\n";
  } else {
    md += "Energy was not measured in this run ([energy] is off).\n";
  }

  auto lat = read_latencies(run_dir);
  if (!lat.empty()) {
    auto f = TRY(plot_latency(lat, app, plots_dir));
    res.files.push_back(f.png);
    res.files.push_back(f.svg);
  }
  bool any_plot = false;
  for (const auto& f : res.files)
    if (f.extension() == ".png") {
      if (!any_plot) md += "\n### Plots\n\n";
      any_plot = true;
      md += "![" + f.stem().string() + "](plots/" + f.filename().string() + ")\n";
    }
  res.summary_md = md;
  auto summary_file = run_dir / "energy" / "summary.md";
  TRY_STATUS(util::write_file_atomic(summary_file, md));
  res.files.push_back(summary_file);
  return res;
}

}  // namespace continuum::report

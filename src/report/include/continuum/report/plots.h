#pragma once
// The figures researchers publish from an energy run (docs/design.md §7), drawn by gnuplot
// (pngcairo and svg) from data files this module writes next to them in <run>/plots/data/:
//   power_timeline.{png,svg}  power per VM over time, averaged over repeats, phases shaded
//   energy_bars.{png,svg}     energy per VM (total) and per phase, mean with min–max over repeats
//   latency.{png,svg}         image_classification end-to-end latency distribution (if data)
// gnuplot runs through util::run_process (no shell); the .gp scripts stay in plots/data/ so a
// reader can tweak and re-run them by hand.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "continuum/energy/energy.h"
#include "continuum/record/events.h"
#include "continuum/util/expected.h"

namespace continuum::report {

struct PlotFiles {
  std::filesystem::path png, svg;
};

/// Power per VM on a common time axis (s since the repeat started), averaged over repeats.
struct Timeline {
  std::vector<std::string> vms;
  std::vector<double> t;                   ///< grid, s since repeat start
  std::vector<std::vector<double>> watts;  ///< [vm][i], NaN where no repeat has data
  std::vector<std::vector<int>> n;         ///< [vm][i] repeats averaged at t[i]
  /// [vm][r]: fraction of repeat r's grid points (those inside its span) where the VM had data;
  /// 1 = the whole repeat, 0 = none of it (exporter down, or no samples).
  std::vector<std::vector<double>> repeat_coverage;
  struct Band {
    std::string phase;
    double start = 0, end = 0;  ///< mean over repeats, s since repeat start
  };
  std::vector<Band> bands;
  int repeats = 0;
  /// Every VM has data over every repeat: each line is the mean of `repeats`.
  bool complete() const;
  /// The legend entry of VM v: its name and how many repeats its line averages, e.g.
  /// "edge0_u (1 of 3 repeats complete, 1 with gaps)".
  std::string legend(size_t v) const;
};

/// Aligns each repeat at its start (the earliest phase of that repeat), samples each VM's power
/// on a grid of the median scrape interval, and averages over the repeats that have data at each
/// point. A repeat has no data at a point outside its span, outside the VM's samples, or inside
/// one of the VM's gaps (VmSeries::gaps: power is not interpolated across an exporter outage).
/// Bands are the phases inside a repeat, except one that spans the whole repeat. With no repeat
/// in the events, the whole sampled range is one repeat.
Timeline average_timeline(const std::vector<energy::VmSeries>& vms,
                          const std::vector<record::PhaseInterval>& phases);

/// Mean, min and max over repeats of the energy of one VM in one phase.
struct EnergyStat {
  std::string vm, phase;
  double mean = 0, min = 0, max = 0;
  int n = 0;
};
/// From energy.csv rows: per (phase, VM), over repeats. Phase "total" = a whole repeat.
std::vector<EnergyStat> energy_stats(const std::vector<energy::EnergyRow>& rows);

/// The data files behind the plots, <run>/plots/data/ (docs/energy.md "Plot data files"):
///   power_timeline.dat  `t_s` then per VM two columns, `<vm>` (mean W over the repeats with
///                       data at t, NaN where none) and `<vm>:n` (how many repeats that is)
///   energy_total.dat    `vm mean min max n label` (J over the repeats, phase total; label is
///                       the tic text, "vm (1 of 3 repeats)" when n is short)
///   energy_phase.dat    `phase` then per VM `<vm> mean`, `min`, `max`, `n` (NaN/0 if absent)
/// Writers: plot_power_timeline, plot_energy_bars. A header line starting with '#' names the
/// columns.
Expected<PlotFiles> plot_power_timeline(const Timeline& tl, const std::string& app,
                                        const std::filesystem::path& plots_dir);
Expected<PlotFiles> plot_energy_bars(const std::vector<EnergyStat>& stats, const std::string& app,
                                     const std::filesystem::path& plots_dir);
/// Histogram (and CDF on a second axis) of per-frame latencies in ms.
Expected<PlotFiles> plot_latency(const std::vector<double>& latency_ms, const std::string& app,
                                 const std::filesystem::path& plots_dir);

/// What a PNG holds, to check that gnuplot drew something (8-bit RGB/RGBA, as pngcairo writes).
struct PngInfo {
  int width = 0, height = 0;
  size_t colours = 0;  ///< distinct colours, counted up to 4096
};
Expected<PngInfo> png_info(const std::filesystem::path& png);

}  // namespace continuum::report

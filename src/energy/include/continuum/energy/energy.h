#pragma once
// From raw scraped samples to joules per VM per phase per repeat (docs/design.md §7).
//
//   <run>/energy/samples.csv   time,t,vm,target,metric,labels,value   (one row per sample, raw)
//   <run>/energy/energy.csv    one row per (phase interval, VM): joules and how they were got
//
// Power gauges (µW) are integrated with the trapezoid rule; energy counters (µJ) are differenced
// with counter resets and wraps handled. Scaphandre's torn reads (hubblo-org/scaphandre#442) show
// up as one-sample spikes and are rejected before either is used (rules in docs/energy.md).
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "continuum/record/events.h"
#include "continuum/util/expected.h"

namespace continuum::energy {

/// Metric names used for a VM's power and energy (docs/exporters.md §1). With one exporter per VM
/// (host-side per-VM powercap tree, or the guest's `--vm` exporter) the "host" metrics are the VM.
inline constexpr const char* kPowerMetric = "scaph_host_power_microwatts";
inline constexpr const char* kEnergyMetric = "scaph_host_energy_microjoules";

/// One row of samples.csv.
struct SampleRow {
  std::string time;    ///< wall clock, RFC 3339 UTC ns (scrape midpoint)
  double t = 0;        ///< seconds since run start, same clock as events.jsonl `t`
  std::string vm;      ///< VM (domain) name
  std::string target;  ///< URL scraped
  std::string metric;
  std::string labels;  ///< canonical `{a="x",...}` or ""
  double value = 0;
};

/// The header line of samples.csv (without newline).
std::string samples_csv_header();
/// One CSV line (with newline) for a row.
std::string samples_csv_line(const SampleRow& r);
/// Reads samples.csv; a malformed row is an error naming file and line.
Expected<std::vector<SampleRow>> read_samples(const std::filesystem::path& file);

/// A time series: t in seconds since run start (ascending), v in SI units (W or J).
struct Series {
  std::vector<double> t, v;
  size_t size() const { return t.size(); }
};

/// Torn-read spike rule for power gauges (#442): sample i is dropped when it exceeds both
/// neighbours by `factor` times the larger neighbour AND by `min_jump_watts`. Only interior samples
/// can be judged; a spike at the very end of a series is kept until a later sample exists.
struct SpikeRule {
  double factor = 5.0;
  double min_jump_watts = 20.0;
};
/// Removes spikes in place; returns how many were removed.
size_t reject_spikes(Series& watts, const SpikeRule& rule = {});

/// Counter handling (µJ in, J out).
struct CounterOptions {
  /// Wrap ranges tried, in order, when a counter goes down: RAPL's usual max_energy_range_uj
  /// (Scaphandre exports the raw RAPL counter). A wrap is taken only if the implied power is
  /// plausible; otherwise it is a reset. (A small range such as 2^32 µJ = 4.3 kJ cannot be told
  /// from a reset by plausibility at 1 s scrapes, so it is not tried by default.)
  std::vector<double> wrap_ranges_uj = {262143328850.0};
  double max_plausible_watts = 5000;
};
struct CounterStats {
  size_t resets = 0, wraps = 0, torn_reads = 0;
};
/// Raw counter series (µJ) → cumulative joules since the first sample. A torn read (a value that
/// drops, or jumps, and is followed by a sample continuing the old trajectory) is dropped; a real
/// drop is a wrap (if plausible, see CounterOptions) or a reset (the counter restarted at 0, as
/// Prometheus' rate() assumes).
Series counter_to_joules(const Series& raw_uj, const CounterOptions& opts = {},
                         CounterStats* stats = nullptr);

/// Linear interpolation; nullopt outside [t.front(), t.back()].
std::optional<double> interpolate(const Series& s, double t);
/// ∫ watts dt over [a, b] ∩ [first, last sample] (trapezoid; interpolated at the ends).
/// `covered` gets the seconds of [a, b] that samples span.
double integrate(const Series& watts, double a, double b, double* covered = nullptr);
/// Energy (J) between a and b from a cumulative-joules series (interpolated at both ends).
double difference(const Series& joules, double a, double b, double* covered = nullptr);
/// Power (W) from a cumulative-joules series, at the midpoints of consecutive samples.
Series power_from_joules(const Series& joules);

/// All series of one VM built from its samples.
struct VmSeries {
  std::string vm;
  Series watts;   ///< gauge, spikes removed (empty if the exporter had no gauge)
  Series joules;  ///< cumulative from the counter (empty if no counter)
  size_t spikes_rejected = 0;
  CounterStats counter;
  /// Power for plots: the gauge if present, else derived from the counter.
  Series power() const;
};
/// Groups samples by VM (first label set seen per metric). VMs in first-seen order.
std::vector<VmSeries> build_series(const std::vector<SampleRow>& rows, const SpikeRule& rule = {},
                                   const CounterOptions& opts = {});

/// One row of energy.csv.
struct EnergyRow {
  std::string app, phase, node, vm;
  int repeat = -1;
  double start = 0, end = 0;  ///< s since run start
  double joules = 0;          ///< counter if it covers the interval, else gauge
  std::string source;         ///< counter | power
  double joules_power = NAN, joules_counter = NAN;  ///< NAN when that source is absent
  double coverage = 0;                              ///< fraction of [start, end] spanned by samples
  size_t samples = 0;                               ///< samples inside [start, end]
  double mean_watts() const { return end > start ? joules / (end - start) : 0; }
};

/// Rows for every (interval, VM) with coverage > 0. For each repeat >= 0 a synthetic phase
/// "total" spans all of that repeat's intervals; with no repeat at all, "total" spans every
/// interval (or, with no intervals, the samples).
std::vector<EnergyRow> attribute(const std::vector<VmSeries>& vms,
                                 const std::vector<record::PhaseInterval>& phases);

std::string energy_csv(const std::vector<EnergyRow>& rows);
Expected<std::vector<EnergyRow>> read_energy_csv(const std::filesystem::path& file);

}  // namespace continuum::energy

#pragma once
// From raw scraped samples to joules per VM per phase per repeat (docs/design.md §7).
//
//   <run>/energy/samples.csv   time,t,vm,target,metric,labels,value   (one row per sample, raw)
//   <run>/energy/energy.csv    one row per (phase interval, VM): joules and how they were got
//
// Power gauges (µW) are integrated with the trapezoid rule; energy counters (µJ) are differenced
// with counter resets and wraps handled. Scaphandre's torn reads (hubblo-org/scaphandre#442) show
// up as one-sample spikes and are rejected before either is used (rules in docs/energy.md).
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "continuum/config/config.h"
#include "continuum/record/events.h"
#include "continuum/util/expected.h"

namespace continuum::energy {

/// Metric names used for a VM's power and energy with Scaphandre (docs/exporters.md §1). With one
/// exporter per VM (host-side per-VM powercap tree, or the guest's `--vm` exporter) the "host"
/// metrics are the VM.
inline constexpr const char* kPowerMetric = "scaph_host_power_microwatts";
inline constexpr const char* kEnergyMetric = "scaph_host_energy_microjoules";

/// The per-scrape record the scraper writes into samples.csv for every scrape of every target:
/// value 1 when the scrape gave the VM's power or energy sample, 0 otherwise, with label `error`
/// saying why (like Prometheus' `up`, but a 200 without the kind's metrics is 0 too). Gaps in a
/// VM's data are read from these rows (scrape_records()).
inline constexpr const char* kUpMetric = "up";

/// A label filter: the series' label `label` must have one of `values`.
struct LabelIn {
  std::string_view label;
  std::vector<std::string_view> values;
};
/// A metric kept in samples.csv only when it has label `needs_label` (Scaphandre's per-process
/// power, only when it names a VM).
struct KeepIf {
  std::string_view prefix, needs_label;
};

/// How one exporter kind's metrics become a VM's energy ([energy] exporter_kind): data, one entry
/// per kind in kind_specs(), read by the scraper (what to keep, what counts as an energy sample)
/// and by build_series (which series to integrate or difference, in which unit, summed or not).
/// docs/energy.md "Exporter kinds" has the table in prose.
struct KindSpec {
  config::ExporterKind kind = config::ExporterKind::scaphandre;
  std::string_view name;                         ///< as [energy] exporter_kind spells it
  std::vector<std::string_view> energy_metrics;  ///< counters
  double energy_to_uj = 1;                       ///< µJ per raw counter unit (J: 1e6)
  std::vector<std::string_view> power_metrics;   ///< gauges ({} when the kind has none)
  double power_to_w = 1;                         ///< W per raw gauge unit (µW: 1e-6)
  /// Several label sets of the selected metrics: summed (sockets, RAPL domains, zones) or only
  /// the first one seen followed (Scaphandre's alternative `value_source`s of one quantity).
  bool sum_series = false;
  /// The label naming the VM when one exporter serves every VM (Kepler's `vm_name`: the libvirt
  /// domain name, from qemu's `-name guest=`); "" when each VM has its own exporter.
  std::string_view vm_label;
  std::vector<LabelIn> select;         ///< filters on the energy/power series
  std::vector<std::string_view> keep;  ///< metric prefixes kept in samples.csv
  std::vector<KeepIf> keep_if;         ///< prefixes kept only with a label
  std::string_view scope;              ///< "per VM" or "whole host", for docs and messages
};
/// Every kind, in the order build_series tries them on a run's samples.
const std::vector<KindSpec>& kind_specs();
const KindSpec& kind_spec(config::ExporterKind k);
/// The kind whose energy or power metric `metric` is (nullptr: none).
const KindSpec* kind_of_metric(std::string_view metric);
/// "scaph_host_power_microwatts or scaph_host_energy_microjoules": what a scrape must contain to
/// count, for coverage messages (with the label filters and, for a shared exporter, the VM).
std::string wanted_metrics(const KindSpec& k, std::string_view vm = "");
/// Is (metric, labels) one of the series that make VM `vm`'s energy or power under `k`?
/// `label` looks up a label value (nullopt when absent).
template <typename LabelFn>
bool selects(const KindSpec& k, std::string_view metric, std::string_view vm, LabelFn&& label,
             bool* is_energy = nullptr) {
  bool energy = false, power = false;
  for (auto m : k.energy_metrics) energy |= metric == m;
  for (auto m : k.power_metrics) power |= metric == m;
  if (!energy && !power) return false;
  if (!k.vm_label.empty()) {
    std::optional<std::string_view> v = label(k.vm_label);
    if (!v || *v != vm) return false;
  }
  for (const auto& f : k.select) {
    std::optional<std::string_view> v = label(f.label);
    if (!v) return false;
    bool in = false;
    for (auto want : f.values) in |= *v == want;
    if (!in) return false;
  }
  if (is_energy) *is_energy = energy;
  return true;
}

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

/// A stretch of a VM's scrape window without its energy data: between the last scrape that gave
/// it and the next one that did (or the last scrape, when it never came back).
struct Gap {
  double from = 0, to = 0;  ///< s since run start (samples.csv `t`)
  size_t failed = 0;        ///< scrapes in between that gave no data
  std::string last_error;   ///< the `error` label of the last of them
  bool open_end = false;    ///< the exporter never gave data again
  double seconds() const { return to - from; }
};
/// Per VM, what the `up` rows of samples.csv say about its scrapes.
struct ScrapeRecord {
  std::string vm, target;
  size_t scrapes = 0, with_data = 0;
  double first = NAN, last = NAN;  ///< t of the first and last scrape
  std::vector<Gap> gaps;
  double window() const { return scrapes ? last - first : 0; }
  double gap_seconds() const;
};
/// VMs in first-seen order; empty when samples.csv has no `up` rows (runs before they existed).
std::vector<ScrapeRecord> scrape_records(const std::vector<SampleRow>& rows);

/// All series of one VM built from its samples.
struct VmSeries {
  std::string vm;
  std::string kind;  ///< KindSpec::name of the metrics found
  Series watts;      ///< gauge (W), spikes removed (empty if the exporter had no gauge)
  Series joules;     ///< cumulative from the counter (empty if no counter)
  size_t spikes_rejected = 0;
  CounterStats counter;
  /// Where the VM had no data (from the `up` rows): plots do not draw across them.
  std::vector<Gap> gaps;
  /// Power for plots: the gauge if present, else derived from the counter.
  Series power() const;
  /// Is t strictly inside one of the gaps?
  bool in_gap(double t) const;
};
/// Groups samples by VM. Per VM the kind is the first of kind_specs() whose metrics appear; its
/// series are chosen, scaled and combined as its KindSpec says (Scaphandre: the first label set
/// seen per metric; node_exporter and Kepler: the selected label sets summed). VMs in first-seen
/// order.
std::vector<VmSeries> build_series(const std::vector<SampleRow>& rows, const SpikeRule& rule = {},
                                   const CounterOptions& opts = {});
/// Sum of series, on the union of their timestamps within the range all of them cover (each
/// interpolated linearly). One series is returned as is.
Series sum_series(const std::vector<Series>& parts);

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

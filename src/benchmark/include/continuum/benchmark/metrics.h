#pragma once
// image_classification metrics as the original computes them (docs/original.md §7.4, §7.5): parse
// the programs' log lines, keep the 5th-90th percentile slice of each series, mean (main branch)
// and population standard deviation, and print the worker and endpoint tables with the original's
// columns. Pure functions: the integration test feeds them the real programs' output.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "continuum/util/expected.h"

namespace continuum::benchmark {

/// Parses an RFC 3339 timestamp ("2026-11-29T10:00:00.123456789Z", or with a +hh:mm offset) as
/// printed by the guest programs, `docker logs -t` and `kubectl logs --timestamps`. Returns ns
/// since the epoch, truncated to microseconds as the original does.
Expected<int64_t> parse_rfc3339(std::string_view s);

/// The integer after the last ':' of a "<what> (<unit>): <n>" line, and its unit.
struct LogValue {
  std::string unit;
  int64_t value = 0;
};
std::optional<LogValue> parse_value_line(std::string_view line);

/// What one worker's output says (values in ms rounded to 4 dp, as the original).
struct WorkerLog {
  std::vector<double> delays_ms;      ///< `Latency (ns)`: endpoint -> worker
  std::vector<double> processing_ms;  ///< `Processing (ns)`
  std::optional<int64_t> start_ns;    ///< first `Read image and apply ML`
  std::optional<int64_t> end_ns;      ///< last `Get item`
  size_t negatives = 0;               ///< negative values skipped (clock skew)
  std::vector<std::string> warnings;  ///< lines that could not be used
};
WorkerLog parse_worker_log(std::string_view output);

/// What one endpoint's output says.
struct EndpointLog {
  std::vector<double> processing_ms;  ///< `Preparation and preprocessing` or, in combined mode,
                                      ///< `Preparation, preprocessing and processing` (ns)
  std::vector<double> latency_ms;     ///< `Latency (ns)`: end to end
  std::vector<double> data_kb;        ///< `Sending data (bytes)` / 1000
  std::optional<int64_t> first_ns, last_ns;  ///< first and last timestamped line
  size_t negatives = 0;
  std::vector<std::string> warnings;
};
EndpointLog parse_endpoint_log(std::string_view output);

/// The original's percentile slice of a series: sorted, then [floor(n*0.05), floor(n*0.90)).
std::vector<double> percentile_slice(std::vector<double> values);

/// Mean and population standard deviation of the percentile slice; NaN when the slice is empty
/// (as numpy's mean of an empty array), which the tables print as NaN and JSON as null.
struct SliceStats {
  size_t n = 0;     ///< values before slicing
  size_t kept = 0;  ///< values in the slice
  double mean = 0;
  double stdev = 0;
};
SliceStats slice_stats(const std::vector<double>& values);

/// Rounds half to even at `decimals` places (numpy's round).
double round_to(double v, int decimals);

struct WorkerMetrics {
  int worker_id = 0;
  std::string node;         ///< node id it ran on ("" if unknown)
  double total_time_s = 0;  ///< first `Read image and apply ML` -> last `Get item`
  double delay_avg_ms = 0;
  double delay_stdev_ms = 0;
  double proc_avg_ms = 0;  ///< proc_time/data
  size_t frames = 0;       ///< `Processing` values
};

struct EndpointMetrics {
  int endpoint_id = 0;
  int connected_to = -1;  ///< worker id; -1 in endpoint-only mode
  std::string node;
  double total_time_s = 0;  ///< first -> last line
  double proc_avg_ms = 0;   ///< preproc_time/data (offload) or proc_time/data (endpoint mode)
  double data_avg_kb = 0;   ///< mean of all sizes (not sliced, as the original)
  double latency_avg_ms = 0;
  double latency_stdev_ms = 0;
  size_t frames = 0;  ///< `Latency` values (= replies received)
};

WorkerMetrics worker_metrics(int worker_id, const std::string& node, const WorkerLog& log);
EndpointMetrics endpoint_metrics(int endpoint_id, int connected_to, const std::string& node,
                                 const EndpointLog& log);

/// The metrics of one application run.
struct AppMetrics {
  std::string application = "image_classification";
  std::string mode;  ///< cloud | edge | endpoint (upstream's mode: names the tables)
  std::vector<WorkerMetrics> workers;      ///< sorted by worker_id
  std::vector<EndpointMetrics> endpoints;  ///< sorted by endpoint_id
};

/// A text table as pandas' `to_string(index=False)` prints it: right-aligned columns separated by
/// two spaces with a leading space; floats of a column share their number of decimals.
struct Table {
  std::vector<std::string> headers;
  std::vector<std::vector<double>> rows;
  std::vector<bool> integer_column;  ///< printed without decimals
};
std::string render_table(const Table& t);

Table worker_table(const AppMetrics& m);
Table endpoint_table(const AppMetrics& m);

/// The original's console output: "CLOUD OUTPUT"/"EDGE OUTPUT" frame + worker table (not in
/// endpoint mode), then "ENDPOINT OUTPUT" + endpoint table.
std::string render_app_tables(const AppMetrics& m);

}  // namespace continuum::benchmark

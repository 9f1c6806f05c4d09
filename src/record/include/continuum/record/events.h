#pragma once
// The event log `<run>/events.jsonl` (docs/design.md §7): one JSON object per line, flushed as
// written, so a crash leaves a usable log. Plots and energy attribution read phases from it.
//   {"time":"2026-11-29T10:00:00.123456789Z","t":12.5,"experiment":"bench_cloud",
//    "app":"image_classification","repeat":0,"phase":"benchmark","event":"start","node":"",
//    "details":{}}
// `event` is "start" or "end" for phase/workload boundaries, or another word for point events.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "continuum/util/expected.h"

namespace continuum::record {

struct Event {
  std::string time;   ///< wall clock, RFC 3339 UTC with nanoseconds
  double t = 0;       ///< seconds since run start (monotonic clock)
  std::string app;    ///< application or workload name, "" outside the benchmark
  int repeat = -1;    ///< repeat index from 0; -1 outside repeats
  std::string phase;  ///< infrastructure, network, software, benchmark, workload:<name>, ...
  std::string event;  ///< start | end | <point event>
  std::string node;   ///< node id, "" for the whole run
  nlohmann::json details = nlohmann::json::object();
  /// [experiment] name: logs of several experiments stay apart once collected. Filled by
  /// EventLog::emit; "" in logs written before it existed.
  std::string experiment;
};

nlohmann::json to_json(const Event& e);
Expected<Event> event_from_json(const nlohmann::json& j);

/// RFC 3339 UTC with nanoseconds for a system_clock time point.
std::string rfc3339_ns(std::chrono::system_clock::time_point tp);

/// Appends events; thread-safe; every line is written and flushed before emit() returns.
class EventLog {
 public:
  /// Opens (appends to) `path`; `start` is the monotonic run start that `t` is measured from.
  /// Every event it writes carries `experiment`.
  static Expected<std::unique_ptr<EventLog>> open(const std::filesystem::path& path,
                                                  std::chrono::steady_clock::time_point start,
                                                  std::string experiment = "");
  ~EventLog();
  /// Fills time and t, writes one line.
  void emit(Event e);
  void emit(const std::string& phase, const std::string& event, const std::string& app = "",
            int repeat = -1, const std::string& node = "",
            nlohmann::json details = nlohmann::json::object());

 private:
  EventLog(std::FILE* f, std::chrono::steady_clock::time_point start, std::string experiment)
      : f_(f), start_(start), experiment_(std::move(experiment)) {}
  std::FILE* f_;
  std::chrono::steady_clock::time_point start_;
  std::string experiment_;
  std::mutex mu_;
};

/// Reads a log; a truncated last line (crash mid-write) is skipped, any other bad line is an
/// error naming its line number.
Expected<std::vector<Event>> read_events(const std::filesystem::path& path);

/// A [start, end) interval of a phase, from matching start/end events (same phase, app, repeat,
/// node). An unmatched start ends at the last event's t.
struct PhaseInterval {
  std::string phase, app, node;
  int repeat = -1;
  double start = 0, end = 0;
};
std::vector<PhaseInterval> phase_intervals(const std::vector<Event>& events);

}  // namespace continuum::record

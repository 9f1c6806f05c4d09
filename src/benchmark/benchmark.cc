#include "continuum/benchmark/benchmark.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>

#include "continuum/benchmark/image_classification.h"
#include "continuum/util/files.h"
#include "continuum/util/strings.h"
#include "internal.h"

namespace continuum::benchmark {

namespace {

using nlohmann::json;

json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

std::string csv_num(double v) { return std::isfinite(v) ? util::format_number(v) : ""; }

using util::csv_field;

// The numbers of one worker/endpoint as (metric, value) pairs: the one list that the CSV,
// the JSON and the aggregation all use, so they cannot disagree.
std::vector<std::pair<std::string, double>> worker_values(const WorkerMetrics& w) {
  return {{"total_time_s", w.total_time_s},
          {"delay_avg_ms", w.delay_avg_ms},
          {"delay_stdev_ms", w.delay_stdev_ms},
          {"proc_time_ms", w.proc_avg_ms},
          {"frames", static_cast<double>(w.frames)}};
}
std::vector<std::pair<std::string, double>> endpoint_values(const EndpointMetrics& e) {
  return {{"total_time_s", e.total_time_s},         {"preproc_time_ms", e.proc_avg_ms},
          {"data_size_avg_kb", e.data_avg_kb},      {"latency_avg_ms", e.latency_avg_ms},
          {"latency_stdev_ms", e.latency_stdev_ms}, {"frames", static_cast<double>(e.frames)}};
}

const std::vector<std::string> kCsvColumns = {"repeat",
                                              "stat",
                                              "role",
                                              "id",
                                              "node",
                                              "connected_to",
                                              "total_time_s",
                                              "delay_avg_ms",
                                              "delay_stdev_ms",
                                              "proc_time_ms",
                                              "preproc_time_ms",
                                              "data_size_avg_kb",
                                              "latency_avg_ms",
                                              "latency_stdev_ms",
                                              "frames",
                                              "runs",
                                              "failures",
                                              "seconds"};

struct Row {
  std::map<std::string, std::string> cells;
  std::string str() const {
    std::vector<std::string> out;
    for (const auto& c : kCsvColumns) {
      auto it = cells.find(c);
      out.push_back(it == cells.end() ? "" : csv_field(it->second));
    }
    return util::join(out, ",") + "\n";
  }
};

// Per-repeat workload summary per (workload, node): counted runs, failures, mean seconds.
struct WorkloadSummary {
  int runs = 0, failures = 0;
  double seconds = 0;
};
std::map<std::pair<std::string, std::string>, WorkloadSummary> summarize(
    const std::vector<WorkloadRun>& runs) {
  std::map<std::pair<std::string, std::string>, WorkloadSummary> m;
  for (const auto& r : runs) {
    if (r.warmup) continue;
    auto& s = m[{r.workload, r.node}];
    ++s.runs;
    if (!r.ok()) ++s.failures;
    s.seconds += r.seconds;
  }
  for (auto& [k, s] : m)
    if (s.runs) s.seconds /= s.runs;
  return m;
}

}  // namespace

std::vector<Aggregate> aggregate(const std::vector<RepeatResult>& repeats) {
  // key: role, subject, metric -> values in repeat order
  std::map<std::tuple<std::string, std::string, std::string>, std::vector<double>> values;
  std::vector<std::tuple<std::string, std::string, std::string>> order;
  auto add = [&](const std::string& role, const std::string& subject, const std::string& metric,
                 double v) {
    auto key = std::make_tuple(role, subject, metric);
    if (!values.count(key)) order.push_back(key);
    if (std::isfinite(v))
      values[key].push_back(v);
    else
      values[key];
  };
  for (const auto& r : repeats) {
    if (r.app) {
      for (const auto& w : r.app->workers)
        for (const auto& [k, v] : worker_values(w))
          add("worker", std::to_string(w.worker_id), k, v);
      for (const auto& e : r.app->endpoints)
        for (const auto& [k, v] : endpoint_values(e))
          add("endpoint", std::to_string(e.endpoint_id), k, v);
    }
    for (const auto& [key, s] : summarize(r.workload_runs)) {
      const std::string subject = key.first + "/" + key.second;
      add("workload", subject, "seconds", s.seconds);
      add("workload", subject, "failures", s.failures);
    }
  }
  std::vector<Aggregate> out;
  for (const auto& key : order) {
    const auto& v = values[key];
    Aggregate a;
    std::tie(a.role, a.subject, a.metric) = key;
    a.n = static_cast<int>(v.size());
    if (v.empty()) {
      a.mean = a.min = a.max = std::numeric_limits<double>::quiet_NaN();
    } else {
      double sum = 0;
      a.min = a.max = v.front();
      for (double x : v) {
        sum += x;
        a.min = std::min(a.min, x);
        a.max = std::max(a.max, x);
      }
      a.mean = round_to(sum / static_cast<double>(v.size()), 4);
    }
    out.push_back(a);
  }
  return out;
}

std::string metrics_csv(const BenchmarkResult& r) {
  std::string out = util::join(kCsvColumns, ",") + "\n";
  for (const auto& rep : r.repeats) {
    if (rep.app) {
      for (const auto& w : rep.app->workers) {
        Row row;
        row.cells = {{"repeat", std::to_string(rep.repeat)},
                     {"stat", "value"},
                     {"role", "worker"},
                     {"id", std::to_string(w.worker_id)},
                     {"node", w.node}};
        for (const auto& [k, v] : worker_values(w)) row.cells[k] = csv_num(v);
        out += row.str();
      }
      for (const auto& e : rep.app->endpoints) {
        Row row;
        row.cells = {{"repeat", std::to_string(rep.repeat)},
                     {"stat", "value"},
                     {"role", "endpoint"},
                     {"id", std::to_string(e.endpoint_id)},
                     {"node", e.node},
                     {"connected_to", e.connected_to >= 0 ? std::to_string(e.connected_to) : ""}};
        for (const auto& [k, v] : endpoint_values(e)) row.cells[k] = csv_num(v);
        out += row.str();
      }
    }
    for (const auto& [key, s] : summarize(rep.workload_runs)) {
      Row row;
      row.cells = {{"repeat", std::to_string(rep.repeat)},
                   {"stat", "value"},
                   {"role", "workload"},
                   {"id", key.first},
                   {"node", key.second},
                   {"runs", std::to_string(s.runs)},
                   {"failures", std::to_string(s.failures)},
                   {"seconds", csv_num(round_to(s.seconds, 4))}};
      out += row.str();
    }
  }
  // Aggregate rows: one per (role, subject, stat).
  std::map<std::tuple<std::string, std::string, std::string>, Row> agg;
  std::vector<std::tuple<std::string, std::string, std::string>> order;
  for (const auto& a : r.aggregate) {
    for (const char* stat : {"mean", "min", "max"}) {
      auto key = std::make_tuple(a.role, a.subject, std::string(stat));
      if (!agg.count(key)) {
        order.push_back(key);
        Row row;
        row.cells = {{"repeat", "all"}, {"stat", stat}, {"role", a.role}};
        if (a.role == "workload") {
          auto slash = a.subject.find('/');
          row.cells["id"] = a.subject.substr(0, slash);
          row.cells["node"] = a.subject.substr(slash + 1);
        } else {
          row.cells["id"] = a.subject;
        }
        agg[key] = row;
      }
      double v = std::string(stat) == "mean" ? a.mean : std::string(stat) == "min" ? a.min : a.max;
      agg[key].cells[a.metric] = csv_num(v);
    }
  }
  if (r.repeats.size() > 1)
    for (const auto& key : order) out += agg[key].str();
  return out;
}

static json app_json(const AppMetrics& m) {
  json j{{"application", m.application},
         {"mode", m.mode},
         {"workers", json::array()},
         {"endpoints", json::array()}};
  for (const auto& w : m.workers) {
    json o{{"worker_id", w.worker_id}, {"node", w.node}};
    for (const auto& [k, v] : worker_values(w)) o[k] = num(v);
    j["workers"].push_back(o);
  }
  for (const auto& e : m.endpoints) {
    json o{{"endpoint_id", e.endpoint_id},
           {"node", e.node},
           {"connected_to", e.connected_to >= 0 ? json(e.connected_to) : json(nullptr)}};
    for (const auto& [k, v] : endpoint_values(e)) o[k] = num(v);
    j["endpoints"].push_back(o);
  }
  return j;
}

static json run_json(const WorkloadRun& w) {
  return {{"workload", w.workload},
          {"node", w.node},
          {"repeat", w.repeat},
          {"index", w.index},
          {"warmup", w.warmup},
          {"exit_code", w.exit_code},
          {"timed_out", w.timed_out},
          {"seconds", num(w.seconds)},
          {"ok", w.ok()},
          {"error", w.error},
          {"stdout", w.out_file},
          {"stderr", w.err_file}};
}

json metrics_json(const BenchmarkResult& r) {
  json j{{"schema", "continuum.benchmark.metrics/1"},
         {"application", r.application},
         {"repeats", json::array()},
         {"aggregate", json::array()},
         {"failures", r.failures},
         {"interrupted", r.interrupted}};
  for (const auto& rep : r.repeats) {
    json o{{"repeat", rep.repeat},           {"seconds", num(rep.seconds)},
           {"interrupted", rep.interrupted}, {"app", rep.app ? app_json(*rep.app) : json(nullptr)},
           {"app_errors", rep.app_errors},   {"workloads", json::array()}};
    for (const auto& [key, s] : summarize(rep.workload_runs))
      o["workloads"].push_back({{"workload", key.first},
                                {"node", key.second},
                                {"runs", s.runs},
                                {"failures", s.failures},
                                {"seconds_avg", num(round_to(s.seconds, 4))}});
    j["repeats"].push_back(o);
  }
  for (const auto& a : r.aggregate)
    j["aggregate"].push_back({{"role", a.role},
                              {"subject", a.subject},
                              {"metric", a.metric},
                              {"mean", num(a.mean)},
                              {"min", num(a.min)},
                              {"max", num(a.max)},
                              {"n", a.n}});
  return j;
}

std::string workload_results_csv(const std::vector<RepeatResult>& repeats) {
  std::string out =
      "workload,node,repeat,index,warmup,exit_code,timed_out,seconds,ok,error,stdout,stderr\n";
  for (const auto& rep : repeats)
    for (const auto& w : rep.workload_runs)
      out += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{}\n", csv_field(w.workload),
                         csv_field(w.node), w.repeat, w.index, w.warmup ? "true" : "false",
                         w.exit_code, w.timed_out ? "true" : "false",
                         csv_num(round_to(w.seconds, 4)), w.ok() ? "true" : "false",
                         csv_field(w.error), csv_field(w.out_file), csv_field(w.err_file));
  return out;
}

json workload_results_json(const std::vector<RepeatResult>& repeats) {
  json j = json::array();
  for (const auto& rep : repeats)
    for (const auto& w : rep.workload_runs) j.push_back(run_json(w));
  return j;
}

std::string render_tables(const BenchmarkResult& r) {
  std::string out;
  const bool many = r.repeats.size() > 1;
  for (const auto& rep : r.repeats) {
    if (!rep.app) continue;
    if (many) out += fmt::format("Repeat {}\n", rep.repeat);
    out += render_app_tables(*rep.app);
  }
  // The mean over repeats, in the original's table shape.
  if (many && r.repeats.front().app) {
    AppMetrics mean = *r.repeats.front().app;
    auto get = [&](const std::string& role, int id, const std::string& metric) {
      for (const auto& a : r.aggregate)
        if (a.role == role && a.subject == std::to_string(id) && a.metric == metric)
          return round_to(a.mean, 2);
      return std::numeric_limits<double>::quiet_NaN();
    };
    for (auto& w : mean.workers) {
      w.total_time_s = get("worker", w.worker_id, "total_time_s");
      w.delay_avg_ms = get("worker", w.worker_id, "delay_avg_ms");
      w.delay_stdev_ms = get("worker", w.worker_id, "delay_stdev_ms");
      w.proc_avg_ms = get("worker", w.worker_id, "proc_time_ms");
    }
    for (auto& e : mean.endpoints) {
      e.total_time_s = get("endpoint", e.endpoint_id, "total_time_s");
      e.proc_avg_ms = get("endpoint", e.endpoint_id, "preproc_time_ms");
      e.data_avg_kb = get("endpoint", e.endpoint_id, "data_size_avg_kb");
      e.latency_avg_ms = get("endpoint", e.endpoint_id, "latency_avg_ms");
      e.latency_stdev_ms = get("endpoint", e.endpoint_id, "latency_stdev_ms");
    }
    out += fmt::format("Mean over {} repeats\n", r.repeats.size());
    out += render_app_tables(mean);
  }
  // Workloads: per workload and node, over all repeats.
  std::map<std::pair<std::string, std::string>, std::vector<const WorkloadRun*>> by;
  for (const auto& rep : r.repeats)
    for (const auto& w : rep.workload_runs)
      if (!w.warmup) by[{w.workload, w.node}].push_back(&w);
  if (!by.empty()) {
    out +=
        "------------------------------------\nWORKLOADS\n------------------------------------\n";
    std::vector<std::vector<std::string>> rows{
        {"workload", "node", "runs", "failed", "avg (s)", "min (s)", "max (s)"}};
    for (const auto& [key, runs] : by) {
      double sum = 0, mn = 1e300, mx = 0;
      int failed = 0;
      for (auto* w : runs) {
        sum += w->seconds;
        mn = std::min(mn, w->seconds);
        mx = std::max(mx, w->seconds);
        if (!w->ok()) ++failed;
      }
      rows.push_back({key.first, key.second, std::to_string(runs.size()), std::to_string(failed),
                      fmt::format("{:.3f}", sum / static_cast<double>(runs.size())),
                      fmt::format("{:.3f}", mn), fmt::format("{:.3f}", mx)});
    }
    std::vector<size_t> width(rows[0].size());
    for (const auto& row : rows)
      for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
    for (const auto& row : rows) {
      std::string line;
      for (size_t c = 0; c < row.size(); ++c) {
        line += c ? "  " : " ";
        // Names left-aligned, numbers right-aligned.
        line += c < 2 ? row[c] + std::string(width[c] - row[c].size(), ' ')
                      : std::string(width[c] - row[c].size(), ' ') + row[c];
      }
      out += line + "\n";
    }
  }
  if (r.failures > 0)
    out += fmt::format("FAILURES: {} (see benchmark/workloads/results.csv and continuum.log)\n",
                       r.failures);
  if (r.interrupted) out += "INTERRUPTED: the data above covers what ran before Ctrl-C\n";
  return out;
}

std::string summary_markdown(const BenchmarkResult& r) {
  std::string out = "## Benchmark\n\n";
  out += fmt::format("- application: {}\n", r.application.empty() ? "none" : r.application);
  out += fmt::format("- repeats: {}{}\n", r.repeats.size(), r.interrupted ? " (interrupted)" : "");
  for (const auto& rep : r.repeats)
    out += fmt::format("  - repeat {}: {:.1f} s{}\n", rep.repeat, rep.seconds,
                       rep.app_errors.empty() ? "" : " — " + util::join(rep.app_errors, "; "));
  out += fmt::format("- failures: {}\n\n", r.failures);
  out += "```\n" + render_tables(r) + "```\n\n";
  out +=
      "Files: `benchmark/metrics.csv`, `benchmark/metrics.json`, `benchmark/repeat-<k>/` (raw "
      "program "
      "output), `benchmark/workloads/results.csv` and one `.out`/`.err` per workload run.\n";
  return out;
}

Status save_results(const BenchmarkResult& r, const std::filesystem::path& dir) {
  TRY_STATUS(util::write_file_atomic(dir / "metrics.csv", metrics_csv(r)));
  TRY_STATUS(util::write_file_atomic(dir / "metrics.json", metrics_json(r).dump(2) + "\n"));
  TRY_STATUS(util::write_file_atomic(dir / "tables.txt", render_tables(r)));
  bool any_workload = false;
  for (const auto& rep : r.repeats) any_workload |= !rep.workload_runs.empty();
  if (any_workload) {
    TRY_STATUS(util::write_file_atomic(dir / "workloads" / "results.csv",
                                       workload_results_csv(r.repeats)));
    TRY_STATUS(util::write_file_atomic(dir / "workloads" / "results.json",
                                       workload_results_json(r.repeats).dump(2) + "\n"));
  }
  return {};
}

namespace {

bool is_interrupted(const std::atomic<bool>* interrupted) {
  return interrupted && interrupted->load();
}

// The inputs of run() and what it prepared before the first repeat, as every repeat needs them.
struct Phase {
  const config::Config& cfg;
  const infra::Deployment& d;
  const std::filesystem::path& run_dir;
  std::filesystem::path bdir;
  record::EventLog* events;
  const std::atomic<bool>* interrupted;
  const Hooks& hooks;
  std::string application;  ///< "" when only workloads run
  std::optional<Assignment> assignment;
  AppSettings settings;

  Phase(const config::Config& cfg, const infra::Deployment& d, const std::filesystem::path& run_dir,
        record::EventLog* events, const std::atomic<bool>* interrupted, const Hooks& hooks)
      : cfg(cfg),
        d(d),
        run_dir(run_dir),
        bdir(run_dir / "benchmark"),
        events(events),
        interrupted(interrupted),
        hooks(hooks) {}
  bool runs_app() const { return !application.empty(); }
};

// Whether the configured application is one this version runs; warns about one it does not.
bool runs_application(const config::Config& cfg) {
  const bool app = cfg.benchmark && !cfg.benchmark->resource_manager_only &&
                   cfg.benchmark->application == config::Application::image_classification;
  if (cfg.benchmark && cfg.benchmark->application != config::Application::none && !app &&
      !cfg.benchmark->resource_manager_only)
    spdlog::warn(
        "application {} is not run by this version of continuum (only image_classification)",
        config::name(cfg.benchmark->application));
  return app;
}

Status prepare_application(Phase& p) {
  p.assignment = TRY(assign(p.cfg, p.d));
  p.settings = app_settings(p.cfg, p.d, *p.assignment);
  p.settings.bin_dir = p.hooks.bin_dir;
  return {};
}

Status check_workloads(const config::Config& cfg, const infra::Deployment& d) {
  for (const auto& w : cfg.workloads) {
    TRY(resolve_nodes(w.nodes, d));
    TRY(render_workload_command(w));
  }
  return {};
}

// False when repeat k is not to run: Ctrl-C came before it or during the pause before it.
bool wait_for_repeat(const Phase& p, int k, double pause) {
  if (is_interrupted(p.interrupted)) return false;
  if (k > 0 && pause > 0) {
    spdlog::info("Pausing {} s before repeat {}", util::format_number(pause), k);
    internal::sleep_interruptible(std::chrono::milliseconds(static_cast<long long>(pause * 1000)),
                                  p.interrupted);
    if (is_interrupted(p.interrupted)) return false;
  }
  return true;
}

// One application run: its metrics, or what went wrong, go into rep.
void run_application(const Phase& p, int k, RepeatResult& rep) {
  const auto out_dir = p.bdir / fmt::format("repeat-{}", k) / "image_classification";
  std::filesystem::create_directories(out_dir);
  if (p.events)
    p.events->emit("application", "start", "image_classification", k, "",
                   {{"mode", p.assignment->mode}});
  const auto rm = p.cfg.benchmark->resource_manager;
  auto m = (rm == config::ResourceManager::none)
               ? run_direct(*p.assignment, p.settings, k, p.d, out_dir, p.hooks, p.hooks.connect,
                            p.events, p.interrupted, &rep.app_errors)
               : run_containers(p.cfg, *p.assignment, p.settings, k, p.d, out_dir, p.hooks,
                                p.hooks.connect, p.events, p.interrupted, &rep.app_errors);
  if (m.ok()) {
    rep.app = *m;
    auto expected_frames =
        static_cast<size_t>(p.settings.frequency) * static_cast<size_t>(p.settings.duration);
    for (const auto& e : m->endpoints)
      if (e.frames < expected_frames && !is_interrupted(p.interrupted))
        rep.app_errors.push_back(
            fmt::format("endpoint {} got {} of {} replies", e.node, e.frames, expected_frames));
  } else {
    rep.app_errors.push_back(m.error().message);
  }
  for (const auto& e : rep.app_errors) spdlog::warn("image_classification repeat {}: {}", k, e);
  if (p.events)
    p.events->emit("application", "end", "image_classification", k, "",
                   {{"errors", rep.app_errors}});
}

RepeatResult run_repeat(const Phase& p, int k, int repeats) {
  spdlog::info("Benchmark repeat {}/{}", k + 1, repeats);
  RepeatResult rep;
  rep.repeat = k;
  const auto t0 = std::chrono::steady_clock::now();
  if (p.events) p.events->emit("repeat", "start", p.application, k);
  if (p.runs_app()) run_application(p, k, rep);
  for (const auto& w : p.cfg.workloads) {
    if (w.setup) continue;  // ran once before the first repeat
    if (is_interrupted(p.interrupted)) break;
    spdlog::info("Workload {} (repeat {})", w.name, k);
    auto runs = run_workload(w, k, p.d, p.run_dir, p.hooks.connect, p.events, p.interrupted);
    rep.workload_runs.insert(rep.workload_runs.end(), runs.begin(), runs.end());
  }
  rep.interrupted = is_interrupted(p.interrupted);
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (p.events) p.events->emit("repeat", "end", p.application, k, "", {{"seconds", rep.seconds}});
  return rep;
}

/// The setup workloads, once, before the first repeat (repeat -1 in results and events). The
/// repeats measure what the setup prepared: without it they would measure an error path.
Status run_setup(const Phase& p) {
  for (const auto& w : p.cfg.workloads) {
    if (!w.setup) continue;
    if (is_interrupted(p.interrupted))
      return make_error("benchmark interrupted during setup", ExitCode::interrupted);
    spdlog::info("Setup workload {}", w.name);
    auto runs = run_workload(w, -1, p.d, p.run_dir, p.hooks.connect, p.events, p.interrupted);
    for (const auto& r : runs) {
      if (r.warmup || r.ok()) continue;
      std::string why = !r.error.empty() ? r.error
                        : r.timed_out    ? "timed out"
                                         : "exit status " + std::to_string(r.exit_code);
      return make_error("setup workload " + w.name + " failed on " +
                            (r.node.empty() ? std::string("its nodes") : r.node) + ": " + why +
                            (r.err_file.empty() ? "" : " (stderr: " + r.err_file + ")") +
                            "; the repeats were not run",
                        is_interrupted(p.interrupted) ? ExitCode::interrupted : ExitCode::failure);
    }
  }
  return {};
}

// Each repeat's data is on disk as soon as it exists (a crash later loses nothing).
Status save_repeat(const Phase& p, const RepeatResult& rep) {
  BenchmarkResult one;
  one.application = p.application;
  one.repeats = {rep};
  one.aggregate = aggregate(one.repeats);
  const auto dir = p.bdir / fmt::format("repeat-{}", rep.repeat);
  TRY_STATUS(util::write_file_atomic(dir / "metrics.csv", metrics_csv(one)));
  TRY_STATUS(util::write_file_atomic(dir / "metrics.json", metrics_json(one).dump(2) + "\n"));
  return {};
}

void total_up(BenchmarkResult& result, const std::atomic<bool>* interrupted) {
  result.interrupted = is_interrupted(interrupted);
  result.aggregate = aggregate(result.repeats);
  for (const auto& rep : result.repeats) {
    result.failures += static_cast<int>(rep.app_errors.size());
    for (const auto& w : rep.workload_runs)
      if (!w.warmup && !w.ok()) ++result.failures;
  }
}

}  // namespace

Expected<BenchmarkResult> run(const config::Config& cfg, const plan::Plan& plan,
                              const infra::Deployment& d, const std::filesystem::path& run_dir,
                              record::EventLog* events, const std::atomic<bool>* interrupted,
                              const Hooks& hooks) {
  if (!hooks.connect)
    return make_error("benchmark::run: no way to reach the nodes (Hooks::connect is empty)");
  BenchmarkResult result;
  Phase p(cfg, d, run_dir, events, interrupted, hooks);
  const bool app = runs_application(cfg);
  result.application = p.application = app ? "image_classification" : "";
  // Everything that can be checked before anything runs is checked now.
  if (app) TRY_STATUS(prepare_application(p));
  TRY_STATUS(check_workloads(cfg, d));
  const int repeats = std::max(1, cfg.benchmark ? cfg.benchmark->repeat : plan.repeats);
  const double pause = cfg.benchmark ? cfg.benchmark->repeat_pause : 0;
  if (events)
    events->emit("benchmark", "start", result.application, -1, "", {{"repeats", repeats}});
  if (auto st = run_setup(p); !st) {
    if (events)
      events->emit("benchmark", "end", result.application, -1, "",
                   {{"failures", 1}, {"interrupted", is_interrupted(interrupted)}});
    return st.error();
  }
  for (int k = 0; k < repeats; ++k) {
    if (!wait_for_repeat(p, k, pause)) break;
    result.repeats.push_back(run_repeat(p, k, repeats));
    TRY_STATUS(save_repeat(p, result.repeats.back()));
  }
  total_up(result, interrupted);
  TRY_STATUS(save_results(result, p.bdir));
  if (events)
    events->emit("benchmark", "end", result.application, -1, "",
                 {{"failures", result.failures}, {"interrupted", result.interrupted}});
  return result;
}

}  // namespace continuum::benchmark

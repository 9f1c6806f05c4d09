#pragma once
// The benchmark phase (docs/design.md §7): `repeat` times [application run, then the SSH
// workloads], with `repeat_pause` between repeats. Every boundary goes to the event log as it
// happens; raw output, per-repeat and aggregated metrics land under <run>/benchmark/
// (docs/design.md §8):
//   benchmark/repeat-<k>/<app>/<node>.<role>.log     raw program output (timestamped lines)
//   benchmark/repeat-<k>/metrics.{csv,json}          that repeat's metrics
//   benchmark/workloads/<name>/<node>/<k>-<i>.{out,err}   (warm-ups: <k>-warmup<i>)
//   benchmark/workloads/results.{csv,json}           one row per workload run
//   benchmark/metrics.{csv,json}                     all repeats + mean/min/max over repeats
//   benchmark/tables.txt                             what was printed
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "continuum/benchmark/metrics.h"
#include "continuum/config/config.h"
#include "continuum/infra/deployment.h"
#include "continuum/plan/plan.h"
#include "continuum/record/events.h"
#include "continuum/util/expected.h"
#include "continuum/util/ssh.h"

namespace continuum::benchmark {

/// One run of an SSH workload's command on one node.
struct WorkloadRun {
  std::string workload;
  std::string node;
  int repeat = 0;       ///< benchmark repeat index (from 0)
  int index = 0;        ///< run index within the repeat; warm-ups count separately
  bool warmup = false;  ///< warm-up runs are saved but not counted
  int exit_code = -1;
  bool timed_out = false;
  double seconds = 0;    ///< wall time seen by the host, including SSH round trips
  std::string error;     ///< connection failure or "interrupted" (Ctrl-C stopped it), "" otherwise
  std::string out_file;  ///< stdout, relative to the run directory
  std::string err_file;
  bool ok() const { return error.empty() && !timed_out && exit_code == 0; }
};

/// One repeat of the whole benchmark phase.
struct RepeatResult {
  int repeat = 0;
  double seconds = 0;
  std::optional<AppMetrics> app;        ///< absent without an application (or if it failed)
  std::vector<std::string> app_errors;  ///< non-zero exits, timeouts, missing output
  std::vector<WorkloadRun> workload_runs;
  bool interrupted = false;
};

/// Mean, min and max over repeats of one number (NaN values left out; n = values used).
struct Aggregate {
  std::string role;     ///< worker | endpoint | workload
  std::string subject;  ///< worker/endpoint id, or <workload>/<node>
  std::string metric;   ///< e.g. latency_avg_ms, seconds, failures
  double mean = 0, min = 0, max = 0;
  int n = 0;
};

struct BenchmarkResult {
  std::string application;  ///< "" when only workloads ran
  std::vector<RepeatResult> repeats;
  std::vector<Aggregate> aggregate;
  int failures = 0;  ///< failed counted workload runs + application errors
  bool interrupted = false;
};

/// Mean/min/max over the repeats of every per-worker, per-endpoint and per-workload number.
std::vector<Aggregate> aggregate(const std::vector<RepeatResult>& repeats);

/// metrics.csv: one row per (repeat, role, id) with every metric column, then the aggregate
/// rows (repeat = "all", stat = mean|min|max). Columns in docs/benchmark.md.
std::string metrics_csv(const BenchmarkResult& r);
/// metrics.json: {"schema": "continuum.benchmark.metrics/1", "application", "repeats": [...],
/// "aggregate": [...], "failures", "interrupted"}.
nlohmann::json metrics_json(const BenchmarkResult& r);
/// workloads/results.csv: one row per run (warm-ups included, flagged).
std::string workload_results_csv(const std::vector<RepeatResult>& repeats);
nlohmann::json workload_results_json(const std::vector<RepeatResult>& repeats);

/// Writes metrics.{csv,json}, workloads/results.{csv,json} and tables.txt atomically.
Status save_results(const BenchmarkResult& r, const std::filesystem::path& benchmark_dir);

/// The tables printed at the end: the original's worker/endpoint tables (per repeat, then the
/// mean over repeats when there are several), and a workload table.
std::string render_tables(const BenchmarkResult& r);
/// A Markdown section for summary.md: what ran, the tables, failures, where the files are.
std::string summary_markdown(const BenchmarkResult& r);

// ---- SSH workloads ------------------------------------------------------------------------

/// The nodes a workload's `nodes` list selects: node ids (cloud0), VM names (cloud0_<user>), tier
/// names (cloud, edge, endpoint) or "all"; in deployment order, without duplicates.
Expected<std::vector<const infra::DeployedNode*>> resolve_nodes(
    const std::vector<std::string>& selectors, const infra::Deployment& d);

/// The remote shell command for one run: `exec timeout` in the guest (so a hung command is killed
/// there, not only abandoned, and the session's process group, which Ctrl-C signals, holds it all),
/// `env` with every variable quoted, and the user's command given to /bin/sh -c as one quoted word.
/// Variable names must be shell identifiers.
Expected<std::string> render_workload_command(const config::SshWorkload& w);

/// Opens a Remote to a node; tests pass a fake.
using RemoteFactory = std::function<Expected<util::RemotePtr>(const infra::DeployedNode&)>;
/// util::ssh_connect with the deployment's key, pinned known_hosts and namespace.
RemoteFactory ssh_remote_factory(const infra::Deployment& d);

/// Runs one workload for one repeat: warm-ups then `repeat` counted runs per node, nodes in
/// parallel or one after the other. Output is saved under run_dir as described above. Stops
/// starting new runs once `interrupted` is set.
std::vector<WorkloadRun> run_workload(const config::SshWorkload& w, int repeat,
                                      const infra::Deployment& d,
                                      const std::filesystem::path& run_dir,
                                      const RemoteFactory& connect, record::EventLog* events,
                                      const std::atomic<bool>* interrupted);

// ---- the phase ------------------------------------------------------------------------------

/// Knobs for tests and dry runs; the defaults are what a real run uses.
struct Hooks {
  RemoteFactory connect;                           ///< empty: ssh_remote_factory(deployment)
  std::chrono::milliseconds poll{2000};            ///< how often remote programs are checked
  std::chrono::milliseconds start_timeout{60000};  ///< worker must subscribe within this
  std::string bin_dir;                             ///< where the guest programs are; "" = PATH
  std::string guest_dir = "continuum-bench";       ///< work dir in the guest (relative: home)
};

/// Runs the benchmark phase (plan.repeats times). Returns an Error only when nothing sensible can
/// run (no nodes to run on, an unknown node in a workload); failing runs are reported in the
/// result. With `interrupted` set, running programs are stopped, data so far saved, and the
/// result has interrupted = true.
Expected<BenchmarkResult> run(const config::Config& cfg, const plan::Plan& plan,
                              const infra::Deployment& deployment,
                              const std::filesystem::path& run_dir, record::EventLog* events,
                              const std::atomic<bool>* interrupted);
Expected<BenchmarkResult> run(const config::Config& cfg, const plan::Plan& plan,
                              const infra::Deployment& deployment,
                              const std::filesystem::path& run_dir, record::EventLog* events,
                              const std::atomic<bool>* interrupted, const Hooks& hooks);

}  // namespace continuum::benchmark

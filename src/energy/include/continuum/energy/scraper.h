#pragma once
// Background scraping of one Prometheus exporter per VM while the benchmark runs (docs/design.md
// §7).
//
//   auto targets = energy::make_targets(cfg.energy, plan, &deployment);
//   energy::Scraper scraper({.interval = cfg.energy.interval, .timeout =
//   cfg.energy.scrape_timeout}); TRY_STATUS(scraper.start(targets, run_dir, run_start));   //
//   run_start: events.jsonl's clock
//   ... benchmark ...
//   scraper.stop();
//
// One thread per target scrapes at a fixed cadence (ticks missed during a slow scrape are skipped,
// not bunched up). Samples go raw to <run>/energy/samples.csv, timestamped at the midpoint of the
// HTTP exchange on the same monotonic clock as events.jsonl, with one `up` row per scrape (1: the
// VM's energy data came, 0: it did not, and why) so that gaps stay visible afterwards. A target
// that fails is logged (once when it goes down, once when it comes back) and retried every tick; it
// never stops the benchmark. Afterwards judge_coverage() says whether each VM got enough samples:
// `continuum CONFIG` fails an energy run (exit 1, results kept) when one did not.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "continuum/config/config.h"
#include "continuum/energy/energy.h"
#include "continuum/energy/prometheus.h"
#include "continuum/infra/deployment.h"
#include "continuum/plan/plan.h"
#include "continuum/util/expected.h"

namespace continuum::energy {

struct Target {
  std::string vm;   ///< VM (domain) name, the key of every sample
  std::string url;  ///< http://host:port/path
  /// Which metrics are this VM's energy ([energy] exporter_kind; kind_spec()).
  config::ExporterKind kind = config::ExporterKind::scaphandre;
};

/// One target per plan node, in plan order, of kind `e.exporter_kind`. exporter=host:
/// http://host_address:(host_port_base+i) + path (one exporter per VM on consecutive ports, as
/// the original energy work ran Scaphandre); exporter=guest: http://<vm ip>:guest_port + path
/// (the deployment's address if given, else the plan's). Kepler is one exporter on the host that
/// names every VM (label vm_name): every VM's target is http://host_address:host_port_base + path.
std::vector<Target> make_targets(const config::Energy& e, const plan::Plan& p,
                                 const infra::Deployment* d = nullptr);

/// Which scraped samples are kept in samples.csv under Scaphandre: the host/socket/domain power
/// and energy metrics, Scaphandre's self-overhead metrics, and per-process power only when it
/// names a VM (`vmname`, hypervisor mode). Everything else (node-exporter's go_*, per-process rows
/// of every guest process) would make the file grow by megabytes per minute for nothing the
/// report uses. keep_sample() is the same for any kind.
bool keep_metric(std::string_view name, bool has_vmname);

/// Kept in samples.csv for VM `vm` under kind `k`: a metric with one of k.keep's prefixes (or
/// k.keep_if's, with its label), and, when the exporter is shared (k.vm_label), only the VM's own
/// series.
bool keep_sample(const KindSpec& k, const prom::Sample& s, std::string_view vm);

/// What one scrape's answer becomes: the kept samples as samples.csv rows plus the `up` row.
struct ScrapeRows {
  std::vector<SampleRow> rows;
  bool energy_sample = false;  ///< it had the VM's power or energy metric (the kind's)
  size_t parse_errors = 0;
};
/// The scraper's conversion of one exposition (answered at t / wall) for `target`: exposed so that
/// each kind's mapping can be tested on real exposition text.
ScrapeRows rows_from_exposition(const Target& target, std::string_view body, double t,
                                const std::string& wall);

struct ScraperOptions {
  double interval = 1.0;  ///< s between scrape starts
  double timeout = 2.0;   ///< s per HTTP request (connect + transfer)
  /// Network namespace (as `ip netns`) whose network the targets are in ("" = current): guests
  /// live in the run's namespace, so guest exporters are scraped from a thread inside it.
  std::string netns;
};

struct TargetStats {
  std::string vm, url;
  size_t scrapes_ok = 0, scrapes_failed = 0, samples = 0, parse_errors = 0;
  /// Scrapes that gave this VM's power or energy (its kind's metrics, wanted_metrics()): what
  /// the energy figures are made of. An exporter can answer 200 without them.
  size_t energy_scrapes = 0;
  std::string last_error;  ///< why the last scrape failed or gave no energy sample
};

/// Per VM: did the scraper get enough energy data? (An energy experiment without it is a failure.)
struct CoverageVerdict {
  std::string vm, url;
  size_t obtained = 0;  ///< scrapes that gave a power or energy sample
  double expected = 0;  ///< scrapes the window allows: max(1, floor(window / interval))
  double coverage = 0;  ///< min(1, obtained / expected)
  bool ok = true;       ///< coverage >= min_coverage
  std::string reason;   ///< when not ok: the exporter's last error
};

/// Judges every target's coverage over the scraped window against `min_coverage`
/// ([energy] min_coverage).
std::vector<CoverageVerdict> judge_coverage(const std::vector<TargetStats>& stats, double window_s,
                                            double interval_s, double min_coverage);

/// The failure message naming each VM below the threshold, its exporter URL, its coverage and
/// the reason; "" when every VM is fine.
std::string coverage_failure(const std::vector<CoverageVerdict>& verdicts, double min_coverage);

class Scraper;
/// After scraper.stop(): judge_coverage over its window; an Error (exit code 1) with
/// coverage_failure's message when a VM is below `min_coverage`. `verdicts` gets every VM's
/// verdict (for the event log).
Status check_coverage(const Scraper& scraper, double interval_s, double min_coverage,
                      std::vector<CoverageVerdict>* verdicts = nullptr);

class Scraper {
 public:
  explicit Scraper(ScraperOptions opts = {});
  ~Scraper();
  Scraper(const Scraper&) = delete;
  Scraper& operator=(const Scraper&) = delete;

  /// Opens <run_dir>/energy/samples.csv (appends; header if new) and starts one thread per
  /// target. An Error only if the file cannot be opened or the scraper already runs.
  Status start(const std::vector<Target>& targets, const std::filesystem::path& run_dir,
               std::chrono::steady_clock::time_point run_start);
  /// Stops and joins the threads, closes the file. Each target is scraped once more on the way
  /// out (at most `timeout` s), so the samples reach the stop and the last phase before it is
  /// covered to its end.
  void stop();
  bool running() const { return !threads_.empty(); }
  /// Per-target counters (safe to call while running).
  std::vector<TargetStats> stats() const;
  /// Seconds from start() to stop() (to now while running); 0 if never started.
  double window_seconds() const;

 private:
  void run_target(size_t i);
  bool enter_netns(size_t i, const std::string& url);
  void count_answer(size_t i, const std::string& url, size_t kept, size_t parse_errors,
                    bool energy_sample, bool& down);
  void count_failure(size_t i, const Target& target, const std::string& err, bool& down);
  void write_rows(const std::string& rows);

  ScraperOptions opts_;
  std::vector<Target> targets_;
  std::chrono::steady_clock::time_point run_start_;
  std::chrono::steady_clock::time_point started_{}, stopped_{};
  std::vector<std::thread> threads_;
  mutable std::mutex mu_;  // stats_, file_
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<TargetStats> stats_;
  std::FILE* file_ = nullptr;
};

}  // namespace continuum::energy

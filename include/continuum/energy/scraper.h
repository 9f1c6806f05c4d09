#pragma once
// Background scraping of one Prometheus exporter per VM while the benchmark runs (DESIGN.md §7).
//
//   auto targets = energy::make_targets(cfg.energy, plan, &deployment);
//   energy::Scraper scraper({.interval = cfg.energy.interval, .timeout = cfg.energy.scrape_timeout});
//   TRY_STATUS(scraper.start(targets, run_dir, run_start));   // run_start: events.jsonl's clock
//   ... benchmark ...
//   scraper.stop();
//
// One thread per target scrapes at a fixed cadence (ticks missed during a slow scrape are skipped,
// not bunched up). Samples go raw to <run>/energy/samples.csv, timestamped at the midpoint of the
// HTTP exchange on the same monotonic clock as events.jsonl. A target that fails is logged (once
// when it goes down, once when it comes back) and retried every tick; it never stops the benchmark.
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
#include "continuum/infra/deployment.h"
#include "continuum/plan/plan.h"
#include "continuum/util/expected.h"

namespace continuum::energy {

struct Target {
  std::string vm;   ///< VM (domain) name, the key of every sample
  std::string url;  ///< http://host:port/path
};

/// One target per plan node, in plan order. exporter=host: http://host_address:(host_port_base+i)
/// + path (one Scaphandre per VM on consecutive ports, as the original energy work ran them);
/// exporter=guest: http://<vm ip>:guest_port + path (the deployment's address if given, else the
/// plan's).
std::vector<Target> make_targets(const config::Energy& e, const plan::Plan& p,
                                 const infra::Deployment* d = nullptr);

/// Which scraped samples are kept in samples.csv: the host/socket/domain power and energy
/// metrics, Scaphandre's self-overhead metrics, and per-process power only when it names a VM
/// (`vmname`, hypervisor mode). Everything else (node-exporter's go_*, per-process rows of every
/// guest process) would make the file grow by megabytes per minute for nothing the report uses.
bool keep_metric(std::string_view name, bool has_vmname);

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
  std::string last_error;
};

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
  /// Stops and joins the threads (an in-flight request ends within its timeout), closes the file.
  void stop();
  bool running() const { return !threads_.empty(); }
  /// Per-target counters (safe to call while running).
  std::vector<TargetStats> stats() const;

 private:
  void run_target(size_t i);
  void write_rows(const std::string& rows);

  ScraperOptions opts_;
  std::vector<Target> targets_;
  std::chrono::steady_clock::time_point run_start_;
  std::vector<std::thread> threads_;
  mutable std::mutex mu_;  // stats_, file_
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<TargetStats> stats_;
  std::FILE* file_ = nullptr;
};

}  // namespace continuum::energy

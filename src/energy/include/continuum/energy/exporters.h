#pragma once
// The per-VM host exporters of `[energy] exporter_command`: what the seed's users started by hand
// (`scaphandre prometheus ... &` once per VM on ports 8080, 8081, ...) and ended with
// `pkill -f scaphandre`, which also killed exporters that were not theirs. Here each exporter is
// this process's child, started without a shell from the configured template, its output kept in
// <run>/energy/exporters/<vm>.log, awaited until it answers, and stopped by PID.
//
//   auto launches = TRY(energy::plan_exporters(cfg, plan, run_dir));
//   auto set = TRY(energy::ExporterSet::start(launches, cfg.energy.exporter_start_timeout,
//                                             record_in_ledger, util::interrupt_flag()));
//   ... scrape ...
//   for (auto& u : set->stop()) ...   // CPU time each exporter used
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "continuum/config/config.h"
#include "continuum/plan/plan.h"
#include "continuum/util/background.h"
#include "continuum/util/expected.h"

namespace continuum::energy {

/// One VM's exporter, as [energy] exporter_command starts it.
struct ExporterLaunch {
  std::string vm;   ///< domain name (the scraper's key)
  int index = 0;    ///< plan order
  int port = 0;     ///< host_port_base + index
  std::string url;  ///< what the scraper asks: http://host_address:port + path
  std::map<std::string, std::string> env;  ///< leading NAME=value words of the template
  std::vector<std::string> argv;           ///< the rest, placeholders expanded
  std::filesystem::path log;               ///< <run>/energy/exporters/<vm>.log
};

/// Expands the template for every VM in plan order, with the ports and URLs make_targets uses
/// (exporter = host). Leading words NAME=value set the exporter's environment, as in a shell
/// (e.g. SCAPHANDRE_POWERCAP_PATH={share}). An Error when the template is empty or expands wrong.
Expected<std::vector<ExporterLaunch>> plan_exporters(const config::Config& cfg, const plan::Plan& p,
                                                     const std::filesystem::path& run_dir);

/// What an exporter cost while it ran (its own CPU time, from /proc), and whether it died first.
struct ExporterUsage {
  std::string vm;
  pid_t pid = -1;
  double cpu_seconds = 0;   ///< user + system time of the exporter process
  double wall_seconds = 0;  ///< from start to stop (or to when it was found dead)
  double cpu_percent() const { return wall_seconds > 0 ? 100 * cpu_seconds / wall_seconds : 0; }
  /// Set when it had exited before stop(): its exit status (128 + signal when killed).
  std::optional<int> died_with;
};

class ExporterSet {
 public:
  /// Called once per started exporter, with its identity (the ledger records it: `destroy` and a
  /// later run stop it by PID and start time if this process dies first). An error from it stops
  /// everything started so far.
  using OnStarted = std::function<Status(const ExporterLaunch&, const util::ProcessIdentity&)>;
  /// Called for each exporter once it is gone (the ledger marks it removed).
  using OnStopped = std::function<void(const ExporterLaunch&)>;

  /// Starts every exporter, then waits until each answers its URL with HTTP 200, at most
  /// `timeout_s` in all. An exporter that exits or does not answer in time is an Error naming the
  /// VM, the command and the end of its log; the ones already started are stopped then. `cancel`
  /// (Ctrl-C) ends the wait the same way.
  static Expected<std::unique_ptr<ExporterSet>> start(const std::vector<ExporterLaunch>& launches,
                                                      double timeout_s, const OnStarted& on_started,
                                                      OnStopped on_stopped,
                                                      const std::atomic<bool>* cancel = nullptr);
  ~ExporterSet();  ///< stop()
  ExporterSet(const ExporterSet&) = delete;
  ExporterSet& operator=(const ExporterSet&) = delete;

  /// Stops every exporter by PID (SIGTERM, SIGKILL after 5 s). Idempotent; the usage of each,
  /// measured just before it was stopped, in launch order (empty on the second call).
  std::vector<ExporterUsage> stop();
  const std::vector<ExporterLaunch>& launches() const { return launches_; }
  /// The PIDs, in launch order (tests end one to see the run go on).
  std::vector<pid_t> pids() const;

 private:
  ExporterSet() = default;
  std::vector<ExporterLaunch> launches_;
  std::vector<std::unique_ptr<util::Background>> procs_;
  std::vector<std::chrono::steady_clock::time_point> started_;
  OnStopped on_stopped_;
};

/// One line per exporter for the log and summary.md: VM, PID, CPU %, and how it ended.
std::string describe_usage(const std::vector<ExporterUsage>& usage);

}  // namespace continuum::energy

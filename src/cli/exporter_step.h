#pragma once
// The exporters step of `continuum CONFIG` ([energy] exporter_command, docs/energy.md): one host
// exporter per VM started from the configured template right after the VMs are up, each recorded
// in the ledger (PID and start time) as soon as it runs, so that the end of the run, a failure,
// Ctrl-C and `continuum destroy` all stop exactly these processes and no others.
#include <filesystem>
#include <memory>
#include <vector>

#include "continuum/config/config.h"
#include "continuum/energy/exporters.h"
#include "continuum/infra/deployment.h"
#include "continuum/plan/plan.h"
#include "continuum/record/events.h"

namespace continuum::cli {

class ExporterService {
 public:
  /// Starts every VM's exporter and waits until each answers (see energy::ExporterSet::start).
  static Expected<std::unique_ptr<ExporterService>> start(const config::Config& cfg,
                                                          const plan::Plan& p,
                                                          const infra::Deployment& d,
                                                          record::EventLog* events);
  ~ExporterService() { stop(); }
  ExporterService(const ExporterService&) = delete;
  ExporterService& operator=(const ExporterService&) = delete;

  /// Stops the exporters, marks them removed in the ledger, logs and records (event `energy`
  /// `exporters_stopped`) what each cost and which had died before the end. Idempotent.
  void stop();
  /// What stop() measured (empty before).
  const std::vector<energy::ExporterUsage>& usage() const { return usage_; }

 private:
  ExporterService() = default;
  std::unique_ptr<energy::ExporterSet> set_;
  std::vector<energy::ExporterUsage> usage_;
  record::EventLog* events_ = nullptr;
};

}  // namespace continuum::cli

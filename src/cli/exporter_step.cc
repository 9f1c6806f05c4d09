#include "exporter_step.h"

#include <spdlog/spdlog.h>

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "continuum/infra/ledger.h"
#include "continuum/util/interrupt.h"
#include "continuum/util/strings.h"

namespace continuum::cli {
namespace fs = std::filesystem;

Expected<std::unique_ptr<ExporterService>> ExporterService::start(const config::Config& cfg,
                                                                  const plan::Plan& p,
                                                                  const infra::Deployment& d,
                                                                  record::EventLog* events) {
  auto launches = TRY(energy::plan_exporters(cfg, p, d.run_dir));
  const fs::path ledger_file = d.run_dir / "state.json";
  // Ledger ids by VM, shared by the two callbacks (the stop callback outlives this function).
  auto ids = std::make_shared<std::map<std::string, size_t>>();
  auto on_started = [ledger_file, ids](const energy::ExporterLaunch& l,
                                       const util::ProcessIdentity& id) -> Status {
    auto ledger = TRY(infra::Ledger::load(ledger_file));
    infra::Resource r;
    r.kind = infra::ResourceKind::process;
    r.name = id.str();
    r.node = l.vm;
    const size_t lid = TRY(ledger->intend(r));
    TRY_STATUS(ledger->set_state({lid}, infra::ResourceState::created));
    (*ids)[l.vm] = lid;
    return {};
  };
  auto on_stopped = [ledger_file, ids](const energy::ExporterLaunch& l) {
    auto it = ids->find(l.vm);
    if (it == ids->end()) return;
    auto ledger = infra::Ledger::load(ledger_file);
    Status st = ledger ? (*ledger)->set_state({it->second}, infra::ResourceState::removed)
                       : Status(ledger.error());
    if (!st)
      spdlog::warn("exporter of {} stopped, but the ledger says otherwise: {}", l.vm,
                   st.error().message);
    ids->erase(it);
  };
  spdlog::info("energy: starting {} exporter(s): {} ...", launches.size(),
               util::shell_join(launches.front().argv));
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<ExporterService> s(new ExporterService());
  s->events_ = events;
  s->set_ = TRY(energy::ExporterSet::start(launches, cfg.energy.exporter_start_timeout, on_started,
                                           on_stopped, util::interrupt_flag()));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  nlohmann::json list = nlohmann::json::array();
  for (size_t i = 0; i < s->set_->launches().size(); ++i) {
    const auto& l = s->set_->launches()[i];
    list.push_back({{"vm", l.vm},
                    {"pid", s->set_->pids()[i]},
                    {"url", l.url},
                    {"argv", l.argv},
                    {"log", l.log.string()}});
  }
  spdlog::info("energy: {} exporter(s) answering after {:.1f} s (logs in {})", list.size(), secs,
               (d.run_dir / "energy" / "exporters").string());
  if (events)
    events->emit("energy", "exporters_started", "", -1, "",
                 {{"exporters", list}, {"seconds", secs}});
  return s;
}

void ExporterService::stop() {
  if (!set_) return;
  usage_ = set_->stop();
  set_.reset();
  nlohmann::json list = nlohmann::json::array();
  for (const auto& u : usage_) {
    nlohmann::json j = {{"vm", u.vm},
                        {"pid", u.pid},
                        {"cpu_seconds", u.cpu_seconds},
                        {"wall_seconds", u.wall_seconds},
                        {"cpu_percent", u.cpu_percent()}};
    if (u.died_with) {
      j["died_with"] = *u.died_with;
      spdlog::warn(
          "energy: the exporter of {} (PID {}) had exited before the end of the run "
          "(status {}); its samples stop where it died",
          u.vm, u.pid, *u.died_with);
    }
    list.push_back(std::move(j));
  }
  spdlog::info("energy: exporters stopped:\n{}", energy::describe_usage(usage_));
  if (events_) events_->emit("energy", "exporters_stopped", "", -1, "", {{"exporters", list}});
}

}  // namespace continuum::cli

// `continuum run CONFIG` (also `continuum CONFIG`): plan -> infrastructure -> (software ->
// benchmark -> report, wired by their modules) in one run directory (DESIGN.md §1, §8).
// This first version does the infrastructure phase; later phases are added after it.
#include <chrono>
#include <iostream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "commands.h"
#include "continuum/config/config.h"
#include "continuum/infra/apply.h"
#include "continuum/infra/destroy.h"
#include "continuum/plan/plan.h"
#include "continuum/report/events.h"
#include "continuum/report/run_dir.h"
#include "continuum/util/files.h"
#include "continuum/util/strings.h"
#include "environment.h"

namespace continuum::cli {

int cmd_run(const Options& o) {
  auto start = std::chrono::steady_clock::now();
  auto cfg = config::load(o.config);
  if (!cfg) {
    std::cerr << cfg.error().message << '\n';
    return cfg.error().exit_code;
  }
  for (const auto& w : cfg->warnings) spdlog::warn("{}", w);
  auto plan = plan::make(*cfg, probe_environment(*cfg));
  if (!plan) {
    std::cerr << plan.error().message << '\n';
    return plan.error().exit_code;
  }
  auto run = report::create_run_dir(o.output_dir, plan->config_name, std::chrono::system_clock::now());
  if (!run) {
    spdlog::error("{}", run.error().message);
    return 1;
  }
  const std::filesystem::path run_dir = std::filesystem::absolute(*run);
  util::add_log_file(run_dir / "continuum.log");
  spdlog::info("run directory: {}", run_dir.string());
  if (auto text = util::read_file(o.config); text.ok())
    (void)util::write_file_atomic(run_dir / "config.cfg", *text);
  if (auto s = util::write_file_atomic(run_dir / "plan.json", plan::to_json(*plan).dump(2) + "\n"); !s) {
    spdlog::error("{}", s.error().message);
    return 1;
  }
  auto events = report::EventLog::open(run_dir / "events.jsonl", start);
  if (!events) {
    spdlog::error("{}", events.error().message);
    return 1;
  }
  infra::install_interrupt_handlers();
  auto opts = infra::apply_options(*cfg, std::filesystem::absolute(o.output_dir));
  auto dep = infra::apply(*plan, run_dir, opts, events->get());
  if (!dep) {
    spdlog::error("infrastructure phase failed: {}", dep.error().message);
    return dep.error().exit_code;
  }

  if (!cfg->infrastructure.infra_only)
    spdlog::warn("software and benchmark phases are not wired into `run` yet; the VMs stay up");

  if (cfg->infrastructure.delete_vms) {
    infra::DestroyOptions d;
    d.events = events->get();
    auto r = infra::destroy_run(run_dir, d);
    if (!r || !r->errors.empty()) {
      spdlog::error("delete = True: removing the VMs failed; run `continuum destroy {}`", run_dir.string());
      return 1;
    }
    spdlog::info("Finished (VMs deleted)");
    return 0;
  }
  std::cout << "To access the VMs:\n";
  for (const auto& n : dep->nodes)
    std::cout << "  " << util::shell_join({"ssh", "-i", dep->private_key.string(), "-o",
                                           "UserKnownHostsFile=" + dep->known_hosts.string(),
                                           n.ssh_user + "@" + n.ip})
              << '\n';
  std::cout << "To remove them: continuum destroy " << util::shell_quote(run_dir.string()) << '\n';
  return 0;
}

}  // namespace continuum::cli

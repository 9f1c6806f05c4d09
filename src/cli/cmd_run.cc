// `continuum CONFIG`: the whole pipeline (docs/design.md §2, docs/run.md). This file only wires the
// phases together; each phase lives in its module and reports through Expected/Status.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.h"
#include "continuum/benchmark/benchmark.h"
#include "continuum/config/config.h"
#include "continuum/config/preflight.h"
#include "continuum/energy/host_feed.h"
#include "continuum/energy/scraper.h"
#include "continuum/infra/apply.h"
#include "continuum/infra/clock.h"
#include "continuum/infra/destroy.h"
#include "continuum/infra/netem.h"
#include "continuum/infra/run_lock.h"
#include "continuum/plan/plan.h"
#include "continuum/report/events.h"
#include "continuum/report/render.h"
#include "continuum/report/run_dir.h"
#include "continuum/software/reachability.h"
#include "continuum/software/software.h"
#include "continuum/util/files.h"
#include "continuum/util/interrupt.h"
#include "continuum/util/strings.h"
#include "environment.h"

namespace continuum::cli {
namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kInterrupted = 130;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct PhaseTimes {
  std::vector<std::pair<std::string, double>> list;
  void add(const std::string& phase, double s) {
    list.emplace_back(phase, s);
    spdlog::info("{} phase took {:.1f} s", phase, s);
  }
};

std::string access_lines(const infra::Deployment& d) {
  std::ostringstream out;
  out << "To access the VMs:\n";
  for (const auto& n : d.nodes) {
    out << "  "
        << util::shell_join({"ssh", "-i", d.private_key.string(), "-o",
                             "UserKnownHostsFile=" + d.known_hosts.string(),
                             n.ssh_user + "@" + n.ip});
    if (!d.netns.empty()) out << "   (from network namespace " << d.netns << ")";
    out << "\n";
  }
  out << "To remove them: continuum destroy " << util::shell_quote(d.run_dir.string()) << "\n";
  return out.str();
}

std::string summary_md(const config::Config& cfg, const plan::Plan& p, const fs::path& run,
                       const PhaseTimes& times, const std::string& outcome,
                       const std::string& network_table, const std::string& benchmark_md,
                       const std::string& report_md) {
  std::ostringstream s;
  s << "# continuum run: " << p.config_name << "\n\n";
  s << "- configuration: `" << cfg.file.string() << "` (copied to `config.cfg`)\n";
  s << "- run directory: `" << run.string() << "`\n";
  s << "- outcome: **" << outcome << "**\n";
  s << "- user: " << p.user << ", mode: " << p.mode << ", nodes: " << p.nodes.size() << "\n\n";
  s << "## Phases\n\n| phase | wall time (s) |\n|---|---|\n";
  for (const auto& [ph, sec] : times.list) s << fmt::format("| {} | {:.1f} |\n", ph, sec);
  s << "\n## Plan\n\n```\n" << plan::summary(p) << "```\n";
  if (!network_table.empty())
    s << "\n## Network (configured vs measured)\n\n```\n" << network_table << "```\n";
  if (!benchmark_md.empty()) s << "\n" << benchmark_md << "\n";
  if (!report_md.empty()) s << "\n" << report_md << "\n";
  s << "\n## Files\n\n"
       "- `events.jsonl`: phase and workload boundaries\n"
       "- `continuum.log`: full debug log\n"
       "- `state.json`: every resource created (used by `continuum destroy`)\n"
       "- `infrastructure/`, `software/`, `benchmark/`, `energy/`, `plots/`\n";
  return s.str();
}

/// The energy feed of [energy] host_feed, started (its first step has written every VM's file).
Expected<std::unique_ptr<energy::HostFeed>> start_host_feed(const config::Config& cfg,
                                                            const infra::ApplyOptions& a,
                                                            const infra::Deployment& d) {
  energy::HostFeedOptions fo;
  fo.powercap_path = cfg.energy.powercap_path;
  fo.share_root = a.virtiofs_host_dir;
  fo.interval = cfg.energy.interval;
  for (const auto& n : d.nodes) fo.vms.push_back(n.name);
  auto feed = std::make_unique<energy::HostFeed>(
      fo, TRY(energy::libvirt_cpu_source(cfg.infrastructure.libvirt_uri)));
  TRY_STATUS(feed->start());
  return feed;
}

}  // namespace

int cmd_run(const Options& o) {
  auto cfg = config::load(o.config);
  if (!cfg) {
    std::cerr << cfg.error().message << (cfg.error().message.ends_with('\n') ? "" : "\n");
    return cfg.error().exit_code;
  }
  for (const auto& w : cfg->warnings) spdlog::warn("{}", w);
  // What this build cannot run is refused here, before the plan probes the host and before the
  // run lock, the run directory or any libvirt connection exists
  // (include/continuum/config/preflight.h).
  const config::Preflight pre = config::preflight(*cfg);
  for (const auto& n : pre.notes) spdlog::warn("{}", n);
  if (!pre.ok()) {
    for (const auto& r : pre.refusals) std::cerr << r << "\n";
    std::cerr << cfg->file.string()
              << ": refused before anything was created; docs/compatibility.md lists "
              << "what this build runs\n";
    return 2;
  }
  auto p = plan::make(*cfg, probe_environment(*cfg));
  if (!p) {
    std::cerr << p.error().message << "\n";
    return p.error().exit_code;
  }

  // One live run per user and hypervisor (docs/run.md): refused here, before anything exists.
  // Held until cmd_run returns; the kernel drops it if the process dies.
  auto run_lock = infra::RunLock::acquire(*p, infra::default_lock_dir());
  if (!run_lock) {
    spdlog::error("{}", run_lock.error().message);
    return run_lock.error().exit_code;
  }

  const auto run_start = Clock::now();
  auto run_dir =
      report::create_run_dir(o.output_dir, p->config_name, std::chrono::system_clock::now());
  if (!run_dir) {
    spdlog::error("{}", run_dir.error().message);
    return 1;
  }
  const fs::path run = fs::absolute(*run_dir);
  if (auto st = run_lock->attach_run_dir(run); !st) {
    spdlog::error("{}", st.error().message);
    return 1;
  }
  util::add_log_file(run / "continuum.log");
  spdlog::info("run directory: {}", run.string());
  if (auto text = util::read_file(o.config); text) {
    if (auto st = util::write_file_atomic(run / "config.cfg", *text); !st)
      spdlog::warn("{}", st.error().message);
  }
  if (auto st = util::write_file_atomic(run / "plan.json", plan::to_json(*p).dump(2) + "\n"); !st) {
    spdlog::error("{}", st.error().message);
    return 1;
  }
  auto events_or = report::EventLog::open(run / "events.jsonl", run_start);
  if (!events_or) {
    spdlog::error("{}", events_or.error().message);
    return 1;
  }
  report::EventLog* events = events_or->get();
  util::install_interrupt_handlers();
  events->emit("run", "start", p->application, -1, "", {{"config", cfg->file.string()}});

  PhaseTimes times;
  std::string outcome = "success";
  std::string network_table, benchmark_md, report_md;
  int rc = 0;
  bool deployed = false;
  infra::Deployment deployment;
  const infra::ApplyOptions apply_opt = infra::apply_options(*cfg, fs::absolute(o.output_dir));

  // 1. Infrastructure. apply() rolls its own partial work back on failure or Ctrl-C.
  {
    auto t0 = Clock::now();
    spdlog::info("infrastructure: deploying {} VM(s)", p->nodes.size());
    auto dep = infra::apply(*p, run, apply_opt, events);
    times.add("infrastructure", seconds_since(t0));
    if (!dep) {
      spdlog::error("{}", dep.error().message);
      outcome = "infrastructure failed";
      rc = util::interrupt_requested() ? kInterrupted : dep.error().exit_code == 2 ? 2 : 1;
    } else {
      deployment = std::move(*dep);
      deployed = true;
    }
  }

  // 1a. Can the guests reach what their playbooks download? Seconds now instead of an apt
  // timeout in the software phase (include/continuum/software/reachability.h).
  if (rc == 0 && !cfg->infrastructure.infra_only && !util::interrupt_requested()) {
    auto t0 = Clock::now();
    auto reach = software::check_reachability(*p, *cfg, deployment, events);
    if (!reach) {
      times.add("reachability", seconds_since(t0));
      spdlog::error("{}", reach.error().message);
      outcome = "guests cannot reach the playbooks' download sources";
      rc = util::interrupt_requested() ? kInterrupted : 1;
    } else if (reach->skipped) {
      spdlog::info("reachability check skipped: {}", reach->skip_reason);
    } else {
      times.add("reachability", seconds_since(t0));
      spdlog::info(
          "reachability: {} source(s) reachable from {} guest(s), {} already satisfied in the "
          "image",
          reach->probed, reach->guests, reach->satisfied);
    }
  }

  // 1b. Guest clocks aligned with the host's: the benchmark subtracts timestamps taken in
  // different VMs (include/continuum/infra/clock.h). Before netem, whose jitter would blur it.
  if (rc == 0 && !util::interrupt_requested()) {
    auto t0 = Clock::now();
    infra::sync_clocks(deployment, run, events);
    times.add("clocks", seconds_since(t0));
  }

  // 2. Network emulation, measured.
  if (rc == 0 && cfg->infrastructure.network_emulation && !util::interrupt_requested()) {
    auto t0 = Clock::now();
    auto nr = infra::apply_and_verify(*p, deployment, run, events);
    times.add("network", seconds_since(t0));
    if (!nr) {
      spdlog::error("network emulation: {}", nr.error().message);
      outcome = "network emulation failed";
      rc = util::interrupt_requested() ? kInterrupted : 1;
    } else {
      network_table = infra::format_table(nr->links);
      if (!network_table.empty())
        spdlog::info("network, configured vs measured:\n{}", network_table);
      for (const auto& w : nr->warnings) spdlog::warn("{}", w);
    }
  }

  // 2b. The host-side energy feed ([energy] host_feed): per-VM energy_uj in each VM's virtiofs
  // share, running before the software phase so that the guests' `scaphandre --vm` finds its
  // tree when it starts, and until the end of the run. Without a RAPL counter on the host it
  // cannot work: that is an error rather than a run whose energy silently stays 0.
  std::unique_ptr<energy::HostFeed> host_feed;
  if (rc == 0 && cfg->energy.enabled && cfg->energy.host_feed) {
    auto feed = start_host_feed(*cfg, apply_opt, deployment);
    if (!feed) {
      spdlog::error("energy host_feed: {}", feed.error().message);
      outcome = "energy host feed failed";
      rc = 1;
    } else {
      host_feed = std::move(*feed);
      spdlog::info("energy: host feed writing {}/<vm>/intel-rapl:0/energy_uj every {} s",
                   apply_opt.virtiofs_host_dir.string(), util::format_number(cfg->energy.interval));
    }
  }

  // 3. Software.
  if (rc == 0 && !cfg->infrastructure.infra_only && !util::interrupt_requested()) {
    auto t0 = Clock::now();
    auto st = software::install(*p, *cfg, deployment, run, events);
    times.add("software", seconds_since(t0));
    if (!st) {
      spdlog::error("software: {}", st.error().message);
      outcome = "software installation failed";
      rc = util::interrupt_requested() ? kInterrupted : 1;
    }
  }

  // 4. Benchmark, with the energy scraper around it.
  const bool run_benchmark =
      cfg->benchmark && !cfg->infrastructure.infra_only && !cfg->benchmark->resource_manager_only;
  if (rc == 0 && run_benchmark && !util::interrupt_requested()) {
    auto t0 = Clock::now();
    energy::Scraper scraper(
        energy::ScraperOptions{cfg->energy.interval, cfg->energy.scrape_timeout,
                               cfg->energy.exporter == "guest" ? deployment.netns : ""});
    // An energy experiment without its scraper would measure nothing: no benchmark then.
    if (cfg->energy.enabled) {
      auto targets = energy::make_targets(cfg->energy, *p, &deployment);
      if (auto st = scraper.start(targets, run, run_start); !st) {
        spdlog::error("energy: scraper not started: {}", st.error().message);
        outcome = "energy scraper failed";
        rc = 1;
      }
    }
    Expected<benchmark::BenchmarkResult> res = make_error("not started: the energy scraper failed");
    if (rc == 0) res = benchmark::run(*cfg, *p, deployment, run, events, util::interrupt_flag());
    scraper.stop();
    times.add("benchmark", seconds_since(t0));
    if (rc != 0) {
      // The scraper's failure is the outcome, already logged.
    } else if (!res) {
      spdlog::error("benchmark: {}", res.error().message);
      outcome = "benchmark failed";
      rc = util::interrupt_requested() ? kInterrupted : 1;
    } else {
      if (auto st = benchmark::save_results(*res, run / "benchmark"); !st)
        spdlog::warn("{}", st.error().message);
      std::cout << benchmark::render_tables(*res) << std::flush;
      benchmark_md = benchmark::summary_markdown(*res);
      if (res->interrupted) {
        outcome = "interrupted";
        rc = kInterrupted;
      } else if (res->failures > 0) {
        outcome = "benchmark finished with " + std::to_string(res->failures) + " failure(s)";
        rc = 1;
      }
    }
    // No energy data is a failed energy experiment: per VM, too few scrapes gave a sample.
    if (cfg->energy.enabled && scraper.window_seconds() > 0 && rc != kInterrupted) {
      std::vector<energy::CoverageVerdict> verdicts;
      auto covered = energy::check_coverage(scraper, cfg->energy.interval, cfg->energy.min_coverage,
                                            &verdicts);
      nlohmann::json per_vm = nlohmann::json::array();
      for (const auto& v : verdicts)
        per_vm.push_back({{"vm", v.vm},
                          {"url", v.url},
                          {"coverage", v.coverage},
                          {"ok", v.ok},
                          {"reason", v.reason}});
      events->emit("energy", "coverage", "", -1, "",
                   {{"min_coverage", cfg->energy.min_coverage}, {"vms", per_vm}});
      if (!covered) {
        spdlog::error("{}", covered.error().message);
        if (rc == 0) {
          outcome = "energy data missing";
          rc = 1;
        }
      }
    }
  }
  if (rc == 0 && util::interrupt_requested()) {
    outcome = "interrupted";
    rc = kInterrupted;
  }

  if (host_feed) host_feed->stop();

  // 5. Report: energy per phase and plots from what was saved (also after a failure: partial
  // data is still worth a look).
  {
    auto t0 = Clock::now();
    auto rep = report::render(run, {.energy_enabled = cfg->energy.enabled});
    times.add("report", seconds_since(t0));
    if (!rep) {
      spdlog::warn("report: {}", rep.error().message);
    } else {
      for (const auto& w : rep->warnings) spdlog::info("report: {}", w);
      report_md = rep->summary_md;
    }
  }

  // 6. Teardown or access hints.
  // Deployment failures were already rolled back by apply(); after that `delete` decides, also on
  // Ctrl-C (docs/run.md), so an interrupted experiment can still be inspected.
  const bool destroy_now = deployed && cfg->infrastructure.delete_vms;
  if (destroy_now) {
    auto t0 = Clock::now();
    infra::DestroyOptions dopt;
    dopt.events = events;
    auto d = infra::destroy_run(run, dopt);
    times.add("destroy", seconds_since(t0));
    if (!d || !d->errors.empty()) {
      spdlog::error("delete = True: removing the VMs failed{}; retry with: continuum destroy {}",
                    d ? "" : ": " + d.error().message, run.string());
      if (rc == 0) rc = 1;
    }
  } else if (deployed) {
    std::cout << access_lines(deployment) << std::flush;
  }

  events->emit("run", "end", p->application, -1, "", {{"outcome", outcome}, {"exit_code", rc}});
  if (auto st = util::write_file_atomic(
          run / "summary.md",
          summary_md(*cfg, *p, run, times, outcome, network_table, benchmark_md, report_md));
      !st)
    spdlog::warn("{}", st.error().message);
  spdlog::info("{} in {:.1f} s; run directory {}", outcome, seconds_since(run_start), run.string());
  return rc;
}

}  // namespace continuum::cli

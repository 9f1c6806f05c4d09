// `continuum CONFIG`: the whole pipeline (docs/design.md §2, docs/run.md). This file only wires the
// phases together; each phase lives in its module and reports through Expected/Status.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.h"
#include "container_step.h"
#include "continuum/benchmark/benchmark.h"
#include "continuum/config/config.h"
#include "continuum/config/preflight.h"
#include "continuum/energy/host_feed.h"
#include "continuum/energy/scraper.h"
#include "continuum/infra/apply.h"
#include "continuum/infra/clock.h"
#include "continuum/infra/destroy.h"
#include "continuum/infra/environment_probe.h"
#include "continuum/infra/hypervisor.h"
#include "continuum/infra/netem.h"
#include "continuum/infra/resource_check.h"
#include "continuum/infra/run_lock.h"
#include "continuum/plan/plan.h"
#include "continuum/record/events.h"
#include "continuum/record/run_dir.h"
#include "continuum/report/render.h"
#include "continuum/software/reachability.h"
#include "continuum/software/software.h"
#include "continuum/util/files.h"
#include "continuum/util/interrupt.h"
#include "continuum/util/strings.h"
#include "environment.h"
#include "exporter_step.h"

namespace continuum::cli {
namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

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
                       const std::string& network_table, const std::string& resources_table,
                       const std::string& benchmark_md, const std::string& report_md) {
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
  if (!resources_table.empty())
    s << "\n## VM resources (configured vs measured, infrastructure/resources.csv)\n\n```\n"
      << resources_table << "```\n";
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
                                                            const infra::Deployment& d,
                                                            Clock::time_point run_start) {
  energy::HostFeedOptions fo;
  fo.record_csv = d.run_dir / "energy" / "feed.csv";  // t on events.jsonl's clock (run_start)
  fo.run_start = run_start;
  fo.powercap_path = cfg.energy.powercap_path;
  fo.share_root = a.virtiofs_host_dir;
  fo.interval = cfg.energy.interval;
  for (const auto& n : d.nodes) fo.vms.push_back(n.name);
  auto feed = std::make_unique<energy::HostFeed>(
      fo, TRY(energy::libvirt_cpu_source(cfg.infrastructure.libvirt_uri)));
  TRY_STATUS(feed->start());
  return feed;
}

/// What the phases share: the inputs, the run record, and what each phase leaves for the next.
struct Run {
  Run(const config::Config& c, const plan::Plan& p) : cfg(c), plan(p) {}
  const config::Config& cfg;
  const plan::Plan& plan;
  fs::path dir;
  record::EventLog* events = nullptr;
  infra::ApplyOptions apply_opt;
  Clock::time_point start = Clock::now();

  infra::Deployment deployment;
  bool deployed = false;
  std::unique_ptr<energy::HostFeed> host_feed;
  std::unique_ptr<ContainerService> containers;
  std::unique_ptr<ExporterService> exporters;
  /// [energy] scope = run: the scraper that runs from the VMs being up to the end of the phases.
  std::unique_ptr<energy::Scraper> run_scraper;
  std::string network_table, resources_table, benchmark_md, report_md;
  PhaseTimes times;
  /// Set by a phase when its failure has a more specific name than the table's.
  std::string outcome;
};

/// One step of `continuum CONFIG`. The steps run in table order while every earlier one
/// succeeded and no interrupt is pending; a failure or Ctrl-C skips the rest of the table and
/// goes on with the epilogue (stop the energy feed, report, teardown, summary), which always runs.
struct Phase {
  const char* name;    ///< in the log, summary.md's phase table, and events
  const char* failed;  ///< the run's outcome when this phase fails
  bool timed;          ///< has a row in the phase table
  bool (*wanted)(const Run&);
  /// The work. An error is logged and ends the run: with ExitCode::interrupted if Ctrl-C came,
  /// else with the error's own code (usage for what the configuration asks wrongly).
  Status (*run)(Run&);
};

/// 1. Infrastructure; apply() rolls its own partial work back on failure or Ctrl-C.
Status infrastructure(Run& r) {
  spdlog::info("infrastructure: deploying {} VM(s)", r.plan.nodes.size());
  r.deployment = TRY(infra::apply(r.plan, r.dir, r.apply_opt, r.events));
  r.deployed = true;
  return {};
}

/// 1a. Can the guests reach what their playbooks download? Seconds now instead of an apt timeout
/// in the software phase (src/software/include/continuum/software/reachability.h).
Status reachability(Run& r) {
  auto reach = TRY(software::check_reachability(r.plan, r.cfg, r.deployment, r.events));
  if (reach.skipped) {
    spdlog::info("reachability check skipped: {}", reach.skip_reason);
  } else {
    spdlog::info(
        "reachability: {} source(s) reachable from {} guest(s), {} already satisfied in "
        "the image",
        reach.probed, reach.guests, reach.satisfied);
  }
  return {};
}

/// 1b. Guest clocks aligned with the host's: the benchmark subtracts timestamps taken in
/// different VMs (src/infra/include/continuum/infra/clock.h). Before netem, whose jitter would
/// blur it.
Status clocks(Run& r) {
  r.events->emit("clocks", "start");
  infra::sync_clocks(r.deployment, r.dir, r.events);
  r.events->emit("clocks", "end");
  return {};
}

/// After the clocks, <run>/environment.json: the platform the numbers come from (continuum's
/// commit, libvirt and QEMU versions, KVM or TCG as deployed, host CPU and kernel, image, guest
/// kernels), so runs compared later (`continuum compare`) are known to be comparable or not.
/// Describing the platform never fails the run: what cannot be found out is a warning and null.
Status environment(Run& r) {
  auto env = infra::record_environment(r.plan, r.cfg.infrastructure, r.deployment, r.dir);
  if (!env) {
    spdlog::warn("environment.json not written: {}", env.error().message);
    return {};
  }
  for (const auto& e : env->errors) spdlog::warn("environment.json: {}", e);
  spdlog::info("environment: {} guests on {}", env->guests.size(),
               env->accelerator().empty() ? "an unknown accelerator" : env->accelerator());
  return {};
}

/// 1c. Did each VM get what its tier asked for (vCPUs, memory, quota, pinning, disk limits)?
/// A VM that did not is a warning in the log and summary.md, not a failed run: the numbers are
/// still measured, and the report says on what. A check that could not be made at all fails the
/// run (after the table), since a check that measured nothing did not pass.
Status resources(Run& r) {
  infra::SshNetemExecutor exec(r.deployment);
  std::map<size_t, infra::HypervisorPtr> conns;
  std::mutex mu;
  infra::HypervisorFor hv = [&](size_t host) -> Expected<infra::HypervisorPtr> {
    std::lock_guard lock(mu);
    if (auto it = conns.find(host); it != conns.end()) return it->second;
    auto h = TRY(infra::connect_libvirt(r.plan.hosts.at(host).libvirt_uri));
    conns[host] = h;
    return h;
  };
  auto rep = TRY(infra::check_resources(r.plan, exec, hv, r.dir, r.events));
  r.resources_table = infra::format_resource_table(rep.rows);
  if (!r.resources_table.empty())
    spdlog::info("VM resources, configured vs measured:\n{}", r.resources_table);
  for (const auto& w : rep.warnings) spdlog::warn("resources: {}", w);
  if (!rep.failures.empty())
    return make_error(
        fmt::format("resources: {} check(s) could not be made (infrastructure/resources.csv; "
                    "[infrastructure] resource_check = False skips them):\n{}",
                    rep.failures.size(), util::join(rep.failures, "\n")));
  return {};
}

/// 2. Network emulation, measured.
Status network(Run& r) {
  auto nr = TRY(infra::apply_and_verify(r.plan, r.deployment, r.dir, r.events));
  r.network_table = nr.links.empty() ? std::string() : infra::format_table(nr.links);
  if (!r.network_table.empty())
    spdlog::info("network, configured vs measured:\n{}", r.network_table);
  if (!nr.netperf.empty()) {
    std::string t = infra::format_netperf_table(nr.netperf);
    spdlog::info("netperf matrix ({} s per test):\n{}", r.plan.netperf_seconds, t);
    r.network_table += (r.network_table.empty() ? "" : "\n") +
                       fmt::format("netperf matrix (TCP_RR, TCP_STREAM; {} s per test)\n",
                                   r.plan.netperf_seconds) +
                       t;
  }
  for (const auto& w : nr.warnings) spdlog::warn("{}", w);
  if (!nr.failures.empty())
    return make_error(fmt::format(
        "network: {} measurement(s) asked for could not be made "
        "(tables and raw output in {}):\n{}",
        nr.failures.size(), (r.dir / "infrastructure").string(), util::join(nr.failures, "\n")));
  return {};
}

/// 2b. The host-side energy feed ([energy] host_feed): per-VM energy_uj in each VM's virtiofs
/// share, running before the software phase so that the guests' `scaphandre --vm` finds its tree
/// when it starts, and until the end of the run. Without a RAPL counter on the host it cannot
/// work: that is an error rather than a run whose energy silently stays 0.
Status energy_feed(Run& r) {
  r.host_feed = TRY(start_host_feed(r.cfg, r.apply_opt, r.deployment, r.start));
  spdlog::info("energy: host feed writing {}/<vm>/intel-rapl:0/energy_uj every {} s",
               r.apply_opt.virtiofs_host_dir.string(), util::format_number(r.host_feed->period()));
  return {};
}

/// 2c. resource_manager = mist: the application's images, the run's registry, the pushes; the
/// software phase's docker playbook pulls them into the guests.
Status containers_phase(Run& r) {
  r.events->emit("containers", "start");
  auto c = ContainerService::start(r.cfg, r.plan, r.deployment, r.events);
  r.events->emit("containers", "end", "", -1, "", {{"ok", c.ok()}});
  r.containers = TRY(std::move(c));
  return {};
}

/// 1c. [energy] exporter_command: the per-VM host exporters, once the VMs (and their shares) exist.
Status exporters_phase(Run& r) {
  r.exporters = TRY(ExporterService::start(r.cfg, r.plan, r.deployment, r.events));
  return {};
}

/// The energy scraper over the exporters' targets.
energy::ScraperOptions scraper_options(const Run& r) {
  // Guest exporters live in the run's network namespace; Kepler is one exporter on the host.
  const bool in_guests = r.cfg.energy.exporter == config::Exporter::guest &&
                         r.cfg.energy.exporter_kind != config::ExporterKind::kepler;
  return energy::ScraperOptions{r.cfg.energy.interval, r.cfg.energy.scrape_timeout,
                                in_guests ? r.deployment.netns : ""};
}

/// [energy] scope = run: scraping starts as soon as the exporters can answer (host exporters:
/// right after the VMs are up; Scaphandre in the guests: once the software phase started it) and
/// runs until every phase is done, so that every interval of the event log gets its energy.
Status start_run_scraper(Run& r) {
  r.run_scraper = std::make_unique<energy::Scraper>(scraper_options(r));
  auto targets = energy::make_targets(r.cfg.energy, r.plan, &r.deployment);
  if (auto st = r.run_scraper->start(targets, r.dir, r.start); !st)
    return make_error("energy: scraper not started: " + st.error().message);
  spdlog::info("energy: scraping {} exporter(s) every {} s until the end of the run",
               targets.size(), util::format_number(r.cfg.energy.interval));
  r.events->emit("energy", "scrape_start", "", -1, "", {{"scope", "run"}});
  return {};
}

/// 3. Software.
Status software_phase(Run& r) {
  return software::install(r.plan, r.cfg, r.deployment, r.dir, r.events);
}

/// The benchmark proper: run, save, print the original's tables.
Status benchmark_and_save(Run& r) {
  auto res = benchmark::run(r.cfg, r.plan, r.deployment, r.dir, r.events, util::interrupt_flag());
  if (!res) {
    r.outcome = "benchmark failed";
    return make_error("benchmark: " + res.error().message, res.error().exit_code);
  }
  if (auto st = benchmark::save_results(*res, r.dir / "benchmark"); !st)
    spdlog::warn("{}", st.error().message);
  std::cout << benchmark::render_tables(*res) << std::flush;
  r.benchmark_md = benchmark::summary_markdown(*res);
  if (res->interrupted) return make_error("benchmark interrupted", ExitCode::interrupted);
  if (res->failures > 0) {
    r.outcome = "benchmark finished with " + std::to_string(res->failures) + " failure(s)";
    return make_error(r.outcome);
  }
  return {};
}

/// No energy data is a failed energy experiment: per VM, too few scrapes gave a sample.
Status energy_coverage(Run& r, const energy::Scraper& scraper) {
  std::vector<energy::CoverageVerdict> verdicts;
  auto covered =
      energy::check_coverage(scraper, r.cfg.energy.interval, r.cfg.energy.min_coverage, &verdicts);
  nlohmann::json per_vm = nlohmann::json::array();
  for (const auto& v : verdicts)
    per_vm.push_back({{"vm", v.vm},
                      {"url", v.url},
                      {"coverage", v.coverage},
                      {"ok", v.ok},
                      {"reason", v.reason}});
  r.events->emit("energy", "coverage", "", -1, "",
                 {{"min_coverage", r.cfg.energy.min_coverage}, {"vms", per_vm}});
  return covered;
}

/// 4. Benchmark, with the energy scraper around it. An energy experiment without its scraper
/// would measure nothing: no benchmark then.
Status benchmark_phase(Run& r) {
  // scope = run: the run's scraper is already going and is judged at the end of the run.
  if (r.run_scraper) return benchmark_and_save(r);
  energy::Scraper scraper(scraper_options(r));
  if (r.cfg.energy.enabled) {
    auto targets = energy::make_targets(r.cfg.energy, r.plan, &r.deployment);
    if (auto st = scraper.start(targets, r.dir, r.start); !st) {
      r.outcome = "energy scraper failed";
      return make_error("energy: scraper not started: " + st.error().message);
    }
  }
  Status ran = benchmark_and_save(r);
  scraper.stop();
  const bool interrupted = !ran && ran.error().exit_code == ExitCode::interrupted;
  if (r.cfg.energy.enabled && scraper.window_seconds() > 0 && !interrupted) {
    if (auto covered = energy_coverage(r, scraper); !covered) {
      if (ran) {
        r.outcome = "energy data missing";
        return covered;
      }
      spdlog::error("{}", covered.error().message);  // the benchmark's failure is the outcome
    }
  }
  return ran;
}

bool always(const Run&) { return true; }
bool installs_software(const Run& r) { return !r.cfg.infrastructure.infra_only; }
bool checks_resources(const Run& r) {
  return r.cfg.infrastructure.resource_check &&
         r.cfg.infrastructure.provider == config::Provider::qemu;
}
bool emulates_network(const Run& r) {
  return r.cfg.infrastructure.network_emulation || r.cfg.infrastructure.netperf;
}
bool feeds_energy(const Run& r) { return r.cfg.energy.enabled && r.cfg.energy.host_feed; }
bool runs_containers(const Run& r) { return config::runs_in_containers(r.cfg); }
bool starts_exporters(const Run& r) {
  return r.cfg.energy.enabled && r.cfg.energy.exporter == config::Exporter::host &&
         !r.cfg.energy.exporter_command.empty();
}
bool scrapes_run(const Run& r) {
  return r.cfg.energy.enabled && r.cfg.energy.scope == config::EnergyScope::run;
}
bool scrapes_run_from_host(const Run& r) {
  return scrapes_run(r) && r.cfg.energy.exporter == config::Exporter::host;
}
// Scaphandre in the guests answers once the software phase has started it (without software, no
// one starts it: then from the start, as for host exporters).
bool scrapes_run_from_guest(const Run& r) {
  return scrapes_run(r) && r.cfg.energy.exporter == config::Exporter::guest &&
         !r.cfg.infrastructure.infra_only;
}
bool scrapes_run_from_boot(const Run& r) {
  return scrapes_run_from_host(r) || (scrapes_run(r) && r.cfg.infrastructure.infra_only);
}
bool benchmarks(const Run& r) {
  return r.cfg.benchmark && !r.cfg.infrastructure.infra_only &&
         !r.cfg.benchmark->resource_manager_only;
}

// The pipeline (docs/run.md). Order matters: the energy feed before the exporters that read it,
// the exporters before the whole-run scraper, reachability before anything installs, clocks
// before netem.
constexpr Phase kPhases[] = {
    {"infrastructure", "infrastructure failed", true, always, infrastructure},
    {"energy feed", "energy host feed failed", false, feeds_energy, energy_feed},
    {"exporters", "energy exporters failed", true, starts_exporters, exporters_phase},
    {"energy scraper", "energy scraper failed", false, scrapes_run_from_boot, start_run_scraper},
    {"reachability", "guests cannot reach the playbooks' download sources", true, installs_software,
     reachability},
    {"clocks", "clock alignment failed", true, always, clocks},
    {"environment", "environment not recorded", false, always, environment},
    {"resources", "resource check failed", true, checks_resources, resources},
    {"network", "network emulation failed", true, emulates_network, network},
    {"containers", "container images or registry failed", true, runs_containers, containers_phase},
    {"software", "software installation failed", true, installs_software, software_phase},
    {"energy scraper", "energy scraper failed", false, scrapes_run_from_guest, start_run_scraper},
    {"benchmark", "benchmark failed", true, benchmarks, benchmark_phase},
};

/// [energy] scope = run: stops the run's scraper once the phases are done and judges its
/// coverage; a run that succeeded so far fails when a VM's energy data is missing.
ExitCode finish_run_scraper(Run& r, ExitCode rc) {
  if (!r.run_scraper) return rc;
  r.run_scraper->stop();
  r.events->emit("energy", "scrape_end", "", -1, "",
                 {{"scope", "run"}, {"seconds", r.run_scraper->window_seconds()}});
  if (rc == ExitCode::interrupted || r.run_scraper->window_seconds() <= 0) return rc;
  auto covered = energy_coverage(r, *r.run_scraper);
  if (covered) return rc;
  spdlog::error("{}", covered.error().message);
  if (rc != ExitCode::ok) return rc;  // the earlier failure is the outcome
  r.outcome = "energy data missing";
  return ExitCode::failure;
}

/// Runs the table; returns how the run ends so far and names the outcome.
ExitCode run_phases(Run& r) {
  for (const Phase& ph : kPhases) {
    if (!ph.wanted(r)) continue;
    if (util::interrupt_requested()) {
      r.outcome = "interrupted";
      return ExitCode::interrupted;
    }
    const auto t0 = Clock::now();
    Status st = ph.run(r);
    if (ph.timed) r.times.add(ph.name, seconds_since(t0));
    if (!st) {
      spdlog::error("{}", st.error().message);
      const bool interrupted =
          util::interrupt_requested() || st.error().exit_code == ExitCode::interrupted;
      if (r.outcome.empty()) r.outcome = interrupted ? "interrupted" : ph.failed;
      return interrupted ? ExitCode::interrupted : st.error().exit_code;
    }
  }
  if (util::interrupt_requested()) {
    r.outcome = "interrupted";
    return ExitCode::interrupted;
  }
  r.outcome = "success";
  return ExitCode::ok;
}

/// summary.md: what each exporter continuum started cost, and which died before the end.
std::string exporters_md(const std::vector<energy::ExporterUsage>& usage) {
  if (usage.empty()) return "";
  std::string md =
      "\n### Exporters started by continuum\n\n| VM | PID | CPU (% of one core) | seconds | "
      "ended |\n|---|---:|---:|---:|---|\n";
  for (const auto& u : usage)
    md += "| " + u.vm + " | " + std::to_string(u.pid) + " | " +
          util::format_fixed(u.cpu_percent(), 2) + " | " + util::format_fixed(u.wall_seconds, 1) +
          " | " +
          (u.died_with ? "**exited early** (status " + std::to_string(*u.died_with) + ")"
                       : std::string("stopped by continuum")) +
          " |\n";
  return md;
}

/// 5. Report: energy per phase and plots from what was saved (also after a failure: partial data
/// is still worth a look).
void report_phase(Run& r) {
  const auto t0 = Clock::now();
  auto rep = report::render(r.dir, {.energy_enabled = r.cfg.energy.enabled});
  r.times.add("report", seconds_since(t0));
  if (!rep) {
    spdlog::warn("report: {}", rep.error().message);
    return;
  }
  for (const auto& w : rep->warnings) spdlog::info("report: {}", w);
  r.report_md = rep->summary_md;
}

/// 6. Teardown or access hints. Deployment failures were already rolled back by apply(); after
/// that `delete` decides, also on Ctrl-C (docs/run.md), so an interrupted experiment can still be
/// inspected. Returns false if the VMs were to be removed and were not.
bool teardown_phase(Run& r) {
  if (!r.deployed) return true;
  if (!r.cfg.infrastructure.delete_vms) {
    std::cout << access_lines(r.deployment) << std::flush;
    return true;
  }
  const auto t0 = Clock::now();
  infra::DestroyOptions dopt;
  dopt.events = r.events;
  auto d = infra::destroy_run(r.dir, dopt);
  r.times.add("destroy", seconds_since(t0));
  if (d && d->errors.empty()) return true;
  if (d)
    for (const auto& e : d->errors) spdlog::error("could not remove {}", e);
  spdlog::error("delete = True: removing the VMs failed{}; retry with: continuum destroy {}",
                d ? "" : ": " + d.error().message, r.dir.string());
  return false;
}

/// Everything before the first phase that can be refused creates nothing: the configuration, the
/// preflight (what this build cannot run, src/config/include/continuum/config/preflight.h), the
/// plan.
Expected<std::pair<config::Config, plan::Plan>> load_and_plan(const Options& o) {
  auto cfg = TRY(config::load(o.config));
  for (const auto& w : cfg.warnings) spdlog::warn("{}", w);
  const config::Preflight pre = config::preflight(cfg);
  for (const auto& n : pre.notes) spdlog::warn("{}", n);
  if (!pre.ok()) {
    std::string msg;
    for (const auto& r : pre.refusals) msg += r + "\n";
    msg +=
        cfg.file.string() +
        ": refused before anything was created; docs/compatibility.md lists what this build runs";
    return make_error(msg, ExitCode::usage);
  }
  auto p = TRY(plan::make(cfg, probe_environment(cfg)));
  return std::pair{std::move(cfg), std::move(p)};
}

/// The run directory with its first files: config.cfg, plan.json, the log and the event log.
Expected<std::unique_ptr<record::EventLog>> open_run_dir(const Options& o, const plan::Plan& p,
                                                         infra::RunLock& lock, fs::path* dir,
                                                         Clock::time_point start,
                                                         const std::string& experiment) {
  *dir = fs::absolute(
      TRY(record::create_run_dir(o.output_dir, p.config_name, std::chrono::system_clock::now())));
  TRY_STATUS(lock.attach_run_dir(*dir));
  util::add_log_file(*dir / "continuum.log");
  spdlog::info("run directory: {}", dir->string());
  if (auto text = util::read_file(o.config); text) {
    if (auto st = util::write_file_atomic(*dir / "config.cfg", *text); !st)
      spdlog::warn("{}", st.error().message);
  }
  TRY_STATUS(util::write_file_atomic(*dir / "plan.json", plan::to_json(p).dump(2) + "\n"));
  return record::EventLog::open(*dir / "events.jsonl", start, experiment);
}

}  // namespace

int cmd_run(const Options& o) {
  auto loaded = load_and_plan(o);
  if (!loaded) {
    const std::string& m = loaded.error().message;
    std::cerr << m << (m.ends_with('\n') ? "" : "\n");
    return exit_status(loaded.error().exit_code);
  }
  const auto& [cfg, p] = *loaded;

  // One live run per user and hypervisor (docs/run.md): refused here, before anything exists.
  // Held until cmd_run returns; the kernel drops it if the process dies.
  auto run_lock = infra::RunLock::acquire(p, infra::default_lock_dir());
  if (!run_lock) {
    spdlog::error("{}", run_lock.error().message);
    return exit_status(run_lock.error().exit_code);
  }
  Run r(cfg, p);
  auto events = open_run_dir(o, p, *run_lock, &r.dir, r.start, cfg.experiment);
  if (!events) {
    spdlog::error("{}", events.error().message);
    return exit_status(ExitCode::failure);
  }
  r.events = events->get();
  r.apply_opt = infra::apply_options(cfg, fs::absolute(o.output_dir));
  util::install_interrupt_handlers();
  r.events->emit("run", "start", p.application, -1, "", {{"config", cfg.file.string()}});

  ExitCode rc = run_phases(r);
  rc = finish_run_scraper(r, rc);
  if (r.exporters) r.exporters->stop();
  if (r.host_feed) r.host_feed->stop();
  if (r.containers) r.containers->stop();
  report_phase(r);
  if (r.exporters) r.report_md += exporters_md(r.exporters->usage());
  if (r.deployment.remotes) {
    // Closed before the VMs go, so no session waits on a guest that is being destroyed.
    const auto st = r.deployment.remotes->stats();
    spdlog::info("ssh: {} session(s) opened after boot, reused {} time(s), {} dropped", st.connects,
                 st.reuses, st.dropped);
    r.deployment.remotes->close();
  }
  if (!teardown_phase(r) && rc == ExitCode::ok) rc = ExitCode::failure;

  r.events->emit("run", "end", p.application, -1, "",
                 {{"outcome", r.outcome}, {"exit_code", exit_status(rc)}});
  if (auto st = util::write_file_atomic(
          r.dir / "summary.md", summary_md(cfg, p, r.dir, r.times, r.outcome, r.network_table,
                                           r.resources_table, r.benchmark_md, r.report_md));
      !st)
    spdlog::warn("{}", st.error().message);
  spdlog::info("{} in {:.1f} s; run directory {}", r.outcome, seconds_since(r.start),
               r.dir.string());
  return exit_status(rc);
}

}  // namespace continuum::cli

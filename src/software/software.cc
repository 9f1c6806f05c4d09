#include "continuum/software/software.h"

#include <spdlog/spdlog.h>

#include <cstdlib>

#include "continuum/record/events.h"
#include "continuum/software/inventory.h"
#include "continuum/util/files.h"
#include "continuum/util/interrupt.h"
#include "continuum/util/paths.h"
#include "continuum/util/strings.h"

namespace continuum::software {

std::filesystem::path playbook_root() { return util::data_dir() / "playbooks"; }

std::vector<PlaybookRun> playbooks_for(const plan::Plan& plan, const std::filesystem::path& root) {
  std::vector<PlaybookRun> runs;
  for (const plan::PlaybookStep& st : plan.playbooks)
    runs.push_back({st.name, root / st.file, st.after, st.vars});
  return runs;
}

Status install(const plan::Plan& plan, const config::Config& cfg, const infra::Deployment& dep,
               const std::filesystem::path& run_dir, record::EventLog* events) {
  if (plan.playbooks.empty()) {
    spdlog::info("software: no playbooks to run (infra_only)");
    return {};
  }
  const std::filesystem::path sw = run_dir / "software";
  if (events) events->emit("software", "start");
  auto t0 = std::chrono::steady_clock::now();

  std::string inventory = TRY(make_inventory(plan, cfg, dep));
  TRY_STATUS(util::write_file_atomic(sw / "inventory.yml", inventory));
  auto cp_dir = TRY(make_control_path_dir(sw));
  AnsibleSettings s;
  s.software_dir = sw;
  s.private_key = dep.private_key;
  s.known_hosts = dep.known_hosts.empty() ? run_dir / "known_hosts" : dep.known_hosts;
  s.control_path_dir = cp_dir;
  TRY_STATUS(util::write_file_atomic(sw / "ansible.cfg", make_ansible_cfg(s)));

  RunnerOptions opt;
  opt.software_dir = sw;
  opt.ansible_cfg = sw / "ansible.cfg";
  opt.netns = dep.netns;
  opt.timeout = std::chrono::seconds(
      cfg.benchmark->playbook_timeout > 0 ? cfg.benchmark->playbook_timeout : 3600);
  opt.cancel = util::interrupt_flag();  // Ctrl-C stops the running playbooks and starts no more

  std::vector<PlaybookRun> runs = playbooks_for(plan, playbook_root());
  // The guest programs built or installed with continuum (util/paths.h); a guest image that
  // already has them skips the copy.
  const std::filesystem::path app_bin = util::app_dir();
  for (PlaybookRun& r : runs)
    if (r.name == "application" && !app_bin.empty())
      r.extra_vars["continuum_app_bin"] = app_bin.string();
  std::vector<std::string> names;
  for (const auto& r : runs) names.push_back(r.name);
  spdlog::info("software: {} playbook(s): {}", runs.size(), util::join(names, ", "));

  auto results = run_all(opt, runs, events);
  // The playbooks may have changed what a login gets (docker.yml adds the login user to the
  // docker group): the run's sessions from before are not reused after this phase.
  if (dep.remotes) dep.remotes->close();
  Status closed = close_control_masters(cp_dir);
  if (!closed.ok()) spdlog::warn("software: {}", closed.error().message);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (events)
    events->emit("software", "end", "", -1, "", {{"ok", results.ok()}, {"seconds", secs}});
  if (!results.ok()) {
    spdlog::error("software phase failed; logs and inventory kept in {}", sw.string());
    return std::move(results).error();
  }
  for (const auto& r : *results) spdlog::info("software: {:<24} {:>7.1f} s", r.name, r.seconds);
  spdlog::info("software phase done in {:.1f} s", secs);
  return {};
}

}  // namespace continuum::software

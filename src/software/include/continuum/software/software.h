#pragma once
// The software phase (docs/design.md §6, docs/original.md §6): inventory + ansible.cfg into
// <run>/software, then the playbooks the configuration needs, in the original's start order.
#include <filesystem>
#include <vector>

#include "continuum/config/config.h"
#include "continuum/infra/deployment.h"
#include "continuum/plan/plan.h"
#include "continuum/software/runner.h"
#include "continuum/util/expected.h"

namespace continuum::record {
class EventLog;
}

namespace continuum::software {

/// Where playbooks/ is: <util::data_dir()>/playbooks (installed, build tree or $CONTINUUM_HOME).
std::filesystem::path playbook_root();

/// The plan's playbook steps (plan::Plan::playbooks, where they are decided) as runs of the
/// playbooks under `root`.
std::vector<PlaybookRun> playbooks_for(const plan::Plan& plan, const std::filesystem::path& root);

/// Writes inventory.yml and ansible.cfg, runs the playbooks (concurrently where independent,
/// inside dep.netns when set), logs per-playbook wall time, emits software start/end and
/// per-playbook events, and closes this run's SSH masters. A failure names playbook, host, task
/// and Ansible's message (exit code 1); the run directory is kept for inspection.
Status install(const plan::Plan& plan, const config::Config& cfg, const infra::Deployment& dep,
               const std::filesystem::path& run_dir, record::EventLog* events);

}  // namespace continuum::software

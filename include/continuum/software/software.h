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

namespace continuum::report {
class EventLog;
}

namespace continuum::software {

/// Where playbooks/ is: <util::data_dir()>/playbooks (installed, build tree or $CONTINUUM_HOME).
std::filesystem::path playbook_root();

/// The playbook steps a configuration needs, with their order constraints (docs/original.md §6.4):
///   base (all) -> mosquitto (brokers), container_runtime (cloud/edge VMs), scaphandre (guest
///   energy exporter), app (image_classification binaries)
///   kubernetes: install -> control -> workers (join, wait until Ready) -> observability
///   kubeedge:   install -> control -> edges (keadm join) -> control_log -> edge_log
///   mist:       mosquitto on the edges (the brokers group) and nothing else
///   openfaas after the resource manager.
/// infra_only: nothing. resource_manager_only: the resource manager and the endpoints' broker,
/// but not the application (as the original, which skips the registry and the benchmark).
std::vector<PlaybookRun> playbooks_for(const config::Config& cfg,
                                       const std::filesystem::path& root);

/// Writes inventory.yml and ansible.cfg, runs the playbooks (concurrently where independent,
/// inside dep.netns when set), logs per-playbook wall time, emits software start/end and
/// per-playbook events, and closes this run's SSH masters. A failure names playbook, host, task
/// and Ansible's message (exit code 1); the run directory is kept for inspection.
Status install(const plan::Plan& plan, const config::Config& cfg, const infra::Deployment& dep,
               const std::filesystem::path& run_dir, report::EventLog* events);

}  // namespace continuum::software

#pragma once
// infra::apply: the infrastructure phase (docs/design.md §5). From a Plan to running VMs reachable
// over SSH, with every created resource in the ledger first:
//   leftovers of earlier runs removed -> accelerator chosen per host -> managed network ->
//   base image -> per-VM host keys, seeds, known_hosts, virtiofs dirs -> qcow2 overlays ->
//   domains defined and started concurrently -> SSH readiness with a per-VM deadline.
// Any error, or SIGINT/SIGTERM (util::interrupt_requested, checked between steps and in the SSH
// wait), rolls everything back through the ledger (infra::destroy).
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "continuum/config/config.h"
#include "continuum/infra/deployment.h"
#include "continuum/infra/hypervisor.h"
#include "continuum/infra/image.h"
#include "continuum/infra/readiness.h"
#include "continuum/infra/tunnel.h"
#include "continuum/plan/plan.h"
#include "continuum/record/events.h"
#include "continuum/util/expected.h"

namespace continuum::infra {

struct ApplyOptions {
  /// Parent of run directories: earlier runs of the same user+config there are destroyed first.
  std::filesystem::path output_dir;
  HypervisorFactory hypervisors = libvirt_factory();
  /// Runs the tunnel's `ip`/`bridge` commands on the hosts of a managed network over several
  /// hosts; empty: ssh_host_command(netns).
  HostCommand host_command;
  std::string accelerator = "auto";        ///< auto | kvm | tcg
  size_t workers = 8;                      ///< concurrent define+start / overlay creations
  std::chrono::seconds boot_timeout{600};  ///< per VM, start -> SSH login
  /// Where overlays and seeds go; the QEMU user must be able to reach it. "" =
  /// <run>/infrastructure/disks.
  std::filesystem::path disk_dir;
  bool virtiofs = false;
  std::filesystem::path virtiofs_host_dir;  ///< + /<vm name>
  std::string virtiofs_guest_dir;           ///< where the guest mounts it
  std::filesystem::path private_key;        ///< key the guests accept (created when missing)
  std::string netns;                        ///< namespace SSH connects from ("" = current)
  bool remove_leftovers = true;

  /// Provides the base image (build or fetch into the cache). Required.
  std::function<Expected<BaseImage>()> base_image;
  /// Waits until every target accepts an SSH login with its pinned host key (each by its own
  /// deadline, boot_timeout after its start). Required unless skip_ssh_wait. Default binding:
  /// infra::wait_ready. The logins that succeed go into `pool` (the Deployment's sessions), so
  /// the first phase after boot pays no second handshake.
  std::function<Expected<std::vector<ReadyResult>>(const std::vector<ReadyTarget>&,
                                                   util::RemotePool* pool)>
      wait_ready;
  bool skip_ssh_wait = false;  ///< tests on test:///default: no guest ever boots
};

/// Builds ApplyOptions from the configuration's [infrastructure] keys and binds the image and SSH
/// readiness hooks to the real implementations.
ApplyOptions apply_options(const config::Config& cfg, const std::filesystem::path& output_dir);

/// Deploys the plan. Writes <run>/state.json (ledger), <run>/infrastructure/{network.xml,
/// <vm>.xml, <vm>.console.log, seeds' user-data}, <run>/known_hosts and <run>/deployment.json,
/// and emits infrastructure start/end and per-VM events. On failure everything created is removed
/// again and the error says what failed (exit 130 when interrupted).
Expected<Deployment> apply(const plan::Plan& plan, const std::filesystem::path& run_dir,
                           const ApplyOptions& options, record::EventLog* events);

}  // namespace continuum::infra

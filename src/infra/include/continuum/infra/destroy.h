#pragma once
// Removing what a run created, from its ledger alone (docs/design.md §5): `continuum destroy
// RUN_DIR`, the rollback of a failed or interrupted apply, and the clean-up of an earlier run's
// leftovers before a rerun all use this. Walks the ledger backwards (domains before the disks they
// use, disks before the network); consecutive entries of one kind are removed concurrently.
// Idempotent: removed entries are skipped, and removing something already gone counts as done.
#include <filesystem>
#include <string>
#include <vector>

#include "continuum/infra/hypervisor.h"
#include "continuum/infra/ledger.h"
#include "continuum/infra/tunnel.h"
#include "continuum/plan/plan.h"
#include "continuum/record/events.h"
#include "continuum/util/expected.h"

namespace continuum::infra {

struct DestroyOptions {
  HypervisorFactory hypervisors = libvirt_factory();
  /// Runs `ip link del` for the run's tunnel devices on their hosts; empty: ssh_host_command().
  HostCommand host_command;
  size_t workers = 8;                  ///< concurrent removals (destroy+undefine ~1.5 s each)
  record::EventLog* events = nullptr;  ///< optional: "destroy" start/end events
  /// Status written when done: "destroyed" (destroy) or "rolled_back" (failed apply).
  std::string final_status = "destroyed";
};

struct DestroyResult {
  size_t removed = 0;               ///< entries removed now
  size_t already_removed = 0;       ///< entries a previous destroy had removed
  std::vector<std::string> errors;  ///< one line per entry that could not be removed
  double seconds = 0;
};

/// Removes every resource of `ledger` not yet removed. An Error only if the ledger cannot be
/// written; per-resource failures are in DestroyResult::errors (and the status is destroy_failed,
/// so a second destroy retries them).
Expected<DestroyResult> destroy(Ledger& ledger, const DestroyOptions& options);

/// destroy() for `<run_dir>/state.json`. A directory without a ledger is an error (exit 2).
Expected<DestroyResult> destroy_run(const std::filesystem::path& run_dir,
                                    const DestroyOptions& options);

/// `continuum destroy RUN_DIR`: destroy_run() while holding <run_dir>/run.lock (run_lock.h). A run
/// that is still live (its run.lock held) is refused with exit code 1, naming its PID: its
/// resources are in use, and it removes them itself when delete = True.
Expected<DestroyResult> destroy_dead_run(const std::filesystem::path& run_dir,
                                         const DestroyOptions& options);

/// Before a new run: destroys earlier runs of the same user and config found under `output_dir`
/// (their ledgers; `this_run` is skipped) whose owner is dead (their run.lock can be taken; a live
/// one, e.g. on another hypervisor, is left alone), then any domain or network the plan is about
/// to create that still exists (e.g. from a run whose ledger was deleted). The caller must hold
/// the plan's RunLock (run_lock.h) for hypervisors other than test:///: that is what makes those
/// domains leftovers rather than a live run's. Returns how many were removed.
Expected<size_t> remove_leftovers(const plan::Plan& plan, const std::filesystem::path& output_dir,
                                  const std::filesystem::path& this_run,
                                  const DestroyOptions& options);

}  // namespace continuum::infra

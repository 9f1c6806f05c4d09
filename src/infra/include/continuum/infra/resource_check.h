#pragma once
// After boot: did each VM get what its tier asked for? vCPUs and memory as the guest sees them,
// the CPU quota as the share of a host core a busy loop in the guest really gets (vCPU time from
// libvirt over a wall-clock window), the pinning as libvirt reports each vCPU's affinity and
// placement, and the disk limits as a short direct-I/O write and read in the guest. The quota and
// disk measurements run only where the tier sets a limit (a quota below 1, a read or write speed),
// one VM at a time, so a run without limits pays only the cheap checks. Written to
// <run>/infrastructure/resources.csv and summarised.
#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "continuum/infra/hypervisor.h"
#include "continuum/infra/netem.h"
#include "continuum/plan/plan.h"
#include "continuum/record/events.h"
#include "continuum/util/expected.h"

namespace continuum::infra {

/// One check of one VM.
struct ResourceRow {
  std::string node;   ///< plan node id
  std::string check;  ///< vcpus | memory | cpu_quota | pinning | disk_write | disk_read
  std::string configured, measured;  ///< as shown (units included)
  std::optional<double> value;       ///< the measured number (share, MiB, MB/s, count)
  std::string status;                ///< ok | warning | host-limited | error | not-limited
  std::string message;               ///< why, naming the VM, when status is not ok
};

struct ResourceReport {
  std::vector<ResourceRow> rows;
  std::vector<std::string> warnings;  ///< one per row with status warning
  /// One per row with status error: a check that could not be made. The caller fails the run on
  /// these after the table is written, as for the network's measurements.
  std::vector<std::string> failures;
  std::filesystem::path csv;  ///< <run>/infrastructure/resources.csv ("" if not written)
};

struct ResourceCheckOptions {
  /// The busy loop runs this long; the vCPU time is sampled at window_start and window_end after
  /// it was started, so SSH's start-up and the loop's end stay outside the window.
  std::chrono::milliseconds busy{5000};
  std::chrono::milliseconds window_start{1500};
  std::chrono::milliseconds window_end{4000};
  std::chrono::milliseconds command_timeout{std::chrono::seconds(120)};
};

/// Facts the guest reports: `nproc` and /proc/meminfo's MemTotal.
struct GuestFacts {
  int vcpus = 0;
  long long memtotal_kib = 0;
};
/// The script that prints them ("<nproc>\n<MemTotal kB>\n").
std::string guest_facts_script();
Expected<GuestFacts> parse_guest_facts(const std::string& output);

/// dd's summary line (coreutils "N bytes (...) copied, S s, R MB/s", busybox "N bytes (...)
/// copied, S seconds, ..."): bytes and seconds.
struct DdResult {
  long long bytes = 0;
  double seconds = 0;
  double mb_per_s() const { return seconds > 0 ? bytes / seconds / 1e6 : 0; }
};
Expected<DdResult> parse_dd(const std::string& output);
/// Writes `mib` MiB with O_DIRECT (fsync'd) to a file in the login user's home, reads it back with
/// O_DIRECT, removes it. Prints dd's two summaries, write first; "---" between them.
std::string disk_script(int mib);
/// MiB to move for a limit of `limit_mb_s` (0 = none): about 2.5 s at the limit, 16..256 MiB.
int disk_test_mib(double limit_mb_s);

/// The judgements, pure: each fills status and message of `row` (value and measured set first).
void judge_vcpus(ResourceRow& row, int configured, int measured);
void judge_memory(ResourceRow& row, int configured_mib, long long memtotal_kib);
/// `quota` 1.0 = no limit. Within [0.75 q, 1.1 q + 0.02] is ok; above, the quota is not enforced
/// (warning); below, the host could not give even the quota (host-limited).
void judge_quota(ResourceRow& row, double quota, double share);
/// `limit_mb_s` 0 = no limit (not-limited). Within [0.7, 1.15] x limit is ok; above: warning
/// (not applied); below: warning (slower than the limit).
void judge_disk(ResourceRow& row, double limit_mb_s, double measured_mb_s);
/// `pinned` empty = not pinned: affinity reported, status not-limited.
void judge_pinning(ResourceRow& row, const std::vector<int>& pinned,
                   const std::vector<VcpuInfo>& vcpus);

/// The table printed and put in summary.md; the CSV with its header.
std::string format_resource_table(const std::vector<ResourceRow>& rows);
std::string format_resource_csv(const std::vector<ResourceRow>& rows);

/// The hypervisor a node's domain runs on (by Plan::hosts index).
using HypervisorFor = std::function<Expected<HypervisorPtr>(size_t host)>;

/// Runs every check on every node (cheap ones concurrently, busy loops and disk tests one VM at a
/// time), writes resources.csv under run_dir/infrastructure, emits phase "resources" events.
/// Only a failure to run at all is an Error; a VM that did not get what it asked for is a row with
/// status warning and a line in ResourceReport::warnings.
Expected<ResourceReport> check_resources(const plan::Plan& plan, NetemExecutor& exec,
                                         const HypervisorFor& hypervisor,
                                         const std::filesystem::path& run_dir,
                                         record::EventLog* events,
                                         const ResourceCheckOptions& opt = {});

}  // namespace continuum::infra

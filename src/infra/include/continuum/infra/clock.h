#pragma once
// Guest clocks, aligned with the host's before anything is measured across VMs.
//
// The benchmark compares timestamps taken in different VMs (the endpoint stamps a frame, the
// worker reads the stamp: docs/original.md §7.4's transfer delay and end-to-end latency). A guest
// starts with the host's RTC, which has one-second resolution, and these VMs have no NTP server
// to reach, so two guests can disagree by up to a second: hundreds of milliseconds of "transfer
// delay" for a 65 kB frame on a 7 Mbit/s, 45 ms link. The original relies on NTP in the guests
// and never checks.
//
// continuum estimates each guest's offset NTP-style over its SSH session: a python3 process in the
// guest answers each line the host sends with its clock, and the offset is the guest's time minus
// the host time halfway between sending and reading, best of several turns by round trip,
// steps the guest clock by the opposite amount (adjtimex ADJ_SETOFFSET: the kernel adds it
// atomically, so neither the SSH latency nor the step's own run time enters it), measures again,
// and records before/after in <run>/infrastructure/clocks.csv and events.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "continuum/infra/deployment.h"
#include "continuum/record/events.h"
#include "continuum/util/expected.h"
#include "continuum/util/interrupt.h"
#include "continuum/util/ssh.h"

namespace continuum::infra {

struct ClockOptions {
  int samples = 5;              ///< turns per estimate; the one with the shortest round trip counts
  double step_above_ms = 2.0;   ///< a smaller offset is left alone
  double warn_above_ms = 10.0;  ///< still this far off after the step: a warning naming the VM
  std::chrono::milliseconds timeout{std::chrono::seconds(20)};
  /// Once true, no clock is stepped any more and connects and exchanges in progress end within
  /// 100 ms (the nodes not done are reported with error "interrupted"). Default: Ctrl-C.
  const std::atomic<bool>* cancel = util::interrupt_flag();
};

struct ClockEstimate {
  double offset_ms = 0;  ///< guest - host
  double rtt_ms = 0;     ///< round trip of the sample used; the estimate is good to +-rtt/2
};

struct ClockResult {
  std::string node_id;
  ClockEstimate before;
  std::optional<ClockEstimate> after;  ///< absent when no step was needed or it failed
  bool stepped = false;
  std::string error;  ///< "" when fine; otherwise why the clock could not be measured or stepped
};

/// Guest - host offset from one exchange: host times before sending and after the answer, and
/// the guest's answer ("seconds.nanoseconds"). An Error when it is not a timestamp.
Expected<ClockEstimate> offset_from_sample(std::chrono::system_clock::time_point sent,
                                           const std::string& guest_output,
                                           std::chrono::system_clock::time_point received);

/// The guest command for util::Remote::exchange_lines: answers every line with its clock.
std::string clock_echo_command();

/// The command that shifts the guest's clock by `delta_ms` (adjtimex ADJ_SETOFFSET through
/// python3's ctypes; python3 is in every guest: Ansible needs it). `sudo` prefixes `sudo -n`.
std::string clock_step_command(double delta_ms, bool sudo);

/// Estimate, step when needed, estimate again, over one session.
ClockResult sync_clock(util::Remote& remote, const std::string& node_id, bool sudo,
                       const ClockOptions& opt = {});

/// Every node of the deployment concurrently; writes <run>/infrastructure/clocks.csv when
/// run_dir is not empty and emits one "clock" event per node. Never fails the run: a guest that
/// cannot be aligned is logged as a warning (its cross-VM latencies are then off by its offset).
std::vector<ClockResult> sync_clocks(const Deployment& d, const std::filesystem::path& run_dir,
                                     record::EventLog* events, const ClockOptions& opt = {});

/// clocks.csv content, header included.
std::string format_clocks_csv(const std::vector<ClockResult>& results);

}  // namespace continuum::infra

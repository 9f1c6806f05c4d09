#pragma once
// Host-side energy feed for Scaphandre's guest `--vm` mode (docs/exporters.md §2), replacing what
// `scaphandre qemu` gets wrong: it adds µW as if they were µJ once per 5 s (#428, power ~5x low)
// and truncates-then-writes energy_uj so guests read torn values (#442). Here, every interval:
//
//   ΔE_host  = host RAPL energy_uj delta (wrap at max_energy_range_uj)
//   share_vm = Δcpu_time(vm) / Δbusy_cpu_time(host)    (libvirt, /proc/stat; clamped, sum ≤ 1)
//   energy_uj(vm) += share_vm × ΔE_host
//
// and <share_root>/<vm>/intel-rapl:0/energy_uj is replaced atomically (write temp + rename), with
// `name` and `max_energy_range_uj` beside it, which is the tree the guest's `scaphandre --vm` reads
// over virtiofs at /var/scaphandre.
//
// With `record_csv` set, every step also appends what it handed each VM to a CSV
// (`t,vm,energy_uj`, t on the run's monotonic clock as in events.jsonl and samples.csv), so that
// the guests' reports can be checked against what they were given.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "continuum/util/expected.h"

namespace continuum::energy {

/// CPU time used so far by each running VM, by domain name (ns).
class CpuTimeSource {
 public:
  virtual ~CpuTimeSource() = default;
  virtual Expected<std::map<std::string, uint64_t>> cpu_time_ns() = 0;
};

/// libvirt: virDomainGetInfo().cpuTime of every active domain at `uri` (qemu:///system, or
/// test:///default in tests).
Expected<std::unique_ptr<CpuTimeSource>> libvirt_cpu_source(const std::string& uri);

/// Busy CPU time of the host (user+nice+system+irq+softirq+steal of the `cpu` line) in ns.
Expected<uint64_t> host_busy_ns(const std::filesystem::path& proc_stat);

struct HostFeedOptions {
  std::filesystem::path powercap_path =
      "/sys/class/powercap/intel-rapl:0";  ///< config energy.powercap_path
  std::filesystem::path proc_stat = "/proc/stat";
  std::filesystem::path share_root =
      "/var/lib/libvirt/scaphandre";  ///< <share_root>/<vm>/ is the virtiofs share
  std::vector<std::string> vms;       ///< domain names to feed
  double interval = 1.0;              ///< s between steps, at most max_step
  /// The feed steps every min(interval, max_step) s. The guest's Scaphandre differences its own
  /// reads (at least 2 s apart) and the scraper's counter is read between steps: a counter that
  /// moves in coarse steps aliases (a read just before or just after a step is a whole step
  /// apart), so it moves in small ones, whatever the scrape interval.
  double max_step = 0.5;
  /// "" = no record. Else one row `t,vm,energy_uj` per VM and step, appended (header written when
  /// the file is new): t = seconds since `run_start`, taken right after that VM's energy_uj was
  /// replaced, and energy_uj the integer the guest reads from then on.
  std::filesystem::path record_csv;
  std::chrono::steady_clock::time_point run_start = std::chrono::steady_clock::now();
};

/// The header of the record_csv file.
inline constexpr const char* kFeedCsvHeader = "t,vm,energy_uj";

class HostFeed {
 public:
  HostFeed(HostFeedOptions opts, std::unique_ptr<CpuTimeSource> cpu);
  ~HostFeed();
  /// One update (the first call only takes the baseline and writes 0). Errors name the file.
  Status step();
  /// step() every min(interval, max_step) on a background thread; errors are logged, not fatal.
  Status start();
  void stop();
  /// Seconds between the background steps: min(interval, max_step).
  double period() const;
  /// Energy written so far per VM (µJ).
  std::map<std::string, double> energy_uj() const;

 private:
  HostFeedOptions opts_;
  std::unique_ptr<CpuTimeSource> cpu_;
  bool have_base_ = false;
  double last_host_uj_ = 0;
  uint64_t last_busy_ = 0;
  std::map<std::string, uint64_t> last_cpu_;
  std::map<std::string, double> energy_;
  std::FILE* record_ = nullptr;  ///< opts_.record_csv, opened by the first step
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace continuum::energy

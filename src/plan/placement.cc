// Hosts and VM placement (docs/original.md §3.2 step 1-3, §4.1).
#include <map>
#include <string>

#include "continuum/util/strings.h"
#include "internal.h"

namespace continuum::plan::detail {

Expected<std::vector<Host>> make_hosts(const config::Config& cfg, const Environment& env) {
  const auto& infra = cfg.infrastructure;
  if (env.local_cores <= 0)
    return make_error("planning needs the local host's physical core count (got " +
                      std::to_string(env.local_cores) + ")");
  if (env.external_cores.size() != infra.external_physical_machines.size())
    return make_error("planning needs one core count per external_physical_machines entry (" +
                      std::to_string(infra.external_physical_machines.size()) + " machines, " +
                      std::to_string(env.external_cores.size()) + " counts)");
  std::vector<Host> hosts;
  hosts.push_back(Host{"local", infra.libvirt_uri.empty() ? "qemu:///system" : infra.libvirt_uri,
                       env.local_cores, 0});
  for (size_t i = 0; i < infra.external_physical_machines.size(); ++i) {
    const std::string& m = infra.external_physical_machines[i];
    if (env.external_cores[i] <= 0)
      return make_error("external machine " + m + " has no usable cores (" +
                        std::to_string(env.external_cores[i]) + ")");
    // libvirt over SSH with this user's SSH setup (key, ~/.ssh/known_hosts), as upstream's ssh;
    // no_tty=1 runs ssh in batch mode: a host whose key is not pinned in known_hosts is refused
    // rather than asked about, and a missing key is an error rather than a password prompt.
    hosts.push_back(Host{m, "qemu+ssh://" + m + "/system?no_tty=1", env.external_cores[i], 0});
  }
  return hosts;
}

namespace {

Error cpu_pin_overflow(const std::vector<Slot>& slots, size_t first_left,
                       const std::vector<Host>& hosts, const std::vector<int>& pinned) {
  // Group what is left by tier so the message says which VMs and how many cores they need.
  std::map<int, std::pair<int, int>> left;  // tier -> (count, cores each)
  int cores_needed = 0;
  for (size_t i = first_left; i < slots.size(); ++i) {
    auto& e = left[static_cast<int>(slots[i].tier)];
    e.first++;
    e.second = slots[i].cores;
    cores_needed += slots[i].cores;
  }
  std::vector<std::string> what;
  for (const auto& [tier, e] : left)
    what.push_back(std::to_string(e.first) + " " + config::tier_name(static_cast<Tier>(tier)) +
                   " VM" + (e.first == 1 ? "" : "s") + " of " + std::to_string(e.second) + " core" +
                   (e.second == 1 ? "" : "s"));
  std::vector<std::string> avail;
  int total = 0;
  for (size_t h = 0; h < hosts.size(); ++h) {
    avail.push_back(hosts[h].name + " " + std::to_string(pinned[h]) + " of " +
                    std::to_string(hosts[h].physical_cores) + " cores pinned");
    total += hosts[h].physical_cores;
  }
  int placed = 0;
  for (int p : pinned) placed += p;
  return make_error("cpu_pin = True: not all VMs fit on the available hardware: " +
                        std::to_string(slots.size() - first_left) + " of " +
                        std::to_string(slots.size()) + " VMs are left (" + util::join(what, ", ") +
                        ") and need " + std::to_string(cores_needed) + " more physical cores (" +
                        std::to_string(placed + cores_needed) + " in all, " +
                        std::to_string(total) + " available); hosts: " + util::join(avail, "; ") +
                        ". Each vCPU needs its own host core and a VM that does not fit moves on "
                        "to the next host "
                        "for good. Use fewer or smaller VMs, add external_physical_machines, or "
                        "set cpu_pin = False.",
                    ExitCode::usage);
}

}  // namespace

Status place(bool cpu_pin, std::vector<Slot>& slots, std::vector<Host>& hosts) {
  if (cpu_pin) {
    // Greedy fill in host order; pinned cores are counted per host from 0 (upstream §4.5).
    std::vector<int> next(hosts.size(), 0);
    size_t h = 0;
    for (size_t i = 0; i < slots.size(); ++i) {
      Slot& s = slots[i];
      while (h < hosts.size() && next[h] + s.cores > hosts[h].physical_cores) ++h;
      if (h == hosts.size()) return cpu_pin_overflow(slots, i, hosts, next);
      s.host = h;
      s.pinned_cpus.clear();
      for (int c = 0; c < s.cores; ++c) s.pinned_cpus.push_back(next[h] + c);
      next[h] += s.cores;
      hosts[h].used_cores += s.cores;
    }
    return {};
  }
  // Least loaded by used/physical ratio, first host on ties; oversubscription is allowed. The
  // ratios are compared by cross-multiplying so that ties are exact, not subject to rounding.
  for (Slot& s : slots) {
    size_t best = 0;
    for (size_t h = 1; h < hosts.size(); ++h) {
      long lhs = static_cast<long>(hosts[h].used_cores) * hosts[best].physical_cores;
      long rhs = static_cast<long>(hosts[best].used_cores) * hosts[h].physical_cores;
      if (lhs < rhs) best = h;
    }
    s.host = best;
    hosts[best].used_cores += s.cores;
  }
  return {};
}

}  // namespace continuum::plan::detail

#include "continuum/infra/resource_check.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <future>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "continuum/util/files.h"
#include "continuum/util/interrupt.h"
#include "continuum/util/parallel.h"
#include "continuum/util/process.h"
#include "continuum/util/strings.h"
#include "continuum/util/table.h"

namespace continuum::infra {

namespace {

using Clock = std::chrono::steady_clock;

// "0-1", "3", "0,2-3".
std::string cpu_list(std::vector<int> cpus) {
  if (cpus.empty()) return "none";
  std::sort(cpus.begin(), cpus.end());
  std::vector<std::string> parts;
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    parts.push_back(j == i ? std::to_string(cpus[i])
                           : std::to_string(cpus[i]) + "-" + std::to_string(cpus[j]));
    i = j + 1;
  }
  return util::join(parts, ",");
}

std::string one_line(const std::string& s) {
  std::string t(util::trim(s));
  std::replace(t.begin(), t.end(), '\n', ' ');
  return t.size() > 300 ? t.substr(0, 300) + "..." : t;
}

void set(ResourceRow& row, const std::string& status, const std::string& message = "") {
  row.status = status;
  row.message = message.empty() ? "" : row.node + ": " + message;
}

}  // namespace

std::string guest_facts_script() { return "nproc && awk '/^MemTotal:/ {print $2}' /proc/meminfo"; }

Expected<GuestFacts> parse_guest_facts(const std::string& output) {
  std::istringstream in(output);
  std::string a, b;
  GuestFacts f;
  try {
    if (!(in >> a >> b)) throw std::invalid_argument("short");
    size_t pa = 0, pb = 0;
    f.vcpus = std::stoi(a, &pa);
    f.memtotal_kib = std::stoll(b, &pb);
    if (pa != a.size() || pb != b.size() || f.vcpus <= 0 || f.memtotal_kib <= 0)
      throw std::invalid_argument("range");
  } catch (const std::exception&) {
    return make_error("guest facts: expected nproc and MemTotal, got: " + one_line(output));
  }
  return f;
}

Expected<DdResult> parse_dd(const std::string& output) {
  static const std::regex line(R"((\d+) bytes[^\n]*copied, ([0-9.]+) s)");
  std::smatch m;
  if (!std::regex_search(output, m, line))
    return make_error("dd printed no summary: " + one_line(output));
  DdResult r;
  r.bytes = std::stoll(m[1].str());
  r.seconds = std::stod(m[2].str());
  if (r.seconds <= 0) return make_error("dd: zero time in " + one_line(m[0].str()));
  return r;
}

std::string disk_script(int mib) {
  // The file lives in the home directory: the guest's root disk, the one the limits apply to
  // (/tmp may be a tmpfs). O_DIRECT both ways, so neither the guest's page cache nor its
  // write-back hides the block device's rate.
  const std::string n = std::to_string(mib);
  return "f=\"$HOME/.continuum-disk-check\"; trap 'rm -f \"$f\"' EXIT; "
         "dd if=/dev/zero of=\"$f\" bs=1M count=" +
         n +
         " oflag=direct conv=fsync 2>&1 || exit 1; echo ---; "
         "dd if=\"$f\" of=/dev/null bs=1M iflag=direct 2>&1";
}

int disk_test_mib(double limit_mb_s) {
  if (limit_mb_s <= 0) return 64;
  return std::clamp(static_cast<int>(std::ceil(limit_mb_s * 2.5 * 1e6 / (1 << 20))), 16, 256);
}

void judge_vcpus(ResourceRow& row, int configured, int measured) {
  row.configured = std::to_string(configured);
  row.measured = std::to_string(measured);
  row.value = measured;
  if (measured == configured) return set(row, "ok");
  set(row, "warning",
      fmt::format("the guest sees {} vCPUs, the tier asks for {}", measured, configured));
}

void judge_memory(ResourceRow& row, int configured_mib, long long memtotal_kib) {
  const double mib = memtotal_kib / 1024.0;
  row.configured = fmt::format("{} MiB", configured_mib);
  row.measured = fmt::format("{:.0f} MiB", mib);
  row.value = mib;
  // The kernel keeps its own image and tables out of MemTotal: ~40-90 MiB on these guests.
  const double low = configured_mib - std::max(96.0, 0.15 * configured_mib);
  if (mib <= configured_mib && mib >= low) return set(row, "ok");
  set(row, "warning",
      fmt::format("the guest has {:.0f} MiB (MemTotal), the tier asks for {} MiB (accepted "
                  "{:.0f}-{} MiB)",
                  mib, configured_mib, low, configured_mib));
}

void judge_quota(ResourceRow& row, double quota, double share) {
  row.configured = quota < 1 ? fmt::format("{} of a core", util::format_number(quota)) : "none";
  row.measured = fmt::format("{:.2f} of a core", share);
  row.value = share;
  const double q = std::min(quota, 1.0);
  const double high = q * 1.1 + 0.02, low = q * 0.75;
  if (share > high && quota < 1)
    return set(row, "warning",
               fmt::format("a busy loop got {:.2f} of a core, the quota is {} (not enforced?)",
                           share, util::format_number(quota)));
  if (share < low)
    return set(row, "host-limited",
               fmt::format("a busy loop got only {:.2f} of a core{}; the host's cores are busy "
                           "or emulation costs more than the {} asked",
                           share, quota < 1 ? " with quota " + util::format_number(quota) : "",
                           quota < 1 ? "quota" : "core"));
  set(row, quota < 1 ? "ok" : "not-limited");
}

void judge_disk(ResourceRow& row, double limit_mb_s, double measured_mb_s) {
  row.configured =
      limit_mb_s > 0 ? fmt::format("{} MB/s", util::format_number(limit_mb_s)) : "none";
  row.measured = fmt::format("{:.1f} MB/s", measured_mb_s);
  row.value = measured_mb_s;
  if (limit_mb_s <= 0) return set(row, "not-limited");
  const double r = measured_mb_s / limit_mb_s;
  if (r > 1.15)
    return set(row, "warning",
               fmt::format("{} at {:.1f} MB/s exceeds its limit of {} MB/s (not applied?)",
                           row.check, measured_mb_s, util::format_number(limit_mb_s)));
  if (r < 0.7)
    return set(row, "warning",
               fmt::format("{} at {:.1f} MB/s, well below its limit of {} MB/s", row.check,
                           measured_mb_s, util::format_number(limit_mb_s)));
  set(row, "ok");
}

void judge_pinning(ResourceRow& row, const std::vector<int>& pinned,
                   const std::vector<VcpuInfo>& vcpus) {
  std::vector<std::string> seen;
  for (const auto& v : vcpus)
    seen.push_back(
        fmt::format("vCPU{} on CPU {} (affinity {})", v.number, v.cpu, cpu_list(v.affinity)));
  row.measured = util::join(seen, "; ");
  row.value = static_cast<double>(vcpus.size());
  if (pinned.empty()) {
    row.configured = "not pinned";
    return set(row, "not-limited");
  }
  std::vector<std::string> want;
  for (size_t i = 0; i < pinned.size(); ++i)
    want.push_back(fmt::format("vCPU{} on CPU {}", i, pinned[i]));
  row.configured = util::join(want, "; ");
  std::vector<std::string> wrong;
  for (size_t i = 0; i < pinned.size(); ++i) {
    const VcpuInfo* v = nullptr;
    for (const auto& x : vcpus)
      if (x.number == static_cast<int>(i)) v = &x;
    if (!v)
      wrong.push_back(fmt::format("vCPU{} missing", i));
    else if (v->affinity != std::vector<int>{pinned[i]} || v->cpu != pinned[i])
      wrong.push_back(fmt::format("vCPU{} should run only on CPU {} but runs on {} (affinity {})",
                                  i, pinned[i], v->cpu, cpu_list(v->affinity)));
  }
  if (wrong.empty()) return set(row, "ok");
  set(row, "warning", util::join(wrong, "; "));
}

std::string format_resource_table(const std::vector<ResourceRow>& rows) {
  if (rows.empty()) return "";
  std::vector<std::vector<std::string>> t;
  t.push_back({"vm", "check", "configured", "measured", "status"});
  for (const auto& r : rows) t.push_back({r.node, r.check, r.configured, r.measured, r.status});
  return util::align_columns(t);
}

std::string format_resource_csv(const std::vector<ResourceRow>& rows) {
  std::string s = "vm,check,configured,measured,value,status,message\n";
  for (const auto& r : rows)
    s += util::join(
             {util::csv_field(r.node), util::csv_field(r.check), util::csv_field(r.configured),
              util::csv_field(r.measured), r.value ? fmt::format("{:.3f}", *r.value) : "",
              util::csv_field(r.status), util::csv_field(r.message)},
             ",") +
         "\n";
  return s;
}

namespace {

struct NodeChecks {
  std::vector<ResourceRow> rows;
  std::optional<Error> error;
};

ResourceRow row_for(const plan::Node& n, const char* check) {
  ResourceRow r;
  r.node = n.id;
  r.check = check;
  return r;
}

void error_row(NodeChecks& out, const plan::Node& n, const char* check, const std::string& msg) {
  ResourceRow r = row_for(n, check);
  r.measured = "-";
  r.status = "error";
  r.message = n.id + ": " + check + ": " + msg;
  out.rows.push_back(std::move(r));
}

// vCPUs, memory and pinning: one SSH command and one libvirt call.
void cheap_checks(const plan::Node& n, NetemExecutor& exec, const HypervisorFor& hv,
                  const ResourceCheckOptions& opt, NodeChecks& out) {
  auto r = exec.run(n.id, guest_facts_script(), opt.command_timeout);
  if (!r) {
    out.error = make_error("resource check on " + exec.describe(n.id) + ": " + r.error().message);
    return;
  }
  if (r->cancelled) return;
  auto facts = parse_guest_facts(r->out);
  if (!facts) {
    error_row(out, n, "vcpus", facts.error().message + " " + one_line(r->err));
  } else {
    ResourceRow v = row_for(n, "vcpus");
    judge_vcpus(v, n.cores, facts->vcpus);
    out.rows.push_back(v);
    ResourceRow m = row_for(n, "memory");
    judge_memory(m, n.memory_mib, facts->memtotal_kib);
    out.rows.push_back(m);
  }
  auto h = hv(n.host);
  auto vcpus = h ? (*h)->vcpu_info(n.name) : Expected<std::vector<VcpuInfo>>(h.error());
  if (!vcpus) return error_row(out, n, "pinning", vcpus.error().message);
  ResourceRow p = row_for(n, "pinning");
  judge_pinning(p, n.pinned_cpus, *vcpus);
  out.rows.push_back(p);
}

// Host CPU time of every vCPU, summed over the domain's vCPUs and per vCPU.
Expected<std::vector<unsigned long long>> vcpu_times(Hypervisor& h, const std::string& name) {
  auto v = TRY(h.vcpu_info(name));
  std::vector<unsigned long long> t;
  for (const auto& x : v) t.push_back(x.cpu_time_ns);
  return t;
}

// One busy loop per vCPU in the guest while the host samples the vCPUs' CPU time: the share of
// a core each vCPU really got, averaged over the vCPUs.
void quota_check(const plan::Node& n, NetemExecutor& exec, const HypervisorFor& hv,
                 const ResourceCheckOptions& opt, NodeChecks& out) {
  auto h = hv(n.host);
  if (!h) return error_row(out, n, "cpu_quota", h.error().message);
  const int secs = static_cast<int>(std::ceil(opt.busy.count() / 1000.0));
  const std::string script = "i=0; while [ $i -lt " + std::to_string(std::max(1, n.cores)) +
                             " ]; do timeout " + std::to_string(secs) +
                             " sh -c 'while :; do :; done' & i=$((i+1)); done; wait; true";
  const auto launched = Clock::now();
  auto busy = std::async(std::launch::async,
                         [&] { return exec.run(n.id, script, opt.busy + opt.command_timeout); });
  // The window is placed inside the loop's run, away from SSH's start-up and the loop's end.
  std::this_thread::sleep_until(launched + opt.window_start);
  auto t0 = vcpu_times(**h, n.name);
  const auto w0 = Clock::now();
  std::this_thread::sleep_until(launched + opt.window_end);
  auto t1 = vcpu_times(**h, n.name);
  const auto w1 = Clock::now();
  auto r = busy.get();
  if (!r) return error_row(out, n, "cpu_quota", r.error().message);
  if (r->cancelled) return;
  if (!t0 || !t1) return error_row(out, n, "cpu_quota", (!t0 ? t0 : t1).error().message);
  if (t0->size() != t1->size() || t0->empty())
    return error_row(out, n, "cpu_quota", "vCPU count changed during the measurement");
  const double wall_ns = std::chrono::duration<double, std::nano>(w1 - w0).count();
  double sum = 0;
  for (size_t i = 0; i < t0->size(); ++i) sum += static_cast<double>((*t1)[i] - (*t0)[i]) / wall_ns;
  ResourceRow row = row_for(n, "cpu_quota");
  judge_quota(row, n.quota, sum / static_cast<double>(t0->size()));
  out.rows.push_back(row);
}

void disk_check(const plan::Node& n, NetemExecutor& exec, const ResourceCheckOptions& opt,
                NodeChecks& out) {
  const double rlim = n.read_bytes_sec / 1e6, wlim = n.write_bytes_sec / 1e6;
  const double slowest = rlim > 0 && wlim > 0 ? std::min(rlim, wlim) : std::max(rlim, wlim);
  auto r = exec.run(n.id, disk_script(disk_test_mib(slowest)), opt.command_timeout);
  if (!r) return error_row(out, n, "disk_write", r.error().message);
  if (r->cancelled) return;
  const auto sep = r->out.find("\n---\n");
  if (r->exit_code != 0 || sep == std::string::npos)
    return error_row(
        out, n, "disk_write",
        "dd failed (exit " + std::to_string(r->exit_code) + "): " + one_line(r->out + r->err));
  auto w = parse_dd(r->out.substr(0, sep));
  auto rd = parse_dd(r->out.substr(sep + 5));
  if (!w) return error_row(out, n, "disk_write", w.error().message);
  ResourceRow wr = row_for(n, "disk_write");
  judge_disk(wr, wlim, w->mb_per_s());
  out.rows.push_back(wr);
  if (!rd) return error_row(out, n, "disk_read", rd.error().message);
  ResourceRow rr = row_for(n, "disk_read");
  judge_disk(rr, rlim, rd->mb_per_s());
  out.rows.push_back(rr);
}

}  // namespace

Expected<ResourceReport> check_resources(const plan::Plan& p, NetemExecutor& exec,
                                         const HypervisorFor& hv,
                                         const std::filesystem::path& run_dir,
                                         record::EventLog* events,
                                         const ResourceCheckOptions& opt) {
  ResourceReport rep;
  if (exec.dry_run()) return rep;
  if (events) events->emit("resources", "start");
  std::vector<NodeChecks> per(p.nodes.size());
  util::parallel_for(p.nodes.size(), util::kAllAtOnce, [&](size_t i) {
    if (!util::interrupt_requested()) cheap_checks(p.nodes[i], exec, hv, opt, per[i]);
  });
  for (const auto& c : per)
    if (c.error) {
      if (events) events->emit("resources", "end", "", -1, "", {{"error", c.error->message}});
      return *c.error;
    }
  // One VM at a time: two busy loops or two disk tests at once would share the host's cores and
  // disk, and measure each other instead of the limits.
  for (size_t i = 0; i < p.nodes.size() && !util::interrupt_requested(); ++i) {
    const plan::Node& n = p.nodes[i];
    if (n.quota < 1 && n.cputune_quota > 0) quota_check(n, exec, hv, opt, per[i]);
    if (util::interrupt_requested()) break;
    if (n.read_bytes_sec > 0 || n.write_bytes_sec > 0) disk_check(n, exec, opt, per[i]);
  }
  if (util::interrupt_requested()) {
    if (events) events->emit("resources", "end", "", -1, "", {{"interrupted", true}});
    return util::check_interrupt().error();
  }
  for (auto& c : per)
    for (auto& r : c.rows) {
      if (r.status == "warning") rep.warnings.push_back(r.message);
      if (r.status == "error") rep.failures.push_back(r.message);
      if (events) {
        nlohmann::json f = {{"check", r.check}, {"status", r.status}, {"measured", r.measured}};
        if (r.value) f["value"] = *r.value;
        events->emit("resources", "checked", "", -1, r.node, f);
      }
      rep.rows.push_back(std::move(r));
    }
  if (!run_dir.empty()) {
    rep.csv = run_dir / "infrastructure" / "resources.csv";
    TRY_STATUS(util::write_file_atomic(rep.csv, format_resource_csv(rep.rows)));
  }
  if (events)
    events->emit("resources", "end", "", -1, "",
                 {{"warnings", rep.warnings.size()}, {"failures", rep.failures.size()}});
  return rep;
}

}  // namespace continuum::infra

#include "continuum/energy/host_feed.h"

#include <libvirt/libvirt.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <sstream>

#include "continuum/util/files.h"
#include "continuum/util/strings.h"

namespace continuum::energy {
namespace {

namespace fs = std::filesystem;

Expected<double> read_number(const fs::path& f) {
  auto text = TRY(util::read_file(f));
  auto t = util::trim(text);
  char* end = nullptr;
  std::string s(t);
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != 0) return make_error(f.string() + ": not a number: '" + s + "'");
  return v;
}

class LibvirtCpu : public CpuTimeSource {
 public:
  explicit LibvirtCpu(virConnectPtr c) : conn_(c) {}
  ~LibvirtCpu() override { virConnectClose(conn_); }
  Expected<std::map<std::string, uint64_t>> cpu_time_ns() override {
    virDomainPtr* doms = nullptr;
    int n = virConnectListAllDomains(conn_, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    if (n < 0) return make_error("libvirt: cannot list domains");
    std::map<std::string, uint64_t> out;
    for (int i = 0; i < n; ++i) {
      virDomainInfo info;
      const char* name = virDomainGetName(doms[i]);
      if (name && virDomainGetInfo(doms[i], &info) == 0) out[name] = info.cpuTime;
      virDomainFree(doms[i]);
    }
    free(doms);
    return out;
  }

 private:
  virConnectPtr conn_;
};

/// Opens `path` for appending, with the header when it is new.
Expected<std::FILE*> open_record(const fs::path& path) {
  std::error_code ec;
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);
  std::FILE* f = std::fopen(path.c_str(), "ae");
  if (!f)
    return make_error("energy host feed: cannot open " + path.string() + ": " +
                      std::strerror(errno));
  if (std::ftell(f) == 0) {
    std::string h = std::string(kFeedCsvHeader) + "\n";
    if (std::fwrite(h.data(), 1, h.size(), f) != h.size() || std::fflush(f) != 0) {
      std::fclose(f);
      return make_error("energy host feed: cannot write " + path.string());
    }
  }
  return f;
}

}  // namespace

Expected<std::unique_ptr<CpuTimeSource>> libvirt_cpu_source(const std::string& uri) {
  virConnectPtr c = virConnectOpenReadOnly(uri.c_str());
  if (!c) return make_error("libvirt: cannot connect to " + uri);
  return std::unique_ptr<CpuTimeSource>(new LibvirtCpu(c));
}

Expected<uint64_t> host_busy_ns(const fs::path& proc_stat) {
  auto text = TRY(util::read_file(proc_stat));
  std::istringstream in(text);
  std::string cpu;
  uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  if (!(in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq) || cpu != "cpu")
    return make_error(proc_stat.string() + ":1: expected the aggregate 'cpu' line");
  in >> steal;  // absent on old kernels
  long hz = sysconf(_SC_CLK_TCK);
  if (hz <= 0) hz = 100;
  return (user + nice + system + irq + softirq + steal) *
         (1000000000ull / static_cast<uint64_t>(hz));
}

HostFeed::HostFeed(HostFeedOptions opts, std::unique_ptr<CpuTimeSource> cpu)
    : opts_(std::move(opts)), cpu_(std::move(cpu)) {}

HostFeed::~HostFeed() {
  stop();
  if (record_) std::fclose(record_);
}

Status HostFeed::step() {
  double host_uj = TRY(read_number(opts_.powercap_path / "energy_uj"));
  double range = 0;
  if (auto r = read_number(opts_.powercap_path / "max_energy_range_uj")) range = *r;
  uint64_t busy = TRY(host_busy_ns(opts_.proc_stat));
  auto cpu = TRY(cpu_->cpu_time_ns());

  std::lock_guard lock(mu_);
  if (!opts_.record_csv.empty() && !record_) record_ = TRY(open_record(opts_.record_csv));
  if (have_base_) {
    double d_host = host_uj - last_host_uj_;
    if (d_host < 0) d_host = range > last_host_uj_ ? range - last_host_uj_ + host_uj : 0;  // wrap
    double d_busy = busy > last_busy_ ? static_cast<double>(busy - last_busy_) : 0;
    std::map<std::string, double> share;
    double sum = 0;
    for (const auto& vm : opts_.vms) {
      auto now = cpu.find(vm);
      auto before = last_cpu_.find(vm);
      double s = 0;
      if (now != cpu.end() && before != last_cpu_.end() && now->second >= before->second &&
          d_busy > 0)
        s = std::clamp(static_cast<double>(now->second - before->second) / d_busy, 0.0, 1.0);
      share[vm] = s;
      sum += s;
    }
    // The host's busy time includes the VMs: shares above 1 in total are sampling skew.
    double norm = sum > 1 ? 1 / sum : 1;
    for (const auto& vm : opts_.vms) energy_[vm] += share[vm] * norm * d_host;
  } else {
    for (const auto& vm : opts_.vms) energy_[vm] = 0;
    have_base_ = true;
  }
  last_host_uj_ = host_uj;
  last_busy_ = busy;
  last_cpu_ = cpu;
  std::string rows;
  for (const auto& vm : opts_.vms) {
    auto dir = opts_.share_root / vm / "intel-rapl:0";
    char buf[32];
    const auto uj = static_cast<uint64_t>(energy_[vm]);
    std::snprintf(buf, sizeof buf, "%" PRIu64 "\n", uj);
    if (!fs::exists(dir / "name")) {
      TRY_STATUS(util::write_file_atomic(dir / "name", "package-0\n"));
      TRY_STATUS(util::write_file_atomic(dir / "max_energy_range_uj", "9223372036854775807\n"));
    }
    // Atomic replace (temp + rename): a guest reading over virtiofs never sees a torn value.
    TRY_STATUS(util::write_file_atomic(dir / "energy_uj", buf));
    if (record_) {
      // Taken after the rename: from t on, a read in the guest gives this value.
      double t =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - opts_.run_start).count();
      rows +=
          util::format_fixed(t, 6) + "," + util::csv_field(vm) + "," + std::to_string(uj) + "\n";
    }
  }
  // One write per step, flushed: a reader (or a crash) sees whole steps.
  if (record_ && (std::fwrite(rows.data(), 1, rows.size(), record_) != rows.size() ||
                  std::fflush(record_) != 0))
    return make_error("energy host feed: cannot write " + opts_.record_csv.string());
  return {};
}

Status HostFeed::start() {
  TRY_STATUS(step());
  stopping_ = false;
  thread_ = std::thread([this] {
    auto period = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(this->period()));
    auto next = std::chrono::steady_clock::now() + period;
    bool failing = false;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        if (cv_.wait_until(lock, next, [this] { return stopping_; })) return;
      }
      auto st = step();
      if (!st && !failing) spdlog::warn("energy host feed: {}", st.error().message);
      failing = !st.ok();
      next += period;
    }
  });
  return {};
}

void HostFeed::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (!thread_.joinable()) return;
  thread_.join();
  // One last step on the way out, as the scraper takes one last scrape before it: feed.csv then
  // reaches past the last sample, so every sample lies inside what the feed recorded.
  if (auto st = step(); !st) spdlog::warn("energy host feed: {}", st.error().message);
}

double HostFeed::period() const {
  return opts_.max_step > 0 ? std::min(opts_.interval, opts_.max_step) : opts_.interval;
}

std::map<std::string, double> HostFeed::energy_uj() const {
  std::lock_guard lock(mu_);
  return energy_;
}

}  // namespace continuum::energy

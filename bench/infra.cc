// bench_infra: the infrastructure phase's own cost at scale, without guests booting.
//   bench_infra [VMS (default 1000)] [HOSTS (default 1)]
// With HOSTS > 1 the VMs are placed over this host and HOSTS - 1 external_physical_machines
// (qemu+ssh URIs; nothing connects to them: planning and rendering are pure) of 32 cores each.
//   1. plan (config::load + plan::make) + domain XML + host keys + seed rendering for 1,000 VMs
//   2. define + start + destroy + undefine of 1,000 domains on libvirt's test driver (real API)
//   3. the ledger writes apply makes for 1,000 VMs (intent + created per batch, atomic + fsync)
// Prints wall time per step and the peak RSS (getrusage ru_maxrss).
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "continuum/config/config.h"
#include "continuum/infra/domain_xml.h"
#include "continuum/infra/hypervisor.h"
#include "continuum/infra/ledger.h"
#include "continuum/infra/network_xml.h"
#include "continuum/infra/seed.h"
#include "continuum/plan/plan.h"
#include "continuum/util/files.h"
#include "continuum/util/parallel.h"

namespace fs = std::filesystem;
using namespace continuum;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

long peak_rss_mib() {
  struct rusage u {};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024;  // Linux: KiB
}

void line(const char* what, double secs, size_t n) {
  std::printf("%-52s %8.3f s  %8.1f us/VM  peak RSS %ld MiB\n", what, secs,
              secs * 1e6 / static_cast<double>(n), peak_rss_mib());
}

}  // namespace

int main(int argc, char** argv) {
  int n = 1000, n_hosts = 1;
  if (argc > 1) n = std::atoi(argv[1]);
  if (argc > 2) n_hosts = std::atoi(argv[2]);
  if (n <= 0 || n > 5000 || n_hosts <= 0 || n_hosts > 200) {
    std::fprintf(stderr,
                 "usage: bench_infra [VMS (1..5000, default 1000)] [HOSTS (1..200, default 1)]\n");
    return 2;
  }
  fs::path tmp =
      fs::temp_directory_path() / ("continuum-bench-infra-" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  fs::path cfg_file = tmp / "bench_many.cfg";
  std::string cfg_text =
      "[infrastructure]\nprovider = qemu\ninfra_only = True\n"
      "cloud_nodes = 2\ncloud_cores = 2\ncloud_memory = 2\ncloud_quota = 1.0\n"
      "edge_nodes = " +
      std::to_string(n / 2 - 2) +
      "\nedge_cores = 1\nedge_memory = 1\nedge_quota = 0.5\n"
      "endpoint_nodes = " +
      std::to_string(n - n / 2) +
      "\nendpoint_cores = 1\nendpoint_memory = 1\nendpoint_quota = 0.5\n"
      "virtiofs = True\n";
  std::vector<int> external_cores;
  if (n_hosts > 1) {
    // Documentation addresses (RFC 5737): planned, never contacted.
    cfg_text += "external_physical_machines = ";
    for (int h = 1; h < n_hosts; ++h) {
      cfg_text += (h > 1 ? ", " : "") + std::string("bench@192.0.2.") + std::to_string(h);
      external_cores.push_back(32);
    }
    cfg_text += "\n";
  }
  if (!util::write_file_atomic(cfg_file, cfg_text).ok()) return 1;

  std::printf("continuum bench_infra: %d VMs on %d host(s)\n", n, n_hosts);
  double t0 = now_s();
  auto cfg = config::load(cfg_file);
  if (!cfg.ok()) {
    std::fprintf(stderr, "config: %s\n", cfg.error().message.c_str());
    return 1;
  }
  plan::Environment env;
  env.user = "bench";
  env.local_cores = 2;
  env.external_cores = external_cores;
  auto plan = plan::make(*cfg, env);
  if (!plan.ok()) {
    std::fprintf(stderr, "plan: %s\n", plan.error().message.c_str());
    return 1;
  }
  size_t vms = plan->nodes.size();
  line("config::load + plan::make", now_s() - t0, vms);
  if (plan->hosts.size() > 1) {
    std::vector<size_t> per_host(plan->hosts.size());
    for (const auto& node : plan->nodes) per_host[node.host]++;
    const auto [lo, hi] = std::minmax_element(per_host.begin(), per_host.end());
    std::printf("  placed on %zu hosts: %zu to %zu VMs per host (this host: %zu)\n",
                plan->hosts.size(), *lo, *hi, per_host[0]);
  }

  t0 = now_s();
  size_t bytes = 0;
  std::vector<std::string> xmls;
  xmls.reserve(vms);
  for (const auto& node : plan->nodes) {
    infra::DomainParams p;
    p.disk = "/var/lib/continuum/" + node.name + ".qcow2";
    p.seed = "/var/lib/continuum/" + node.name + ".seed.iso";
    p.console_log = "/runs/r/infrastructure/" + node.name + ".console.log";
    p.kernel = "/cache/vmlinuz";
    p.initrd = "/cache/initrd.img";
    p.cmdline = "root=/dev/vda console=ttyS0";
    p.shares.push_back({"/var/lib/libvirt/scaphandre/" + node.name, "continuum"});
    xmls.push_back(infra::domain_xml(node, plan->network, p));
    bytes += xmls.back().size();
  }
  bytes += infra::network_xml(plan->network).size();
  const double xml_secs = now_s() - t0;
  line("domain + network XML", xml_secs, vms);

  // Host keys, one per VM as apply makes them (in-process ed25519, run in parallel as apply runs
  // its seed step), then the seeds rendered with them: what apply does before writing the ISOs.
  const double t_all = now_s();
  t0 = now_s();
  std::vector<infra::SshKeyPair> keys(vms);
  const size_t workers = std::max(1U, std::thread::hardware_concurrency());
  Status ks = util::for_each_parallel(vms, workers, [&](size_t i) -> Status {
    keys[i] = TRY(infra::generate_host_key(plan->nodes[i].name));
    return {};
  });
  if (!ks.ok()) {
    std::fprintf(stderr, "host keys: %s\n", ks.error().message.c_str());
    return 1;
  }
  line("host keys (libssh ed25519, parallel)", now_s() - t0, vms);
  t0 = now_s();
  size_t seed_bytes = 0;
  for (size_t i = 0; i < vms; ++i) {
    const auto& node = plan->nodes[i];
    auto spec =
        infra::seed_spec(node, plan->network, node.name + "-bench", keys[i].public_key, keys[i],
                         infra::mac_address(node), {{"continuum", "/var/scaphandre"}});
    for (const auto& [name, content] : infra::render_seed(spec)) seed_bytes += content.size();
  }
  line("seed rendering (user-data, meta-data, network-config)", now_s() - t0, vms);
  std::printf("%-52s %8.3f s  (goal < 0.5 s and < 50 MB; peak RSS above)\n",
              "=> XML + host keys + seeds", xml_secs + (now_s() - t_all));
  std::printf("  generated %.1f MiB of XML and %.1f MiB of seed files\n",
              static_cast<double>(bytes) / 1048576.0, static_cast<double>(seed_bytes) / 1048576.0);

  auto hv = infra::connect_libvirt("test:///default");
  if (!hv.ok()) {
    std::fprintf(stderr, "%s\n", hv.error().message.c_str());
    return 1;
  }
  auto h = *hv;
  for (size_t workers : {size_t(1), size_t(8)}) {
    t0 = now_s();
    auto s = util::for_each_parallel(vms, workers, [&](size_t i) -> Status {
      TRY_STATUS(h->define_domain(plan->nodes[i].name, xmls[i]));
      return h->start_domain(plan->nodes[i].name);
    });
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.error().message.c_str());
      return 1;
    }
    char what[96];
    std::snprintf(what, sizeof what, "test driver: define + start (%zu worker%s)", workers,
                  workers > 1 ? "s" : "");
    line(what, now_s() - t0, vms);
    t0 = now_s();
    s = util::for_each_parallel(vms, workers, [&](size_t i) -> Status {
      TRY_STATUS(h->destroy_domain(plan->nodes[i].name));
      return h->undefine_domain(plan->nodes[i].name);
    });
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.error().message.c_str());
      return 1;
    }
    std::snprintf(what, sizeof what, "test driver: destroy + undefine (%zu worker%s)", workers,
                  workers > 1 ? "s" : "");
    line(what, now_s() - t0, vms);
  }
  // The ledger as apply writes it: one intent write and one "created" write per batch
  // (network, seeds+shares, overlays, domains), each a whole-file atomic rewrite with fsync.
  t0 = now_s();
  {
    auto ledger = infra::Ledger::create(
        tmp / "run" / "state.json", {(tmp / "run").string(), "bench", "bench_many", "applying"});
    if (!ledger.ok()) return 1;
    auto batch = [&](infra::ResourceKind kind, const std::string& suffix) -> bool {
      std::vector<infra::Resource> b;
      for (const auto& node : plan->nodes)
        b.push_back(
            {0, kind, "qemu:///system", "/var/lib/continuum/" + node.name + suffix, node.id, {}});
      auto ids = (*ledger)->intend(std::move(b));
      return ids.ok() && (*ledger)->set_state(*ids, infra::ResourceState::created).ok();
    };
    if (!batch(infra::ResourceKind::seed, ".seed.iso") ||
        !batch(infra::ResourceKind::share_dir, "") ||
        !batch(infra::ResourceKind::overlay, ".qcow2") || !batch(infra::ResourceKind::domain, ""))
      return 1;
    std::error_code ec;
    std::printf("  state.json: %.1f KiB for %zu resources\n",
                static_cast<double>(fs::file_size(tmp / "run" / "state.json", ec)) / 1024.0,
                4 * vms);
  }
  line("ledger: 8 atomic writes as apply does", now_s() - t0, vms);

  auto left = h->list_domains();
  std::printf("domains left on the test driver: %zu (the driver's own 'test')\n",
              left.ok() ? left->size() : 0);
  fs::remove_all(tmp);
  std::printf("peak RSS: %ld MiB\n", peak_rss_mib());
  return 0;
}

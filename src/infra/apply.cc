#include "continuum/infra/apply.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "continuum/infra/destroy.h"
#include "continuum/infra/domain_xml.h"
#include "continuum/infra/ledger.h"
#include "continuum/infra/network_xml.h"
#include "continuum/infra/seed.h"
#include "continuum/util/files.h"
#include "continuum/util/hash.h"
#include "continuum/util/interrupt.h"
#include "continuum/util/parallel.h"
#include "continuum/util/strings.h"

namespace continuum::infra {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kShareTag = config::kVirtiofsTag;

using util::check_interrupt;

const fs::perms kPrivate = fs::perms::owner_read | fs::perms::owner_write;

// On a remote host: the runs' pools under one directory, and the cache of base images (a pool
// that stays, autostarted, shared by the runs of every user of that host's libvirtd).
constexpr const char* kRemoteDiskRoot = "/var/lib/continuum/disks";
constexpr const char* kRemoteImageRoot = "/var/lib/continuum/images";
constexpr const char* kImagePool = "continuum-images";

/// A cached file's volume name: its name with a hash of its path, size and modification time,
/// so a rebuilt image (same path, new content) gets a new copy.
std::string cache_volume_name(const fs::path& f) {
  std::error_code ec;
  const auto size = fs::file_size(f, ec);
  const auto mtime = fs::last_write_time(f, ec).time_since_epoch().count();
  util::Sha256 h;
  h.update(fs::absolute(f).string() + "\n" + std::to_string(size) + "\n" + std::to_string(mtime));
  std::string parent = f.parent_path().filename().string();
  return (parent.empty() ? std::string() : parent + "-") + h.hex().substr(0, 12) + "-" +
         f.filename().string();
}

/// One VM's files and facts while it is being deployed.
struct VmWork {
  const plan::Node* node = nullptr;
  HypervisorPtr hv;
  size_t host = 0;
  Accelerator accel = Accelerator::tcg;
  fs::path overlay, seed, console_log, xml_file;
  /// On a remote host (Hypervisor::files_local() false): the seed's copy there, which the domain
  /// boots from (`seed` is the local file it is uploaded from).
  fs::path remote_seed;
  std::vector<Share> shares;
  std::string host_public_key;
  Clock::time_point started;
  double boot_seconds = 0;
};

class Deployer {
 public:
  Deployer(const plan::Plan& plan, fs::path run_dir, const ApplyOptions& o, record::EventLog* ev,
           Ledger& ledger)
      : plan_(plan), run_(std::move(run_dir)), opt_(o), events_(ev), ledger_(ledger) {
    infra_dir_ = run_ / "infrastructure";
    // QEMU (libvirt-qemu) must reach the disks: a run directory under /root is not reachable,
    // so root's disks then go to /var/lib/continuum/disks/<run> (files recorded in the ledger).
    // Only for QEMU: other drivers (test:///default) open no files.
    bool qemu = false;
    for (const auto& h : plan_.hosts) qemu = qemu || h.libvirt_uri.starts_with("qemu");
    disk_dir_ =
        !o.disk_dir.empty() ? o.disk_dir
        : qemu ? util::qemu_reachable(infra_dir_ / "disks", "disks/" + run_.filename().string())
               : infra_dir_ / "disks";
  }

  Expected<Deployment> run() {
    if (plan_.hosts.empty()) return make_error("the plan has no hosts");
    if (!opt_.base_image) return make_error("internal: ApplyOptions.base_image is not set");
    if (!opt_.skip_ssh_wait && !opt_.wait_ready)
      return make_error("internal: ApplyOptions.wait_ready is not set");
    std::error_code ec;
    fs::create_directories(infra_dir_, ec);
    if (ec) return make_error(infra_dir_.string() + ": " + ec.message());

    if (opt_.remove_leftovers) {
      DestroyOptions d;
      d.hypervisors = opt_.hypervisors;
      d.workers = opt_.workers;
      size_t n = TRY(remove_leftovers(plan_, opt_.output_dir, run_, d));
      if (n > 0) spdlog::info("removed {} leftover resource(s) of earlier runs", n);
    }
    TRY_STATUS(check_interrupt());

    // Base image first: the KVM probe boots its kernel.
    BaseImage base = TRY(opt_.base_image());
    TRY_STATUS(check_interrupt());
    TRY_STATUS(connect_hosts(base));
    TRY_STATUS(make_pools());
    TRY_STATUS(check_interrupt());
    TRY_STATUS(make_network());
    TRY_STATUS(check_interrupt());
    TRY_STATUS(make_seeds());
    TRY_STATUS(check_interrupt());
    TRY_STATUS(make_overlays(base));
    TRY_STATUS(check_interrupt());
    TRY_STATUS(start_domains(base));
    TRY_STATUS(check_interrupt());
    if (!opt_.skip_ssh_wait) TRY_STATUS(wait_ssh());
    TRY_STATUS(check_interrupt());
    return finish();
  }

 private:
  void event(const std::string& ev, const std::string& node,
             nlohmann::json details = nlohmann::json::object()) {
    if (events_) events_->emit("infrastructure", ev, "", -1, node, std::move(details));
  }

  Status connect_hosts(const BaseImage& base) {
    for (const auto& h : plan_.hosts) {
      auto hv = TRY(opt_.hypervisors(h.libvirt_uri));
      Accelerator a = TRY(hv->choose_accelerator(opt_.accelerator, base.kernel));
      spdlog::info("host {} ({}): guests run under {}", h.name, h.libvirt_uri,
                   a == Accelerator::kvm ? "KVM" : "TCG emulation");
      hosts_.push_back(hv);
      accels_.push_back(a);
    }
    vms_.resize(plan_.nodes.size());
    for (size_t i = 0; i < plan_.nodes.size(); ++i) {
      const auto& n = plan_.nodes[i];
      if (n.host >= hosts_.size())
        return make_error("node " + n.id + " is placed on a host the plan does not have");
      VmWork& w = vms_[i];
      w.node = &n;
      w.host = n.host;
      w.hv = hosts_[n.host];
      w.accel = accels_[n.host];
      w.overlay = disk_dir_ / (n.name + ".qcow2");
      w.seed = disk_dir_ / (n.name + ".seed.iso");
      w.console_log = infra_dir_ / (n.name + ".console.log");
      w.xml_file = infra_dir_ / (n.name + ".xml");
      if (!w.hv->files_local()) {
        // Everything the domain opens lives on its host, in the run's pool there.
        const fs::path dir = remote_dir();
        w.overlay = dir / (n.name + ".qcow2");
        w.remote_seed = dir / (n.name + ".seed.iso");
        w.console_log = dir / (n.name + ".console.log");
        if (opt_.virtiofs)
          return make_error("virtiofs shares are on this machine's disk, and " + n.name +
                                " runs on " + w.hv->uri() +
                                ": shared folders on other hosts are not supported",
                            ExitCode::usage);
      }
      if (opt_.virtiofs) w.shares.push_back({opt_.virtiofs_host_dir / n.name, kShareTag});
    }
    return {};
  }

  /// The run's directory on a remote host, the target of its storage pool there.
  fs::path remote_dir() const { return fs::path(kRemoteDiskRoot) / run_.filename(); }
  std::string pool_name() const { return "continuum-" + run_.filename().string(); }

  bool has_vms(size_t h) const {
    return std::any_of(vms_.begin(), vms_.end(), [&](const VmWork& w) { return w.host == h; });
  }
  /// A host whose files this machine cannot write and that gets VMs of this run.
  bool remote_with_vms(size_t h) const { return !hosts_[h]->files_local() && has_vms(h); }

  /// One storage pool per remote host that holds VMs of this run (its overlays, seeds and
  /// console logs), recorded before it is made; removing it removes what is left in it.
  Status make_pools() {
    for (size_t h = 0; h < hosts_.size(); ++h) {
      if (!remote_with_vms(h)) continue;
      size_t id = TRY(
          ledger_.intend(Resource{0, ResourceKind::pool, hosts_[h]->uri(), pool_name(), "", {}}));
      TRY_STATUS(hosts_[h]->create_pool(pool_name(), remote_dir()));
      TRY_STATUS(ledger_.set_state({id}, ResourceState::created));
      event("pool_created", "", {{"name", pool_name()}, {"uri", hosts_[h]->uri()}});
    }
    return {};
  }

  /// The base image's disk, kernel and initrd on host `h`: this machine's files for a local
  /// host; for a remote one the copies in its image cache pool, uploaded the first time (their
  /// volume names carry the files' identity, so a rebuilt image is uploaded again).
  Status place_base(const BaseImage& base) {
    host_base_.assign(hosts_.size(), base);
    return util::for_each_parallel(hosts_.size(), opt_.workers, [&](size_t h) -> Status {
      if (!remote_with_vms(h)) return {};
      auto copy = [&](const fs::path& f, const std::string& format) -> Expected<fs::path> {
        if (f.empty()) return f;
        return hosts_[h]->cached_volume(kImagePool, kRemoteImageRoot, cache_volume_name(f), f,
                                        format);
      };
      BaseImage& b = host_base_[h];
      b.disk = TRY(copy(base.disk, base.format));
      b.kernel = TRY(copy(base.kernel, "raw"));
      b.initrd = TRY(copy(base.initrd, "raw"));
      return {};
    });
  }

  Status make_network() {
    if (plan_.network.mode != "managed") return {};
    const auto& net = plan_.network;
    // This machine's bridge carries the gateway (and the NAT); every other host with VMs gets
    // the same bridge without an address, joined to this one by the tunnel.
    std::vector<size_t> members = {0};
    for (size_t h = 1; h < hosts_.size(); ++h)
      if (has_vms(h)) members.push_back(h);
    for (size_t h : members) {
      std::string xml = h == 0 ? network_xml(net) : network_xml_l2(net);
      TRY_STATUS(util::write_file_atomic(
          infra_dir_ /
              (h == 0 ? std::string("network.xml") : "network." + plan_.hosts[h].name + ".xml"),
          xml));
      auto& hv = hosts_[h];
      size_t id =
          TRY(ledger_.intend(Resource{0, ResourceKind::network, hv->uri(), net.name, "", {}}));
      TRY_STATUS(hv->define_network(net.name, xml));
      TRY_STATUS(hv->start_network(net.name));
      TRY_STATUS(ledger_.set_state({id}, ResourceState::created));
      event("network_created", "",
            {{"name", net.name}, {"bridge", net.bridge}, {"uri", hv->uri()}});
    }
    if (members.size() > 1) TRY_STATUS(make_tunnel(members));
    return {};
  }

  /// The VXLAN ends that make the hosts' bridges one L2 network: each host's end floods to the
  /// LAN addresses of all the others. A remote host's address is its name resolved here; this
  /// machine's is the source address of its route to the first of them.
  Status make_tunnel(const std::vector<size_t>& members) {
    const auto& net = plan_.network;
    std::vector<std::string> addr(members.size());
    for (size_t i = 1; i < members.size(); ++i) {
      auto h = uri_host(hosts_[members[i]]->uri());
      if (!h)
        return make_error("network_mode = managed over several hosts: " +
                          hosts_[members[i]]->uri() + " names no host for the tunnel");
      addr[i] = TRY(resolve_ipv4(h->host));
    }
    addr[0] = TRY(local_address_towards(addr[1]));
    const HostCommand run = opt_.host_command ? opt_.host_command : ssh_host_command(opt_.netns);
    const std::string dev = tunnel_device(net.bridge);
    for (size_t i = 0; i < members.size(); ++i) {
      TRY_STATUS(check_interrupt());
      TunnelEnd end{hosts_[members[i]]->uri(), addr[i], {}};
      for (size_t j = 0; j < members.size(); ++j)
        if (j != i) end.peers.push_back(addr[j]);
      size_t id = TRY(ledger_.intend(Resource{0, ResourceKind::link, end.uri, dev, "", {}}));
      for (const auto& argv : tunnel_commands(end, net.bridge)) {
        auto r = TRY(run(end.uri, argv));
        if (r.exit_code != 0)
          return make_error("tunnel on " + end.uri + ": `" + util::shell_join(argv) +
                            "` failed (exit " + std::to_string(r.exit_code) +
                            "): " + std::string(util::trim(r.err)));
      }
      TRY_STATUS(ledger_.set_state({id}, ResourceState::created));
      event("tunnel_created", "",
            {{"device", dev}, {"uri", end.uri}, {"local", end.underlay}, {"peers", end.peers}});
      spdlog::info("network: {} on {} joins {} to {} (VXLAN {}, {})", dev, end.uri, net.bridge,
                   util::join(end.peers, ", "), tunnel_vni(net.bridge), end.underlay);
    }
    return {};
  }

  Status make_seeds() {
    std::string user_pub = TRY(ensure_user_key(opt_.private_key));
    // Ledger first: seeds hold the guests' private host keys, so they must never be orphaned.
    std::vector<Resource> batch;
    for (auto& w : vms_) {
      batch.push_back({0, ResourceKind::seed, "", w.seed.string(), w.node->id, {}});
      if (!w.remote_seed.empty())
        batch.push_back(
            {0, ResourceKind::seed, w.hv->uri(), w.remote_seed.string(), w.node->id, {}});
      for (const auto& s : w.shares)
        batch.push_back({0, ResourceKind::share_dir, "", s.host_dir.string(), w.node->id, {}});
    }
    auto ids = TRY(ledger_.intend(std::move(batch)));
    std::error_code ec;
    fs::create_directories(disk_dir_, ec);
    if (ec) return make_error(disk_dir_.string() + ": cannot create: " + ec.message());
    std::string stamp = run_.filename().string();
    Status s = util::for_each_parallel(vms_.size(), opt_.workers, [&](size_t i) -> Status {
      VmWork& w = vms_[i];
      const plan::Node& n = *w.node;
      SshKeyPair host_key = TRY(generate_host_key(n.name));
      w.host_public_key = host_key.public_key;
      std::vector<SeedMount> mounts;
      for (const auto& sh : w.shares) {
        std::error_code e;
        fs::create_directories(sh.host_dir, e);
        if (e)
          return make_error(sh.host_dir.string() +
                            ": cannot create virtiofs directory: " + e.message());
        mounts.push_back({sh.tag, opt_.virtiofs_guest_dir});
      }
      SeedSpec spec = seed_spec(n, plan_.network, n.name + "-" + stamp, user_pub, host_key,
                                mac_address(n), mounts);
      SeedFiles files = render_seed(spec);
      // user-data carries the private host key: keep the run's copy private too.
      if (auto it = files.find("user-data"); it != files.end())
        TRY_STATUS(
            util::write_file_atomic(infra_dir_ / (n.name + ".user-data"), it->second, kPrivate));
      TRY_STATUS(write_seed_image(files, w.seed));
      if (w.remote_seed.empty()) return {};
      auto at =
          TRY(w.hv->upload_volume(pool_name(), w.remote_seed.filename().string(), w.seed, "raw"));
      if (at != w.remote_seed)
        return make_error("the seed of " + n.name + " landed at " + at.string() + " on " +
                          w.hv->uri() + ", not at " + w.remote_seed.string());
      return {};
    });
    TRY_STATUS(s);
    TRY_STATUS(ledger_.set_state(ids, ResourceState::created));
    std::vector<std::pair<std::string, std::string>> keys;
    for (const auto& w : vms_) keys.emplace_back(w.node->ip, w.host_public_key);
    TRY_STATUS(write_known_hosts(run_ / "known_hosts", keys));
    return {};
  }

  Status make_overlays(const BaseImage& base) {
    std::vector<Resource> batch;
    for (const auto& w : vms_)
      batch.push_back({0, ResourceKind::overlay, w.hv->uri(), w.overlay.string(), w.node->id, {}});
    TRY_STATUS(place_base(base));
    TRY_STATUS(check_interrupt());
    auto ids = TRY(ledger_.intend(std::move(batch)));
    TRY_STATUS(util::for_each_parallel(vms_.size(), opt_.workers, [&](size_t i) -> Status {
      TRY_STATUS(check_interrupt());
      const BaseImage& b = host_base_[vms_[i].host];
      return vms_[i].hv->create_overlay(b.disk, b.format, vms_[i].overlay);
    }));
    return ledger_.set_state(ids, ResourceState::created);
  }

  Status start_domains(const BaseImage& base) {
    std::vector<std::string> xmls(vms_.size());
    std::vector<Resource> batch;
    for (size_t i = 0; i < vms_.size(); ++i) {
      VmWork& w = vms_[i];
      DomainParams p;
      p.accelerator = w.accel;
      const BaseImage& b = host_base_[w.host];
      p.disk = w.overlay;
      p.seed = w.remote_seed.empty() ? w.seed : w.remote_seed;
      p.console_log = w.console_log;
      p.kernel = b.kernel;
      p.initrd = b.initrd;
      p.cmdline = base.cmdline;
      p.shares = w.shares;
      xmls[i] = domain_xml(*w.node, plan_.network, p);
      TRY_STATUS(util::write_file_atomic(w.xml_file, xmls[i]));
      batch.push_back({0, ResourceKind::domain, w.hv->uri(), w.node->name, w.node->id, {}});
    }
    auto ids = TRY(ledger_.intend(std::move(batch)));
    std::vector<char> ok(vms_.size(), 0);
    std::atomic<bool> failed{false};  // once one VM fails, start no more: they would be rolled back
    auto start_one = [&](size_t i) -> Status {
      TRY_STATUS(check_interrupt());
      if (failed.load()) return make_error("not started: another VM failed first");
      VmWork& w = vms_[i];
      Status st = w.hv->define_domain(w.node->name, xmls[i]);
      if (st.ok()) {
        w.started = Clock::now();
        st = w.hv->start_domain(w.node->name);
      }
      if (!st.ok()) {
        failed.store(true);
        return st;
      }
      ok[i] = 1;
      event("vm_started", w.node->id, {{"name", w.node->name}, {"uri", w.hv->uri()}});
      return {};
    };
    // Each host's first domain alone, then the rest at once. Where libvirt makes the `machine`
    // cgroup partition itself (cgroup v1 without systemd-machined), two domains started together
    // on a host without one race: the second finds the partition made but its cpuset not yet
    // filled, inherits no CPUs, and fails ("Unable to write to .../cpuset/machine/qemu-2-...
    // /tasks: No space left on device", then "cpuset.memory_migrate: No such file or
    // directory"). Seen on a fresh partition in CI and here. The cost is one domain start.
    std::vector<size_t> first, rest;
    std::vector<char> seen(hosts_.size(), 0);
    for (size_t i = 0; i < vms_.size(); ++i) {
      char& s0 = seen[vms_[i].host];
      (s0 ? rest : first).push_back(i);
      s0 = 1;
    }
    Status s = util::for_each_parallel(first.size(), opt_.workers,
                                       [&](size_t k) { return start_one(first[k]); });
    if (s.ok())
      s = util::for_each_parallel(rest.size(), opt_.workers,
                                  [&](size_t k) { return start_one(rest[k]); });
    std::vector<size_t> created;
    for (size_t i = 0; i < vms_.size(); ++i)
      if (ok[i]) created.push_back(ids[i]);
    TRY_STATUS(ledger_.set_state(created, ResourceState::created));
    return s;
  }

  Status wait_ssh() {
    std::vector<ReadyTarget> targets;
    for (const auto& w : vms_) {
      ReadyTarget t;
      t.name = w.node->name;
      t.ssh.host = w.node->ip;
      t.ssh.user = w.node->ssh_user;
      t.ssh.private_key = opt_.private_key;
      t.ssh.known_hosts = run_ / "known_hosts";
      t.ssh.netns = opt_.netns;
      if (w.hv->files_local()) t.console_log = w.console_log;  // a remote one is not readable here
      t.started = w.started;
      targets.push_back(std::move(t));
    }
    // The error of wait_ready names every VM that missed its deadline with its console tail.
    auto results = TRY(opt_.wait_ready(targets, remotes_.get()));
    TRY_STATUS(check_interrupt());
    for (size_t i = 0; i < vms_.size() && i < results.size(); ++i) {
      VmWork& w = vms_[i];
      w.boot_seconds = results[i].seconds;
      spdlog::info("{} ({}) is up: SSH login after {:.1f} s", w.node->name, w.node->ip,
                   w.boot_seconds);
      event("vm_ready", w.node->id,
            {{"boot_seconds", w.boot_seconds}, {"attempts", results[i].attempts}});
    }
    return {};
  }

  Expected<Deployment> finish() {
    Deployment d;
    d.run_dir = run_;
    d.private_key = opt_.private_key;
    d.known_hosts = run_ / "known_hosts";
    d.netns = opt_.netns;
    d.remotes = remotes_;
    for (const auto& w : vms_) {
      DeployedNode n;
      n.id = w.node->id;
      n.name = w.node->name;
      n.tier = config::tier_name(w.node->tier);
      n.ip = w.node->ip;
      n.ssh_user = w.node->ssh_user;
      n.boot_seconds = w.boot_seconds;
      d.nodes.push_back(std::move(n));
    }
    TRY_STATUS(util::write_file_atomic(run_ / "deployment.json", to_json(d).dump(2) + "\n"));
    TRY_STATUS(ledger_.set_status("deployed"));
    return d;
  }

  const plan::Plan& plan_;
  fs::path run_;
  const ApplyOptions& opt_;
  record::EventLog* events_;
  Ledger& ledger_;
  fs::path infra_dir_, disk_dir_;
  std::vector<HypervisorPtr> hosts_;
  std::vector<Accelerator> accels_;
  std::vector<BaseImage> host_base_;  ///< per host: where its copy of the base image is
  std::vector<VmWork> vms_;
  /// The run's SSH sessions, seeded by the readiness logins; handed to the Deployment.
  std::shared_ptr<util::RemotePool> remotes_ = std::make_shared<util::RemotePool>();
};

}  // namespace

Expected<Deployment> apply(const plan::Plan& plan, const fs::path& run_dir_in,
                           const ApplyOptions& options, record::EventLog* events) {
  auto t0 = Clock::now();
  fs::path run_dir = fs::absolute(run_dir_in);
  if (events) events->emit("infrastructure", "start", "", -1, "", {{"vms", plan.nodes.size()}});
  auto ledger =
      TRY(Ledger::create(run_dir / "state.json",
                         LedgerInfo{run_dir.string(), plan.user, plan.config_name, "applying"}));
  Deployer deployer(plan, run_dir, options, events, *ledger);
  auto result = deployer.run();
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  if (result.ok()) {
    if (events) events->emit("infrastructure", "end", "", -1, "", {{"seconds", secs}});
    return result;
  }
  Error err = std::move(result).error();
  bool interrupted = util::interrupt_requested();
  spdlog::error("{}", err.message);
  spdlog::warn("{}: removing everything this run created",
               interrupted ? "interrupted" : "deployment failed");
  DestroyOptions d;
  d.hypervisors = options.hypervisors;
  d.workers = options.workers;
  d.events = events;
  d.final_status = "rolled_back";
  auto rb = destroy(*ledger, d);
  if (!rb.ok()) {
    err.message += "\nrollback failed: " + rb.error().message + " (run `continuum destroy " +
                   run_dir.string() + "` to retry)";
  } else if (!rb->errors.empty()) {
    err.message += "\nrollback left " + std::to_string(rb->errors.size()) +
                   " resource(s); run `continuum destroy " + run_dir.string() + "` to retry:";
    for (const auto& e : rb->errors) err.message += "\n  " + e;
  }
  if (events)
    events->emit("infrastructure", "end", "", -1, "",
                 {{"seconds", secs}, {"failed", true}, {"interrupted", interrupted}});
  if (interrupted) err.exit_code = ExitCode::interrupted;
  return err;
}

}  // namespace continuum::infra

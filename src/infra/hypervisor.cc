#include "continuum/infra/hypervisor.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <spdlog/spdlog.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "continuum/util/files.h"
#include "continuum/util/process.h"
#include "continuum/util/strings.h"
#include "xml_writer.h"

namespace continuum::infra {
namespace fs = std::filesystem;

const char* domain_type(Accelerator a) { return a == Accelerator::kvm ? "kvm" : "qemu"; }

std::optional<UriHost> uri_host(const std::string& uri) {
  // scheme://[user@]host[:port]/path[?query]
  static const std::regex re(R"(^[a-z0-9+]+://(?:([^@/]+)@)?([^:/?]+)(?::(\d+))?/)");
  std::smatch m;
  if (!std::regex_search(uri, m, re)) return std::nullopt;
  UriHost h;
  h.user = m[1].str();
  h.host = m[2].str();
  if (m[3].matched) h.port = std::stoi(m[3].str());
  return h;
}

namespace {

// libvirt prints every error to stderr by default; we report errors ourselves.
void silent_error_handler(void*, virErrorPtr) {}

std::string last_error(const std::string& what) {
  const char* m = virGetLastErrorMessage();
  return what + ": " + (m ? m : "unknown libvirt error");
}

/// A URI without a host part runs on this machine (qemu:///system, test:///default).
bool is_local_uri(const std::string& uri) { return !uri_host(uri); }

struct DomainHandle {
  virDomainPtr p = nullptr;
  ~DomainHandle() {
    if (p) virDomainFree(p);
  }
};
struct NetworkHandle {
  virNetworkPtr p = nullptr;
  ~NetworkHandle() {
    if (p) virNetworkFree(p);
  }
};

struct PoolHandle {
  virStoragePoolPtr p = nullptr;
  ~PoolHandle() {
    if (p) virStoragePoolFree(p);
  }
};
struct VolumeHandle {
  virStorageVolPtr p = nullptr;
  ~VolumeHandle() {
    if (p) virStorageVolFree(p);
  }
};
struct StreamHandle {
  virStreamPtr p = nullptr;
  ~StreamHandle() {
    if (p) virStreamFree(p);
  }
};

bool last_error_is(int code) {
  virErrorPtr e = virGetLastError();
  return e && e->code == code;
}

/// A volume's XML: its name, size, format and file mode; a qcow2 overlay names its backing file.
/// Modes: 0644 for what QEMU only reads through a backing chain (the cached base image, kernel,
/// initrd) whatever the daemon's dynamic ownership does; 0600 for a seed, which holds the VM's
/// private host key and which libvirt hands to QEMU when the domain starts.
std::string volume_xml(const std::string& name, unsigned long long capacity,
                       const std::string& format, const std::string& mode,
                       const std::string& backing = "", const std::string& backing_format = "") {
  std::string x = "<volume><name>" + detail::xml_escape(name) + "</name><capacity unit='bytes'>" +
                  std::to_string(capacity) + "</capacity><target><format type='" +
                  detail::xml_escape(format) + "'/><permissions><mode>" + detail::xml_escape(mode) +
                  "</mode></permissions></target>";
  if (!backing.empty())
    x += "<backingStore><path>" + detail::xml_escape(backing) + "</path><format type='" +
         detail::xml_escape(backing_format) + "'/></backingStore>";
  return x + "</volume>";
}

class LibvirtHypervisor : public Hypervisor {
 public:
  LibvirtHypervisor(std::string uri, virConnectPtr c) : uri_(std::move(uri)), conn_(c) {}
  ~LibvirtHypervisor() override { virConnectClose(conn_); }
  std::string uri() const override { return uri_; }

  Status define_domain(const std::string& name, const std::string& xml) override {
    DomainHandle d;
    // No VIR_DOMAIN_DEFINE_VALIDATE: the RelaxNG check reloads libvirt's schema on every call
    // (~80 ms each, measured by bench_infra), and our XML is schema-checked in tests instead
    // (virt-xml-validate on golden files). libvirt still parses and checks the definition.
    d.p = virDomainDefineXML(conn_, xml.c_str());
    if (!d.p) return make_error(err("define domain " + name + " on " + uri_));
    return {};
  }

  Status start_domain(const std::string& name) override {
    DomainHandle d;
    d.p = virDomainLookupByName(conn_, name.c_str());
    if (!d.p) return make_error(err("start domain " + name + " on " + uri_));
    if (virDomainCreate(d.p) < 0) return make_error(err("start domain " + name + " on " + uri_));
    return {};
  }

  Status destroy_domain(const std::string& name) override {
    DomainHandle d;
    d.p = virDomainLookupByName(conn_, name.c_str());
    if (!d.p) {
      if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN) return {};
      return make_error(err("destroy domain " + name + " on " + uri_));
    }
    if (virDomainIsActive(d.p) != 1) return {};
    if (virDomainDestroy(d.p) < 0) {
      int code = virGetLastErrorCode();
      if (code == VIR_ERR_OPERATION_INVALID || code == VIR_ERR_NO_DOMAIN) return {};
      return make_error(err("destroy domain " + name + " on " + uri_));
    }
    return {};
  }

  Status undefine_domain(const std::string& name) override {
    DomainHandle d;
    d.p = virDomainLookupByName(conn_, name.c_str());
    if (!d.p) {
      if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN) return {};
      return make_error(err("undefine domain " + name + " on " + uri_));
    }
    if (virDomainUndefine(d.p) < 0) {
      if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN) return {};
      return make_error(err("undefine domain " + name + " on " + uri_));
    }
    return {};
  }

  Expected<DomainState> domain_state(const std::string& name) override {
    DomainHandle d;
    d.p = virDomainLookupByName(conn_, name.c_str());
    if (!d.p) {
      if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN) return DomainState::absent;
      return make_error(err("look up domain " + name + " on " + uri_));
    }
    int state = 0, reason = 0;
    if (virDomainGetState(d.p, &state, &reason, 0) < 0)
      return make_error(err("state of domain " + name + " on " + uri_));
    switch (state) {
      case VIR_DOMAIN_RUNNING:
        return DomainState::running;
      case VIR_DOMAIN_SHUTOFF:
        return DomainState::shutoff;
      default:
        return DomainState::other;
    }
  }

  Expected<std::vector<std::string>> list_domains() override {
    virDomainPtr* doms = nullptr;
    int n = virConnectListAllDomains(conn_, &doms, 0);
    if (n < 0) return make_error(err("list domains on " + uri_));
    std::vector<std::string> names;
    names.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      if (const char* nm = virDomainGetName(doms[i])) names.emplace_back(nm);
      virDomainFree(doms[i]);
    }
    free(doms);  // NOLINT: allocated by libvirt with malloc
    return names;
  }

  Expected<std::vector<VcpuInfo>> vcpu_info(const std::string& name) override {
    DomainHandle d;
    d.p = virDomainLookupByName(conn_, name.c_str());
    if (!d.p) return make_error(err("look up domain " + name + " on " + uri_));
    virDomainInfo info;
    if (virDomainGetInfo(d.p, &info) < 0)
      return make_error(err("information of domain " + name + " on " + uri_));
    virNodeInfo node;
    if (virNodeGetInfo(conn_, &node) < 0) return make_error(err("node information of " + uri_));
    const int host_cpus = static_cast<int>(VIR_NODEINFO_MAXCPUS(node));
    const int maplen = VIR_CPU_MAPLEN(host_cpus);
    const int n = static_cast<int>(info.nrVirtCpu);
    std::vector<virVcpuInfo> vi(static_cast<size_t>(n));
    std::vector<unsigned char> maps(static_cast<size_t>(n) * static_cast<size_t>(maplen));
    int got = virDomainGetVcpus(d.p, vi.data(), n, maps.data(), maplen);
    if (got < 0) return make_error(err("vCPUs of domain " + name + " on " + uri_));
    std::vector<VcpuInfo> out;
    for (int i = 0; i < got; ++i) {
      VcpuInfo v;
      v.number = static_cast<int>(vi[static_cast<size_t>(i)].number);
      v.cpu_time_ns = vi[static_cast<size_t>(i)].cpuTime;
      v.cpu = vi[static_cast<size_t>(i)].cpu;
      for (int c = 0; c < host_cpus; ++c)
        if (VIR_CPU_USABLE(maps.data(), maplen, i, c)) v.affinity.push_back(c);
      out.push_back(std::move(v));
    }
    return out;
  }

  Status define_network(const std::string& name, const std::string& xml) override {
    NetworkHandle n;
    n.p = virNetworkDefineXML(conn_, xml.c_str());
    if (!n.p) return make_error(err("define network " + name + " on " + uri_));
    return {};
  }

  Status start_network(const std::string& name) override {
    ensure_mac_map_dir();
    NetworkHandle n;
    n.p = virNetworkLookupByName(conn_, name.c_str());
    if (!n.p || virNetworkCreate(n.p) < 0)
      return make_error(err("start network " + name + " on " + uri_));
    return {};
  }

  Status destroy_network(const std::string& name) override {
    NetworkHandle n;
    n.p = virNetworkLookupByName(conn_, name.c_str());
    if (!n.p) {
      if (virGetLastErrorCode() == VIR_ERR_NO_NETWORK) return {};
      return make_error(err("destroy network " + name + " on " + uri_));
    }
    if (virNetworkIsActive(n.p) != 1) return {};
    if (virNetworkDestroy(n.p) < 0 && virGetLastErrorCode() != VIR_ERR_OPERATION_INVALID)
      return make_error(err("destroy network " + name + " on " + uri_));
    return {};
  }

  Status undefine_network(const std::string& name) override {
    NetworkHandle n;
    n.p = virNetworkLookupByName(conn_, name.c_str());
    if (!n.p) {
      if (virGetLastErrorCode() == VIR_ERR_NO_NETWORK) return {};
      return make_error(err("undefine network " + name + " on " + uri_));
    }
    if (virNetworkUndefine(n.p) < 0 && virGetLastErrorCode() != VIR_ERR_NO_NETWORK)
      return make_error(err("undefine network " + name + " on " + uri_));
    return {};
  }

  Expected<bool> network_exists(const std::string& name) override {
    NetworkHandle n;
    n.p = virNetworkLookupByName(conn_, name.c_str());
    if (n.p) return true;
    if (virGetLastErrorCode() == VIR_ERR_NO_NETWORK) return false;
    return make_error(err("look up network " + name + " on " + uri_));
  }

  // On this machine qemu-img rather than libvirt storage volumes: a volume needs a storage pool
  // around the directory (one more resource to define, ledger and remove), while the overlay is
  // one file next to the run's other disks; qemu-img create is 2 MB and instant. A remote host's
  // overlay is a volume in the run's pool there (create_overlay_volume).
  Status create_overlay(const fs::path& base, const std::string& base_format,
                        const fs::path& path) override {
    if (!is_local_uri(uri_)) return create_overlay_volume(base, base_format, path);
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec)
      return make_error(path.parent_path().string() + ": cannot create directory: " + ec.message());
    util::ProcessSpec spec;
    spec.argv = {"qemu-img", "create",    "-q", "-f",          "qcow2",
                 "-F",       base_format, "-b", base.string(), path.string()};
    spec.timeout = std::chrono::seconds(60);
    auto r = TRY(util::run_process(spec));
    if (r.exit_code != 0)
      return make_error("qemu-img create " + path.string() + " (backing " + base.string() +
                        ") failed: " + std::string(util::trim(r.err)));
    return {};
  }

  Status remove_path(const fs::path& path) override {
    if (is_local_uri(uri_)) return util::remove_tree(path);
    VolumeHandle v{virStorageVolLookupByPath(conn_, path.c_str())};
    if (!v.p) {
      // No volume there (removed, or its pool went first, taking it along): absent is fine.
      if (last_error_is(VIR_ERR_NO_STORAGE_VOL) || last_error_is(VIR_ERR_NO_STORAGE_POOL))
        return {};
      return make_error(err("look up " + path.string() + " on " + uri_));
    }
    if (virStorageVolDelete(v.p, 0) < 0)
      return make_error(err("delete " + path.string() + " on " + uri_));
    return {};
  }

  Expected<Accelerator> choose_accelerator(const std::string& requested,
                                           const fs::path& probe_kernel) override;

  bool files_local() const override { return is_local_uri(uri_); }

  Status create_pool(const std::string& name, const fs::path& dir) override {
    return make_pool(name, dir, /*persistent_cache=*/false);
  }

  Status remove_pool(const std::string& name) override {
    PoolHandle pool{virStoragePoolLookupByName(conn_, name.c_str())};
    if (!pool.p) {
      if (last_error_is(VIR_ERR_NO_STORAGE_POOL)) return {};
      return make_error(err("look up storage pool " + name + " on " + uri_));
    }
    // Every volume first: the pool directory goes only when empty, and it also holds what
    // libvirt wrote there itself (the consoles' logs), seen once the pool is refreshed. A pool
    // left inactive (the host rebooted; run pools are not autostarted) is started for that;
    // one that cannot start has lost its directory, and only its definition is left.
    const bool active = virStoragePoolIsActive(pool.p) == 1 || virStoragePoolCreate(pool.p, 0) == 0;
    if (active) {
      if (virStoragePoolRefresh(pool.p, 0) < 0)
        return make_error(err("refresh storage pool " + name + " on " + uri_));
      virStorageVolPtr* vols = nullptr;
      int n = virStoragePoolListAllVolumes(pool.p, &vols, 0);
      if (n < 0) return make_error(err("list the volumes of pool " + name + " on " + uri_));
      std::string failed;
      for (int i = 0; i < n; ++i) {
        if (failed.empty() && virStorageVolDelete(vols[i], 0) < 0)
          failed = err("delete volume " + std::string(virStorageVolGetName(vols[i])) + " of pool " +
                       name + " on " + uri_);
        virStorageVolFree(vols[i]);
      }
      free(vols);  // NOLINT: libvirt allocates with malloc
      if (!failed.empty()) return make_error(failed);
      if (virStoragePoolDestroy(pool.p) < 0)
        return make_error(err("stop storage pool " + name + " on " + uri_));
      if (virStoragePoolDelete(pool.p, 0) < 0)
        return make_error(err("remove the directory of pool " + name + " on " + uri_));
    }
    if (virStoragePoolUndefine(pool.p) < 0)
      return make_error(err("undefine storage pool " + name + " on " + uri_));
    return {};
  }

  Expected<fs::path> upload_volume(const std::string& pool_name, const std::string& volume,
                                   const fs::path& local, const std::string& format) override {
    PoolHandle pool{virStoragePoolLookupByName(conn_, pool_name.c_str())};
    if (!pool.p) return make_error(err("look up storage pool " + pool_name + " on " + uri_));
    return upload(pool.p, pool_name, volume, local, format, "0600");
  }

  Expected<fs::path> cached_volume(const std::string& pool_name, const fs::path& dir,
                                   const std::string& volume, const fs::path& local,
                                   const std::string& format) override {
    // One client at a time per connection: two VMs' overlays ask for the same base at once.
    std::lock_guard lock(cache_mu_);
    PoolHandle pool{virStoragePoolLookupByName(conn_, pool_name.c_str())};
    if (!pool.p) {
      if (!last_error_is(VIR_ERR_NO_STORAGE_POOL))
        return make_error(err("look up storage pool " + pool_name + " on " + uri_));
      TRY_STATUS(make_pool(pool_name, dir, /*persistent_cache=*/true));
      pool.p = virStoragePoolLookupByName(conn_, pool_name.c_str());
      if (!pool.p) return make_error(err("look up storage pool " + pool_name + " on " + uri_));
    } else if (virStoragePoolIsActive(pool.p) != 1 && virStoragePoolCreate(pool.p, 0) < 0) {
      return make_error(err("start storage pool " + pool_name + " on " + uri_));
    }
    if (virStoragePoolRefresh(pool.p, 0) < 0)
      return make_error(err("refresh storage pool " + pool_name + " on " + uri_));
    // The volume counts only next to its marker, which is made after the upload ended: a run
    // stopped half-way leaves a volume without one, which is uploaded again.
    const std::string marker = volume + ".complete";
    VolumeHandle done{virStorageVolLookupByName(pool.p, marker.c_str())};
    VolumeHandle have{virStorageVolLookupByName(pool.p, volume.c_str())};
    if (done.p && have.p) {
      char* path = virStorageVolGetPath(have.p);
      if (!path) return make_error(err("path of volume " + volume + " on " + uri_));
      fs::path out = path;
      free(path);  // NOLINT: libvirt allocates with malloc
      return out;
    }
    if (have.p && virStorageVolDelete(have.p, 0) < 0)
      return make_error(err("delete the incomplete volume " + volume + " on " + uri_));
    spdlog::info("{}: uploading {} ({:.0f} MiB) as {}/{}; later runs reuse it", uri_,
                 local.filename().string(), file_mib(local), pool_name, volume);
    fs::path out = TRY(upload(pool.p, pool_name, volume, local, format, "0644"));
    const std::string mx = volume_xml(marker, 0, "raw", "0644");
    VolumeHandle m{virStorageVolCreateXML(pool.p, mx.c_str(), 0)};
    if (!m.p) return make_error(err("create volume " + marker + " on " + uri_));
    return out;
  }

 private:
  static double file_mib(const fs::path& p) {
    std::error_code ec;
    auto n = fs::file_size(p, ec);
    return ec ? 0.0 : static_cast<double>(n) / (1024.0 * 1024.0);
  }

  Status make_pool(const std::string& name, const fs::path& dir, bool persistent_cache) {
    const std::string xml = "<pool type='dir'><name>" + detail::xml_escape(name) +
                            "</name><target><path>" + detail::xml_escape(dir.string()) +
                            "</path><permissions><mode>0755</mode></permissions></target></pool>";
    PoolHandle pool{virStoragePoolDefineXML(conn_, xml.c_str(), 0)};
    if (!pool.p) return make_error(err("define storage pool " + name + " on " + uri_));
    // Build makes the directory (and its parents); an existing one is fine for the cache.
    if (virStoragePoolBuild(pool.p, 0) < 0 && !persistent_cache) {
      std::string e = err("create the directory " + dir.string() + " of pool " + name);
      virStoragePoolUndefine(pool.p);
      return make_error(e);
    }
    if (virStoragePoolCreate(pool.p, 0) < 0) {
      std::string e = err("start storage pool " + name + " on " + uri_);
      virStoragePoolUndefine(pool.p);
      return make_error(e);
    }
    if (persistent_cache) virStoragePoolSetAutostart(pool.p, 1);
    return {};
  }

  Expected<fs::path> upload(virStoragePoolPtr pool, const std::string& pool_name,
                            const std::string& volume, const fs::path& local,
                            const std::string& format, const std::string& mode) {
    std::error_code ec;
    const auto size = fs::file_size(local, ec);
    if (ec) return make_error(local.string() + ": " + ec.message());
    const std::string xml = volume_xml(volume, size, format, mode);
    VolumeHandle vol{virStorageVolCreateXML(pool, xml.c_str(), 0)};
    if (!vol.p)
      return make_error(err("create volume " + volume + " in pool " + pool_name + " on " + uri_));
    auto fail = [&](const std::string& what) {
      std::string e = err(what);
      virStorageVolDelete(vol.p, 0);
      return make_error(e);
    };
    std::ifstream in(local, std::ios::binary);
    if (!in) {
      virStorageVolDelete(vol.p, 0);
      return make_error(local.string() + ": cannot open for reading");
    }
    StreamHandle st{virStreamNew(conn_, 0)};
    if (!st.p) return fail("open a stream to " + uri_);
    if (virStorageVolUpload(vol.p, st.p, 0, size, 0) < 0)
      return fail("upload " + local.string() + " to " + pool_name + "/" + volume);
    std::vector<char> buf(1 << 20);
    unsigned long long sent = 0;
    while (sent < size) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      std::streamsize got = in.gcount();
      if (got <= 0) {
        virStreamAbort(st.p);
        virStorageVolDelete(vol.p, 0);
        return make_error(local.string() + ": read failed after " + std::to_string(sent) +
                          " bytes");
      }
      for (std::streamsize off = 0; off < got;) {
        int n = virStreamSend(st.p, buf.data() + off, static_cast<size_t>(got - off));
        if (n < 0) {
          virStreamAbort(st.p);
          return fail("send " + local.string() + " to " + uri_);
        }
        off += n;
      }
      sent += static_cast<unsigned long long>(got);
    }
    if (virStreamFinish(st.p) < 0) return fail("finish the upload of " + local.string());
    char* path = virStorageVolGetPath(vol.p);
    if (!path) return make_error(err("path of volume " + volume + " on " + uri_));
    fs::path out = path;
    free(path);  // NOLINT: libvirt allocates with malloc
    return out;
  }

 public:
  Status create_overlay_volume(const fs::path& base, const std::string& base_format,
                               const fs::path& path) {
    // The pool is the one around the overlay's directory (the run's, made by create_pool).
    PoolHandle pool{virStoragePoolLookupByTargetPath(conn_, path.parent_path().c_str())};
    if (!pool.p)
      return make_error(
          err("find the storage pool of " + path.parent_path().string() + " on " + uri_));
    VolumeHandle b{virStorageVolLookupByPath(conn_, base.c_str())};
    if (!b.p) return make_error(err("look up the base image " + base.string() + " on " + uri_));
    virStorageVolInfo info{};
    if (virStorageVolGetInfo(b.p, &info) < 0)
      return make_error(err("size of " + base.string() + " on " + uri_));
    const std::string xml = volume_xml(path.filename().string(), info.capacity, "qcow2", "0644",
                                       base.string(), base_format);
    VolumeHandle v{virStorageVolCreateXML(pool.p, xml.c_str(), 0)};
    if (!v.p) return make_error(err("create overlay volume " + path.string() + " on " + uri_));
    return {};
  }

 private:
  /// libvirt writes <bridge>.macs into /var/lib/libvirt/dnsmasq when a guest joins a managed
  /// network, but makes that directory only when it starts dnsmasq, which continuum's network
  /// (no DHCP, no DNS) never does: on a host where libvirt never ran a DHCP network (no systemd,
  /// containers, fresh installs) every first VM start failed. The system daemon on this machine,
  /// run by root, gets it made here; otherwise explain_libvirt_error names the command.
  void ensure_mac_map_dir() const {
    if (!is_local_uri(uri_) || !uri_.ends_with(":///system") || ::geteuid() != 0) return;
    const fs::path dir = "/var/lib/libvirt/dnsmasq";
    std::error_code ec;
    if (!fs::is_directory(dir.parent_path(), ec) || fs::exists(dir, ec)) return;
    if (fs::create_directory(dir, ec); ec)
      spdlog::warn("{}: cannot create {}: {}", uri_, dir.string(), ec.message());
    else
      spdlog::info("created {} (libvirt records the managed network's guests there)", dir.string());
  }

  /// libvirt's last error after `what`, with the fix for the errors a new user meets.
  std::string err(const std::string& what) const {
    return explain_libvirt_error(uri_, last_error(what));
  }

  std::string uri_;
  virConnectPtr conn_;
  std::mutex cache_mu_;
};

/// The emulator binary libvirt would use for KVM, from the domain capabilities ("" if none).
std::string emulator_from_domcaps(const std::string& caps) {
  auto b = caps.find("<path>");
  auto e = caps.find("</path>");
  if (b == std::string::npos || e == std::string::npos || e < b) return "";
  return caps.substr(b + 6, e - b - 6);
}

// A probe result is cached per (kernel file, host kernel release, emulator), because a probe that
// hangs costs its whole timeout on every run otherwise.
fs::path probe_cache_file() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  fs::path base = xdg && *xdg ? fs::path(xdg) : util::expand_user("~/.cache");
  return base / "continuum" / "kvm-probe.json";
}

std::string probe_key(const fs::path& kernel, const std::string& emulator) {
  std::error_code ec;
  auto size = fs::file_size(kernel, ec);
  auto mtime = fs::last_write_time(kernel, ec).time_since_epoch().count();
  struct utsname u {};
  ::uname(&u);
  return kernel.string() + "|" + std::to_string(size) + "|" + std::to_string(mtime) + "|" +
         u.release + "|" + emulator;
}

/// Boots `kernel` under KVM for a few seconds without a root disk. A working KVM prints the
/// kernel banner within a second; nested KVM on these machines hangs right after the
/// decompressor, so "the emulator started" or "/dev/kvm opened" proves nothing.
bool kernel_boots_under_kvm(const std::string& emulator, const fs::path& kernel) {
  util::ProcessSpec spec;
  spec.argv = {emulator,     "-accel",
               "kvm",        "-machine",
               "pc",         "-m",
               "256",        "-nodefaults",
               "-nographic", "-no-reboot",
               "-serial",    "stdio",
               "-kernel",    kernel.string(),
               "-append",    "console=ttyS0 panic=-1 loglevel=4"};
  spec.timeout = std::chrono::seconds(15);
  auto r = util::run_process(spec);
  if (!r.ok()) return false;
  return r->out.find("Linux version") != std::string::npos;
}

Expected<Accelerator> LibvirtHypervisor::choose_accelerator(const std::string& requested,
                                                            const fs::path& probe_kernel) {
  if (requested == "tcg") return Accelerator::tcg;
  char* caps = virConnectGetDomainCapabilities(conn_, nullptr, "x86_64", nullptr, "kvm", 0);
  std::string caps_xml = caps ? caps : "";
  free(caps);  // NOLINT: libvirt allocates with malloc
  if (caps_xml.empty()) {
    if (requested == "kvm")
      return make_error(err("accelerator = kvm but " + uri_ + " offers no KVM domains"));
    spdlog::warn("{}: KVM is not available; guests run under TCG emulation (much slower)", uri_);
    return Accelerator::tcg;
  }
  if (requested == "kvm") return Accelerator::kvm;
  if (!is_local_uri(uri_) || probe_kernel.empty() || !fs::exists(probe_kernel)) {
    spdlog::warn(
        "{}: libvirt offers KVM but it could not be probed (no kernel to boot); using KVM. "
        "Set accelerator = tcg if guests hang at boot.",
        uri_);
    return Accelerator::kvm;
  }
  std::string emulator = emulator_from_domcaps(caps_xml);
  if (emulator.empty()) emulator = "qemu-system-x86_64";
  std::string key = probe_key(probe_kernel, emulator);
  fs::path cache = probe_cache_file();
  if (auto text = util::read_file(cache); text.ok()) {
    auto j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_object() && j.value("key", "") == key) {
      bool kvm = j.value("kvm", false);
      if (!kvm) spdlog::warn("{}: KVM does not run guests here (cached probe); using TCG", uri_);
      return kvm ? Accelerator::kvm : Accelerator::tcg;
    }
  }
  spdlog::info("{}: probing whether KVM really runs a guest (up to 15 s)", uri_);
  bool kvm = kernel_boots_under_kvm(emulator, probe_kernel);
  (void)util::write_file_atomic(cache, nlohmann::json{{"key", key}, {"kvm", kvm}}.dump() + "\n");
  if (!kvm)
    spdlog::warn(
        "{}: /dev/kvm is present but a guest kernel does not boot under KVM; "
        "using TCG emulation (much slower)",
        uri_);
  return kvm ? Accelerator::kvm : Accelerator::tcg;
}

}  // namespace

std::string explain_libvirt_error(const std::string& uri, const std::string& message) {
  const bool local = is_local_uri(uri);
  std::string where;
  if (!local) {
    auto b = uri.find("://");
    auto host = b == std::string::npos ? uri : uri.substr(b + 3, uri.find('/', b + 3) - b - 3);
    where = " on " + host;
  }
  // ssh's own refusals, as libvirt's ssh transport passes them on (batch mode: nothing is asked).
  if (!local && message.find("Host key verification failed") != std::string::npos) {
    auto b = where.rfind('@');
    std::string host = where.substr(b == std::string::npos ? 4 : b + 1);
    return message + "\n  hint: the SSH host key of " + where.substr(4) +
           " is not pinned in this user's ~/.ssh/known_hosts (or it changed). Check its "
           "fingerprint on that host (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`), then "
           "add it: `ssh-keyscan -t ed25519 " +
           util::shell_quote(host) + " >> ~/.ssh/known_hosts` (docs/multi-host.md)";
  }
  if (!local && message.find("Permission denied (publickey") != std::string::npos)
    return message + "\n  hint: this user's SSH key is not authorised" + where +
           ": `ssh-copy-id` it to that user, and check that `ssh -o BatchMode=yes` logs in "
           "without a prompt (docs/multi-host.md)";
  // "Failed to connect socket to '/var/run/libvirt/virtlogd-sock': No such file or directory"
  const std::string socket_prefix = "Failed to connect socket to '";
  if (auto p = message.find(socket_prefix); p != std::string::npos) {
    auto e = message.find('\'', p + socket_prefix.size());
    std::string sock =
        message.substr(p + socket_prefix.size(),
                       e == std::string::npos ? std::string::npos : e - p - socket_prefix.size());
    if (message.find("Permission denied", p) != std::string::npos)
      return message + "\n  hint: this user may not use " + uri +
             ": run continuum as root, or add the user to the libvirt group (`adduser $USER "
             "libvirt`, "
             "then log in again)";
    if (sock.find("virtlogd") != std::string::npos)
      return message + "\n  hint: virtlogd is not running" + where +
             " (libvirtd needs it to start VMs): start it with `systemctl start virtlogd`, or "
             "without "
             "systemd with `virtlogd -d`";
    return message + "\n  hint: libvirtd is not running" + where +
           ": start it with `systemctl start libvirtd`, or without systemd with `virtlogd -d && "
           "libvirtd -d` (libvirtd needs virtlogd to start VMs)";
  }
  // "Failed to create file '/var/lib/libvirt/dnsmasq/cntm-1234abcd.macs.new': No such file or
  // directory": libvirt records a managed network's guests there, but makes the directory only
  // when it starts dnsmasq, which continuum's network (no DHCP, no DNS) never needs.
  const std::string create_prefix = "Failed to create file '";
  if (auto p = message.find(create_prefix);
      p != std::string::npos && message.find("No such file or directory", p) != std::string::npos) {
    auto e = message.find('\'', p + create_prefix.size());
    if (e != std::string::npos) {
      std::string dir =
          fs::path(message.substr(p + create_prefix.size(), e - p - create_prefix.size()))
              .parent_path()
              .string();
      return message + "\n  hint: the directory " + dir + " is missing" + where +
             ": create it with `mkdir -p " + util::shell_quote(dir) + "` and run again";
    }
  }
  return message;
}

Expected<HypervisorPtr> connect_libvirt(const std::string& uri) {
  static std::once_flag once;
  std::call_once(once, [] {
    virInitialize();
    virSetErrorFunc(nullptr, silent_error_handler);
  });
  virConnectPtr c = virConnectOpen(uri.c_str());
  if (!c)
    return make_error(
        explain_libvirt_error(uri, last_error("cannot connect to libvirt at " + uri)));
  return HypervisorPtr(std::make_shared<LibvirtHypervisor>(uri, c));
}

HypervisorFactory libvirt_factory() {
  struct Cache {
    std::mutex mu;
    std::map<std::string, HypervisorPtr> by_uri;
  };
  auto cache = std::make_shared<Cache>();
  return [cache](const std::string& uri) -> Expected<HypervisorPtr> {
    std::lock_guard lock(cache->mu);
    if (auto it = cache->by_uri.find(uri); it != cache->by_uri.end()) return it->second;
    auto h = TRY(connect_libvirt(uri));
    cache->by_uri[uri] = h;
    return h;
  };
}

// ---- RecordingHypervisor ----

Status RecordingHypervisor::log(const std::string& line) {
  calls_.push_back(line);
  for (const auto& f : fail_on_)
    if (line.starts_with(f)) return make_error(line + " on " + uri_ + ": injected failure");
  return {};
}
void RecordingHypervisor::fail_on(const std::string& call_prefix) {
  std::lock_guard lock(mu_);
  fail_on_.push_back(call_prefix);
}

Status RecordingHypervisor::define_domain(const std::string& name, const std::string&) {
  std::lock_guard lock(mu_);
  TRY_STATUS(log("define_domain " + name));
  if (domains_.count(name)) return make_error("define domain " + name + ": domain already exists");
  domains_[name] = DomainState::shutoff;
  return {};
}
Status RecordingHypervisor::start_domain(const std::string& name) {
  std::lock_guard lock(mu_);
  TRY_STATUS(log("start_domain " + name));
  auto it = domains_.find(name);
  if (it == domains_.end()) return make_error("start domain " + name + ": no such domain");
  it->second = DomainState::running;
  return {};
}
Status RecordingHypervisor::destroy_domain(const std::string& name) {
  std::lock_guard lock(mu_);
  TRY_STATUS(log("destroy_domain " + name));
  if (auto it = domains_.find(name); it != domains_.end()) it->second = DomainState::shutoff;
  return {};
}
Status RecordingHypervisor::undefine_domain(const std::string& name) {
  std::lock_guard lock(mu_);
  TRY_STATUS(log("undefine_domain " + name));
  domains_.erase(name);
  return {};
}
Expected<DomainState> RecordingHypervisor::domain_state(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = domains_.find(name);
  return it == domains_.end() ? DomainState::absent : it->second;
}
Expected<std::vector<std::string>> RecordingHypervisor::list_domains() {
  std::lock_guard lock(mu_);
  std::vector<std::string> v;
  for (auto& [n, s] : domains_) v.push_back(n);
  return v;
}
Expected<std::vector<VcpuInfo>> RecordingHypervisor::vcpu_info(const std::string& name) {
  std::lock_guard lock(mu_);
  TRY_STATUS(log("vcpu_info " + name));
  auto it = vcpus_.find(name);
  if (it == vcpus_.end()) return make_error("vCPUs of " + name + ": not recorded (dry run)");
  return it->second;
}
void RecordingHypervisor::set_vcpu_info(const std::string& name, std::vector<VcpuInfo> v) {
  std::lock_guard lock(mu_);
  vcpus_[name] = std::move(v);
}
Status RecordingHypervisor::define_network(const std::string& name, const std::string&) {
  std::lock_guard lock(mu_);
  TRY_STATUS(log("define_network " + name));
  if (networks_.count(name)) return make_error("define network " + name + ": already exists");
  networks_[name] = false;
  return {};
}
Status RecordingHypervisor::start_network(const std::string& name) {
  std::lock_guard lock(mu_);
  TRY_STATUS(log("start_network " + name));
  auto it = networks_.find(name);
  if (it == networks_.end()) return make_error("start network " + name + ": no such network");
  it->second = true;
  return {};
}
Status RecordingHypervisor::destroy_network(const std::string& name) {
  std::lock_guard lock(mu_);
  TRY_STATUS(log("destroy_network " + name));
  if (auto it = networks_.find(name); it != networks_.end()) it->second = false;
  return {};
}
Status RecordingHypervisor::undefine_network(const std::string& name) {
  std::lock_guard lock(mu_);
  TRY_STATUS(log("undefine_network " + name));
  networks_.erase(name);
  return {};
}
Expected<bool> RecordingHypervisor::network_exists(const std::string& name) {
  std::lock_guard lock(mu_);
  return networks_.count(name) > 0;
}
Status RecordingHypervisor::create_overlay(const fs::path& base, const std::string&,
                                           const fs::path& path) {
  std::lock_guard lock(mu_);
  TRY_STATUS(log("create_overlay " + path.string() + " backing " + base.string()));
  files_.insert(path.string());
  return {};
}
Status RecordingHypervisor::remove_path(const fs::path& path) {
  std::lock_guard lock(mu_);
  TRY_STATUS(log("remove_path " + path.string()));
  files_.erase(path.string());
  return {};
}
Status RecordingHypervisor::create_pool(const std::string& name, const fs::path& dir) {
  std::lock_guard lock(mu_);
  TRY_STATUS(log("create_pool " + name + " " + dir.string()));
  if (pools_.count(name)) return make_error("create pool " + name + ": already exists");
  pools_[name] = dir.string();
  return {};
}
Status RecordingHypervisor::remove_pool(const std::string& name) {
  std::lock_guard lock(mu_);
  TRY_STATUS(log("remove_pool " + name));
  auto it = pools_.find(name);
  if (it == pools_.end()) return {};
  const std::string prefix = it->second + "/";
  std::erase_if(files_, [&](const std::string& f) { return f.starts_with(prefix); });
  pools_.erase(it);
  return {};
}
Expected<fs::path> RecordingHypervisor::upload_volume(const std::string& pool,
                                                      const std::string& volume,
                                                      const fs::path& local, const std::string&) {
  std::lock_guard lock(mu_);
  TRY_STATUS(log("upload_volume " + pool + " " + volume + " from " + local.string()));
  auto it = pools_.find(pool);
  if (it == pools_.end()) return make_error("upload to pool " + pool + ": no such pool");
  fs::path path = fs::path(it->second) / volume;
  files_.insert(path.string());
  return path;
}
Expected<fs::path> RecordingHypervisor::cached_volume(const std::string& pool, const fs::path& dir,
                                                      const std::string& volume,
                                                      const fs::path& local, const std::string&) {
  std::lock_guard lock(mu_);
  fs::path path = dir / volume;
  if (files_.count(path.string())) return path;
  TRY_STATUS(log("cached_volume " + pool + " " + volume + " from " + local.string()));
  pools_.emplace(pool, dir.string());
  files_.insert(path.string());
  return path;
}
std::map<std::string, std::string> RecordingHypervisor::pools() const {
  std::lock_guard lock(mu_);
  return pools_;
}
Expected<Accelerator> RecordingHypervisor::choose_accelerator(const std::string& requested,
                                                              const fs::path&) {
  return requested == "kvm" ? Accelerator::kvm : Accelerator::tcg;
}
std::vector<std::string> RecordingHypervisor::calls() const {
  std::lock_guard lock(mu_);
  return calls_;
}
std::map<std::string, DomainState> RecordingHypervisor::domains() const {
  std::lock_guard lock(mu_);
  return domains_;
}
std::set<std::string> RecordingHypervisor::networks() const {
  std::lock_guard lock(mu_);
  std::set<std::string> s;
  for (auto& [n, a] : networks_) s.insert(n);
  return s;
}
std::set<std::string> RecordingHypervisor::files() const {
  std::lock_guard lock(mu_);
  return files_;
}

}  // namespace continuum::infra

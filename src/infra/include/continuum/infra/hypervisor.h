#pragma once
// Hypervisor: every side effect of the infrastructure phase on one physical host goes through this
// interface (docs/design.md §2), in the manner of ninja's DiskInterface. The libvirt implementation
// talks to libvirtd through the C API (never virsh); the recording implementation keeps state in
// memory and a call log, so unit tests and bench/ run the infrastructure phase without libvirt.
//
// Removal calls are idempotent: destroying or undefining something that is not there succeeds,
// so `destroy` can replay a ledger whose entries were only half created.
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "continuum/util/expected.h"

namespace continuum::infra {

/// How guests execute: hardware virtualisation or QEMU's TCG emulator.
enum class Accelerator { kvm, tcg };

/// libvirt's domain type for an accelerator: "kvm" or "qemu" (TCG).
const char* domain_type(Accelerator a);

enum class DomainState { absent, shutoff, running, other };

/// One virtual CPU of a running domain, as the hypervisor sees it.
struct VcpuInfo {
  int number = 0;
  unsigned long long cpu_time_ns = 0;  ///< host CPU time the vCPU's thread has used
  int cpu = -1;                        ///< host CPU it last ran on
  std::vector<int> affinity;           ///< host CPUs it may run on
};

class Hypervisor {
 public:
  virtual ~Hypervisor() = default;
  /// The libvirt URI this hypervisor talks to (recorded in the ledger).
  virtual std::string uri() const = 0;

  /// Defines a persistent domain from XML; fails if a domain of that name exists.
  virtual Status define_domain(const std::string& name, const std::string& xml) = 0;
  virtual Status start_domain(const std::string& name) = 0;
  /// Hard power-off; a domain that is absent or not running is fine.
  virtual Status destroy_domain(const std::string& name) = 0;
  /// Removes the definition; an absent domain is fine.
  virtual Status undefine_domain(const std::string& name) = 0;
  virtual Expected<DomainState> domain_state(const std::string& name) = 0;
  /// Names of all domains (active and inactive).
  virtual Expected<std::vector<std::string>> list_domains() = 0;
  /// The vCPUs of a running domain (virDomainGetVcpus): time used, placement, affinity. What the
  /// resource check reads to measure a CPU quota and to see the pinning. Not every hypervisor
  /// can tell: the default says so.
  virtual Expected<std::vector<VcpuInfo>> vcpu_info(const std::string& name) {
    return make_error("vCPU information of " + name + " is not available from " + uri());
  }

  /// Defines a persistent network from XML.
  virtual Status define_network(const std::string& name, const std::string& xml) = 0;
  virtual Status start_network(const std::string& name) = 0;
  /// Stops a network; absent or inactive is fine.
  virtual Status destroy_network(const std::string& name) = 0;
  virtual Status undefine_network(const std::string& name) = 0;
  virtual Expected<bool> network_exists(const std::string& name) = 0;

  /// Creates a qcow2 overlay `path` backed by `base` (format `base_format`) on the host.
  virtual Status create_overlay(const std::filesystem::path& base, const std::string& base_format,
                                const std::filesystem::path& path) = 0;
  /// Removes a file or directory tree on the host; absent is fine.
  virtual Status remove_path(const std::filesystem::path& path) = 0;

  // ---- Files on hosts this process cannot write: libvirt storage pools and volumes ----
  // A remote host (qemu+ssh://) needs libvirtd and SSH only: its disks, seeds and kernel are
  // volumes that libvirt creates and fills over the same connection, no scp and no shell.

  /// Whether the host's files are this machine's files (a local URI): then create_overlay and
  /// remove_path work on paths here, and nothing needs uploading.
  virtual bool files_local() const { return true; }
  /// Defines, builds (mkdir) and starts a directory pool `name` at `dir` on the host; fails
  /// when a pool of that name exists.
  virtual Status create_pool(const std::string& name, const std::filesystem::path& dir) {
    return make_error("storage pool " + name + " (" + dir.string() + "): not supported by " +
                      uri());
  }
  /// Removes pool `name` with every volume in it (and its directory); absent is fine.
  virtual Status remove_pool(const std::string& name) {
    return make_error("storage pool " + name + ": not supported by " + uri());
  }
  /// Uploads the local file `local` as volume `volume` (format raw or qcow2) into pool `pool`,
  /// which must exist, readable by its owner only (a seed holds the VM's private host key;
  /// libvirt hands it to QEMU when the domain starts); the volume's path on the host.
  virtual Expected<std::filesystem::path> upload_volume(const std::string& pool,
                                                        const std::string& volume,
                                                        const std::filesystem::path& local,
                                                        const std::string& /*format*/) {
    return make_error("upload of " + local.string() + " to " + pool + "/" + volume +
                      ": not supported by " + uri());
  }
  /// The host's copy of a cached, immutable file (a base image, a kernel), kept in the
  /// persistent pool `pool` at `dir` under `volume`, a name that changes with the content (the
  /// image's recipe hash): uploaded the first time, reused after that. A copy whose upload did
  /// not finish is uploaded again.
  virtual Expected<std::filesystem::path> cached_volume(const std::string& pool,
                                                        const std::filesystem::path& dir,
                                                        const std::string& volume,
                                                        const std::filesystem::path& local,
                                                        const std::string& /*format*/) {
    return make_error("cached copy of " + local.string() + " as " + pool + "/" + volume + " (" +
                      dir.string() + "): not supported by " + uri());
  }

  /// Decides KVM or TCG. `requested` is the config's accelerator key (auto|kvm|tcg); `probe_kernel`
  /// is a kernel that the auto probe may boot for a second ("" = none available).
  virtual Expected<Accelerator> choose_accelerator(const std::string& requested,
                                                   const std::filesystem::path& probe_kernel) = 0;
};

using HypervisorPtr = std::shared_ptr<Hypervisor>;

/// user, host and port of a libvirt URI (qemu+ssh://user@host:port/system); nullopt for one without
/// a host, which runs on this machine (qemu:///system, test:///default).
struct UriHost {
  std::string user;  ///< "" when the URI names none (then: this user's name)
  std::string host;
  int port = 22;
};
std::optional<UriHost> uri_host(const std::string& uri);

/// `message` (a libvirt error) with a hint line that names the fix, for the failures a new user
/// meets: libvirtd or virtlogd not running (how to start them, with and without systemd), the
/// socket not accessible to this user, and a file libvirt cannot create because its directory is
/// missing (which directory, and the mkdir). Other messages come back unchanged. `uri` is the
/// connection's (a remote one's host is named in the hint).
std::string explain_libvirt_error(const std::string& uri, const std::string& message);

/// Opens a libvirt connection (virConnectOpen). `test:///default` runs in-process.
Expected<HypervisorPtr> connect_libvirt(const std::string& uri);

/// Opens a hypervisor for a URI; destroy and apply take one so tests can substitute their own.
using HypervisorFactory = std::function<Expected<HypervisorPtr>(const std::string& uri)>;

/// The default factory: connect_libvirt, one connection per URI, reused.
HypervisorFactory libvirt_factory();

/// In-memory hypervisor for dry runs and tests: remembers domains, networks and files it was asked
/// to create, and logs every call as one line ("define_domain cloud0_alice", ...). Touches nothing.
class RecordingHypervisor : public Hypervisor {
 public:
  /// `files_local` false makes it a remote host: files go through pools and volumes, which it
  /// records as "<dir>/<volume>" files.
  explicit RecordingHypervisor(std::string uri = "dry-run:///", bool files_local = true)
      : uri_(std::move(uri)), files_local_(files_local) {}
  std::string uri() const override { return uri_; }
  bool files_local() const override { return files_local_; }
  Status create_pool(const std::string& name, const std::filesystem::path& dir) override;
  Status remove_pool(const std::string& name) override;
  Expected<std::filesystem::path> upload_volume(const std::string& pool, const std::string& volume,
                                                const std::filesystem::path& local,
                                                const std::string& format) override;
  Expected<std::filesystem::path> cached_volume(const std::string& pool,
                                                const std::filesystem::path& dir,
                                                const std::string& volume,
                                                const std::filesystem::path& local,
                                                const std::string& format) override;
  /// Makes every later call whose log line starts with `call_prefix` fail (failure injection).
  void fail_on(const std::string& call_prefix);
  /// Pool name -> directory, of the pools that exist now.
  std::map<std::string, std::string> pools() const;
  Status define_domain(const std::string& name, const std::string& xml) override;
  Status start_domain(const std::string& name) override;
  Status destroy_domain(const std::string& name) override;
  Status undefine_domain(const std::string& name) override;
  Expected<DomainState> domain_state(const std::string& name) override;
  Expected<std::vector<std::string>> list_domains() override;
  /// The domain's vCPUs as set by set_vcpu_info (tests), else an error.
  Expected<std::vector<VcpuInfo>> vcpu_info(const std::string& name) override;
  void set_vcpu_info(const std::string& name, std::vector<VcpuInfo> v);
  Status define_network(const std::string& name, const std::string& xml) override;
  Status start_network(const std::string& name) override;
  Status destroy_network(const std::string& name) override;
  Status undefine_network(const std::string& name) override;
  Expected<bool> network_exists(const std::string& name) override;
  Status create_overlay(const std::filesystem::path& base, const std::string& base_format,
                        const std::filesystem::path& path) override;
  Status remove_path(const std::filesystem::path& path) override;
  Expected<Accelerator> choose_accelerator(const std::string& requested,
                                           const std::filesystem::path& probe_kernel) override;

  /// Every call so far, in order.
  std::vector<std::string> calls() const;
  /// What would exist now: domain names, network names, file paths.
  std::map<std::string, DomainState> domains() const;
  std::set<std::string> networks() const;
  std::set<std::string> files() const;

 private:
  /// Logs the call; an Error when a fail_on prefix matches it.
  Status log(const std::string& line);
  std::string uri_;
  bool files_local_ = true;
  std::vector<std::string> fail_on_;
  std::map<std::string, std::string> pools_;
  mutable std::mutex mu_;
  std::vector<std::string> calls_;
  std::map<std::string, DomainState> domains_;
  std::map<std::string, bool> networks_;  ///< name -> active
  std::set<std::string> files_;
  std::map<std::string, std::vector<VcpuInfo>> vcpus_;
};

}  // namespace continuum::infra

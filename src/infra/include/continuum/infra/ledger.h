#pragma once
// The ledger `<run>/state.json` (docs/design.md §5): every resource a run creates, written
// atomically BEFORE the resource is created (state "intent") and updated after ("created").
// `destroy`, a failed apply and Ctrl-C all walk it backwards, so nothing is left behind even after
// a crash between the two writes (an "intent" entry is removed if it exists, skipped if not).
//
// Format (docs/infrastructure.md):
//   {"format":"continuum-ledger","version":1,"run_dir":"/abs/runs/2026-..._bench_cloud",
//    "user":"alice","config_name":"bench_cloud","status":"deployed","updated":"<RFC 3339>",
//    "resources":[{"id":0,"kind":"network","uri":"qemu:///system","name":"continuum-alice",
//                  "node":"","state":"created"}, ...]}
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "continuum/util/expected.h"

namespace continuum::infra {

/// What a resource is, which decides how it is removed.
enum class ResourceKind {
  network,    ///< libvirt network: destroy + undefine
  domain,     ///< libvirt domain: destroy + undefine
  overlay,    ///< per-VM qcow2 overlay file (on the domain's host)
  seed,       ///< per-VM cloud-init seed image (holds the VM's private host keys)
  share_dir,  ///< per-VM virtiofs directory on the host
  file,       ///< any other file created outside the run directory
  process,  ///< a daemon of the run (the image registry): name "PID:START" (util::ProcessIdentity)
  pool,     ///< libvirt storage pool of the run's files on a remote host: removed with its volumes
  link,     ///< network device made with `ip` on a host (the managed network's VXLAN end)
};
const char* kind_name(ResourceKind k);

enum class ResourceState { intent, created, removed };
const char* state_name(ResourceState s);

struct Resource {
  size_t id = 0;  ///< position in the ledger (creation order)
  ResourceKind kind = ResourceKind::file;
  std::string uri;   ///< libvirt URI of the host that holds it; "" = this machine's files
  std::string name;  ///< domain/network name, or absolute path for files
  std::string node;  ///< plan node id, "" for run-wide resources
  ResourceState state = ResourceState::intent;
};

/// Run-level status: applying, deployed, rolling_back, destroying, destroyed, destroy_failed.
struct LedgerInfo {
  std::string run_dir;
  std::string user;
  std::string config_name;
  std::string status = "applying";
};

/// Thread-safe; every mutation is persisted (util::write_file_atomic) before it returns.
class Ledger {
 public:
  static constexpr int kVersion = 1;

  /// Starts a new ledger at `file` (refuses to overwrite an existing one).
  static Expected<std::unique_ptr<Ledger>> create(const std::filesystem::path& file,
                                                  LedgerInfo info);
  /// Reads a ledger; errors name the file and what is wrong with it.
  static Expected<std::unique_ptr<Ledger>> load(const std::filesystem::path& file);

  /// Records resources as "intent" in one write (a batch that is then created concurrently);
  /// returns their ids.
  Expected<std::vector<size_t>> intend(std::vector<Resource> batch);
  Expected<size_t> intend(Resource r);
  /// Moves resources to a new state, one write for all.
  Status set_state(const std::vector<size_t>& ids, ResourceState s);
  Status set_status(const std::string& status);

  std::vector<Resource> resources() const;
  LedgerInfo info() const;
  const std::filesystem::path& file() const { return file_; }

 private:
  Ledger(std::filesystem::path file, LedgerInfo info)
      : file_(std::move(file)), info_(std::move(info)) {}
  Status save_locked();
  std::filesystem::path file_;
  LedgerInfo info_;
  std::vector<Resource> resources_;
  mutable std::mutex mu_;
};

nlohmann::json to_json(const Resource& r);

}  // namespace continuum::infra

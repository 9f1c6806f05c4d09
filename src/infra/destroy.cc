#include "continuum/infra/destroy.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "continuum/infra/run_lock.h"
#include "continuum/record/run_dir.h"
#include "continuum/util/background.h"
#include "continuum/util/files.h"
#include "continuum/util/parallel.h"
#include "continuum/util/strings.h"

namespace continuum::infra {
namespace fs = std::filesystem;

namespace {

/// A path the ledger asks us to delete must look like something we created: absolute, and not a
/// top-level directory (a hand-edited or corrupted ledger must not remove /var).
Status check_removable(const std::string& path) {
  fs::path p(path);
  if (!p.is_absolute() || std::distance(p.begin(), p.end()) < 3)
    return make_error("refusing to remove \"" + path +
                      "\": not an absolute path at least two levels deep");
  return {};
}

Status remove_one(const Resource& r, const HypervisorFactory& factory, const HostCommand& cmd) {
  switch (r.kind) {
    case ResourceKind::domain:
    case ResourceKind::network: {
      auto h = TRY(factory(r.uri));
      if (r.kind == ResourceKind::domain) {
        TRY_STATUS(h->destroy_domain(r.name));
        return h->undefine_domain(r.name);
      }
      TRY_STATUS(h->destroy_network(r.name));
      return h->undefine_network(r.name);
    }
    case ResourceKind::overlay:
    case ResourceKind::seed:
    case ResourceKind::share_dir:
    case ResourceKind::file: {
      TRY_STATUS(check_removable(r.name));
      if (!r.uri.empty()) {
        auto h = TRY(factory(r.uri));
        return h->remove_path(r.name);
      }
      return util::remove_tree(r.name);
    }
    case ResourceKind::pool: {
      auto h = TRY(factory(r.uri));
      return h->remove_pool(r.name);
    }
    case ResourceKind::link: {
      auto res = TRY(cmd(r.uri, tunnel_remove_command(r.name)));
      if (res.exit_code != 0 && !device_absent(res))
        return make_error("ip link del " + r.name + " on " + r.uri + ": " +
                          std::string(util::trim(res.err)));
      return {};
    }
    case ResourceKind::process: {
      // Only on this machine (the run's registry); a PID now used by another program is gone.
      auto id = util::ProcessIdentity::parse(r.name);
      if (!id) return make_error("not a process identity (PID:START): \"" + r.name + "\"");
      if (!util::stop_process(*id)) return make_error("cannot stop process " + r.name);
      return {};
    }
  }
  return {};
}

}  // namespace

Expected<DestroyResult> destroy(Ledger& ledger, const DestroyOptions& options) {
  auto t0 = std::chrono::steady_clock::now();
  DestroyResult result;
  auto resources = ledger.resources();
  for (const auto& r : resources)
    if (r.state == ResourceState::removed) ++result.already_removed;
  if (result.already_removed == resources.size()) {
    if (ledger.info().status != options.final_status && !resources.empty())
      TRY_STATUS(ledger.set_status(options.final_status));
    return result;
  }
  if (options.events) options.events->emit("destroy", "start");
  TRY_STATUS(
      ledger.set_status(options.final_status == "rolled_back" ? "rolling_back" : "destroying"));

  const HostCommand host_command = options.host_command ? options.host_command : ssh_host_command();
  // Backwards, in runs of one kind: all domains at once, then all overlays, ...
  size_t end = resources.size();
  while (end > 0) {
    size_t begin = end - 1;
    while (begin > 0 && resources[begin - 1].kind == resources[end - 1].kind) --begin;
    std::vector<const Resource*> todo;
    for (size_t i = end; i-- > begin;)
      if (resources[i].state != ResourceState::removed) todo.push_back(&resources[i]);
    std::vector<std::optional<std::string>> errors(todo.size());
    (void)util::for_each_parallel(todo.size(), options.workers, [&](size_t i) -> Status {
      Status s = remove_one(*todo[i], options.hypervisors, host_command);
      if (!s.ok()) errors[i] = s.error().message;
      return {};
    });
    std::vector<size_t> done;
    for (size_t i = 0; i < todo.size(); ++i) {
      if (errors[i]) {
        result.errors.push_back(std::string(kind_name(todo[i]->kind)) + " " + todo[i]->name + ": " +
                                *errors[i]);
      } else {
        done.push_back(todo[i]->id);
        spdlog::debug("removed {} {}", kind_name(todo[i]->kind), todo[i]->name);
      }
    }
    if (!done.empty()) TRY_STATUS(ledger.set_state(done, ResourceState::removed));
    result.removed += done.size();
    end = begin;
  }
  TRY_STATUS(ledger.set_status(result.errors.empty() ? options.final_status : "destroy_failed"));
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (options.events)
    options.events->emit("destroy", "end", "", -1, "",
                         {{"removed", result.removed}, {"errors", result.errors.size()}});
  return result;
}

Expected<DestroyResult> destroy_run(const fs::path& run_dir, const DestroyOptions& options) {
  fs::path file = run_dir / "state.json";
  std::error_code ec;
  if (!fs::exists(file, ec))
    return make_error(run_dir.string() + (record::is_run_dir(run_dir)
                                              ? ": no state.json: this run created nothing"
                                              : ": not a continuum run directory (no state.json)"),
                      ExitCode::usage);
  auto ledger = TRY(Ledger::load(file));
  return destroy(*ledger, options);
}

Expected<DestroyResult> destroy_dead_run(const fs::path& run_dir, const DestroyOptions& options) {
  std::error_code ec;
  if (!fs::exists(run_dir / "state.json", ec))
    return destroy_run(run_dir, options);  // its exit-2 message
  auto owner = TRY(try_lock_run_dir(run_dir));
  if (!owner.lock) {
    const std::string pid = owner.owner.pid > 0 ? std::to_string(owner.owner.pid) : "PID";
    return make_error(
        run_dir.string() + " belongs to a run that is still live (" + describe_owner(owner.owner) +
        "); refusing to remove its resources from under it. Stop it first (Ctrl-C in its "
        "terminal, or kill -INT " +
        pid +
        "): with delete = True it removes them itself, "
        "otherwise run this destroy again once it has ended");
  }
  return destroy_run(run_dir, options);
}

Expected<size_t> remove_leftovers(const plan::Plan& plan, const fs::path& output_dir,
                                  const fs::path& this_run, const DestroyOptions& options) {
  size_t removed = 0;
  std::error_code ec;
  if (fs::is_directory(output_dir, ec)) {
    std::vector<fs::path> dirs;
    for (const auto& e : fs::directory_iterator(output_dir, ec))
      if (e.is_directory() && fs::exists(e.path() / "state.json")) dirs.push_back(e.path());
    std::sort(dirs.begin(), dirs.end());
    for (const auto& dir : dirs) {
      if (fs::equivalent(dir, this_run, ec)) continue;
      auto ledger = Ledger::load(dir / "state.json");
      if (!ledger.ok()) {
        spdlog::warn("ignoring {}: {}", dir.string(), ledger.error().message);
        continue;
      }
      auto info = (*ledger)->info();
      if (info.user != plan.user || info.config_name != plan.config_name) continue;
      if (info.status == "destroyed" || info.status == "rolled_back") continue;
      // Its owner may still be running (on another hypervisor: this run's own hypervisor locks
      // rule out the same one): only a run whose run.lock we can take is dead.
      auto owner = try_lock_run_dir(dir);
      if (!owner.ok()) {
        spdlog::warn("not removing leftovers of {}: {}", dir.string(), owner.error().message);
        continue;
      }
      if (!owner->lock) {
        spdlog::info("not touching {}: its run is live ({})", dir.string(),
                     describe_owner(owner->owner));
        continue;
      }
      spdlog::info("removing leftovers of an earlier run: {}", dir.string());
      auto r = TRY(destroy(**ledger, options));
      removed += r.removed;
      for (const auto& e : r.errors) spdlog::warn("leftover of {}: {}", dir.string(), e);
    }
  }
  // Domains and the network this plan is about to create, if something else left them behind
  // (the original destroys every `*_<user>` domain on every host before a run). The caller holds
  // this user's lock of every hypervisor (RunLock), so no live run owns them.
  for (const auto& node : plan.nodes) {
    const std::string& uri = plan.hosts.at(node.host).libvirt_uri;
    auto h = TRY(options.hypervisors(uri));
    auto state = TRY(h->domain_state(node.name));
    if (state == DomainState::absent) continue;
    spdlog::warn("domain {} already exists on {} (left over from an earlier run); removing it",
                 node.name, uri);
    TRY_STATUS(h->destroy_domain(node.name));
    TRY_STATUS(h->undefine_domain(node.name));
    ++removed;
  }
  // The managed network is on every host of a multi-host run (tunnel.h).
  if (plan.network.mode == "managed" && !plan.network.name.empty())
    for (const auto& host : plan.hosts) {
      auto h = TRY(options.hypervisors(host.libvirt_uri));
      if (!TRY(h->network_exists(plan.network.name))) continue;
      spdlog::warn("network {} already exists on {} (left over from an earlier run); removing it",
                   plan.network.name, host.libvirt_uri);
      TRY_STATUS(h->destroy_network(plan.network.name));
      TRY_STATUS(h->undefine_network(plan.network.name));
      ++removed;
    }
  return removed;
}

}  // namespace continuum::infra

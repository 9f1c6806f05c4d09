#include "continuum/infra/ledger.h"

#include <chrono>
#include <nlohmann/json.hpp>

#include "continuum/record/events.h"
#include "continuum/util/files.h"

namespace continuum::infra {
namespace fs = std::filesystem;

namespace {
constexpr ResourceKind kKinds[] = {
    ResourceKind::network, ResourceKind::domain,    ResourceKind::overlay,
    ResourceKind::seed,    ResourceKind::share_dir, ResourceKind::file,
    ResourceKind::process, ResourceKind::pool,      ResourceKind::link};
constexpr ResourceState kStates[] = {ResourceState::intent, ResourceState::created,
                                     ResourceState::removed};
}  // namespace

const char* kind_name(ResourceKind k) {
  switch (k) {
    case ResourceKind::network:
      return "network";
    case ResourceKind::domain:
      return "domain";
    case ResourceKind::overlay:
      return "overlay";
    case ResourceKind::seed:
      return "seed";
    case ResourceKind::share_dir:
      return "share_dir";
    case ResourceKind::file:
      return "file";
    case ResourceKind::process:
      return "process";
    case ResourceKind::pool:
      return "pool";
    case ResourceKind::link:
      return "link";
  }
  return "?";
}

const char* state_name(ResourceState s) {
  switch (s) {
    case ResourceState::intent:
      return "intent";
    case ResourceState::created:
      return "created";
    case ResourceState::removed:
      return "removed";
  }
  return "?";
}

nlohmann::json to_json(const Resource& r) {
  return {{"id", r.id},     {"kind", kind_name(r.kind)},   {"uri", r.uri}, {"name", r.name},
          {"node", r.node}, {"state", state_name(r.state)}};
}

Expected<std::unique_ptr<Ledger>> Ledger::create(const fs::path& file, LedgerInfo info) {
  std::error_code ec;
  if (fs::exists(file, ec))
    return make_error(file.string() + ": a ledger already exists; a run directory is never reused");
  std::unique_ptr<Ledger> l(new Ledger(file, std::move(info)));
  std::lock_guard lock(l->mu_);
  TRY_STATUS(l->save_locked());
  return l;
}

Expected<std::unique_ptr<Ledger>> Ledger::load(const fs::path& file) {
  auto text = TRY(util::read_file(file));
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return make_error(file.string() + ": not valid JSON (is this a continuum state.json?)");
  try {
    if (j.value("format", "") != "continuum-ledger")
      return make_error(file.string() +
                        ": not a continuum ledger (\"format\" is not continuum-ledger)");
    int version = j.at("version").get<int>();
    if (version > kVersion)
      return make_error(file.string() + ": ledger version " + std::to_string(version) +
                        " is newer than this continuum understands (" + std::to_string(kVersion) +
                        ")");
    LedgerInfo info;
    info.run_dir = j.value("run_dir", "");
    info.user = j.value("user", "");
    info.config_name = j.value("config_name", "");
    info.status = j.value("status", "");
    std::unique_ptr<Ledger> l(new Ledger(file, std::move(info)));
    size_t index = 0;
    for (const auto& e : j.at("resources")) {
      Resource r;
      r.id = index;
      std::string kind = e.at("kind").get<std::string>();
      std::string state = e.at("state").get<std::string>();
      bool kind_ok = false, state_ok = false;
      for (auto k : kKinds)
        if (kind == kind_name(k)) r.kind = k, kind_ok = true;
      for (auto s : kStates)
        if (state == state_name(s)) r.state = s, state_ok = true;
      if (!kind_ok || !state_ok)
        return make_error(file.string() + ": resource " + std::to_string(index) +
                          ": unknown kind \"" + kind + "\" or state \"" + state + "\"");
      r.uri = e.value("uri", "");
      r.name = e.at("name").get<std::string>();
      r.node = e.value("node", "");
      l->resources_.push_back(std::move(r));
      ++index;
    }
    return l;
  } catch (const nlohmann::json::exception& e) {
    return make_error(file.string() + ": malformed ledger: " + e.what());
  }
}

Status Ledger::save_locked() {
  nlohmann::json res = nlohmann::json::array();
  for (const auto& r : resources_) res.push_back(to_json(r));
  nlohmann::json j = {{"format", "continuum-ledger"},
                      {"version", kVersion},
                      {"run_dir", info_.run_dir},
                      {"user", info_.user},
                      {"config_name", info_.config_name},
                      {"status", info_.status},
                      {"updated", record::rfc3339_ns(std::chrono::system_clock::now())},
                      {"resources", std::move(res)}};
  return util::write_file_atomic(file_, j.dump(1) + "\n");
}

Expected<std::vector<size_t>> Ledger::intend(std::vector<Resource> batch) {
  std::lock_guard lock(mu_);
  std::vector<size_t> ids;
  ids.reserve(batch.size());
  for (auto& r : batch) {
    r.id = resources_.size();
    r.state = ResourceState::intent;
    ids.push_back(r.id);
    resources_.push_back(std::move(r));
  }
  TRY_STATUS(save_locked());
  return ids;
}

Expected<size_t> Ledger::intend(Resource r) {
  auto ids = TRY(intend(std::vector<Resource>{std::move(r)}));
  return ids.front();
}

Status Ledger::set_state(const std::vector<size_t>& ids, ResourceState s) {
  std::lock_guard lock(mu_);
  for (size_t id : ids)
    if (id < resources_.size()) resources_[id].state = s;
  return save_locked();
}

Status Ledger::set_status(const std::string& status) {
  std::lock_guard lock(mu_);
  info_.status = status;
  return save_locked();
}

std::vector<Resource> Ledger::resources() const {
  std::lock_guard lock(mu_);
  return resources_;
}

LedgerInfo Ledger::info() const {
  std::lock_guard lock(mu_);
  return info_;
}

}  // namespace continuum::infra

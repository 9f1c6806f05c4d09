#include "continuum/infra/run_lock.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "continuum/util/files.h"
#include "continuum/util/hash.h"

namespace continuum::infra {
namespace fs = std::filesystem;

std::string format_owner(const LockOwner& o) {
  return nlohmann::json{{"pid", o.pid},
                        {"started", o.started},
                        {"run_dir", o.run_dir},
                        {"user", o.user},
                        {"uri", o.uri}}
             .dump() +
         "\n";
}

LockOwner parse_owner(const std::string& text) {
  LockOwner o;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return o;
  auto str = [&](const char* k) {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (auto it = j.find("pid"); it != j.end() && it->is_number_integer()) o.pid = it->get<long>();
  o.started = str("started");
  o.run_dir = str("run_dir");
  o.user = str("user");
  o.uri = str("uri");
  return o;
}

FileLock::FileLock(FileLock&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }

FileLock& FileLock::operator=(FileLock&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    path_ = std::move(o.path_);
    o.fd_ = -1;
  }
  return *this;
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the only descriptor of the open file drops the flock
}

Status FileLock::write_owner(const LockOwner& owner) {
  // In place, not temp file + rename: the lock belongs to this inode. Readers retry a description
  // they catch half-written (read_owner).
  std::string text = format_owner(owner);
  if (::ftruncate(fd_, 0) != 0 ||
      ::pwrite(fd_, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()))
    return make_error(path_.string() + ": cannot write the lock owner: " + std::strerror(errno));
  return {};
}

namespace {

/// The holder writes its description right after taking the lock; a reader that comes in between
/// sees an empty or half-written file for a moment, so it reads again for up to a second.
LockOwner read_owner(const fs::path& file) {
  LockOwner o;
  for (int attempt = 0; attempt < 50; ++attempt) {
    if (auto text = util::read_file(file); text.ok()) {
      o = parse_owner(*text);
      if (o.pid > 0) return o;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return o;
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

Expected<LockAttempt> try_lock(const fs::path& file) {
  std::error_code ec;
  if (!file.parent_path().empty()) {
    fs::create_directories(file.parent_path(), ec);
    if (ec)
      return make_error(file.parent_path().string() +
                        ": cannot create the lock directory: " + ec.message());
  }
  int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return make_error(file.string() + ": cannot open lock file: " + std::strerror(errno));
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    int e = errno;
    ::close(fd);
    if (e != EWOULDBLOCK) return make_error(file.string() + ": cannot lock: " + std::strerror(e));
    LockAttempt busy;
    busy.owner = read_owner(file);
    return busy;
  }
  LockAttempt got;
  got.lock.emplace(FileLock(fd, file));
  return got;
}

fs::path default_lock_dir() {
  const char* xdg = std::getenv("XDG_STATE_HOME");
  fs::path base = xdg && *xdg ? fs::path(xdg) : util::expand_user("~/.local/state");
  return base / "continuum" / "locks";
}

bool uri_needs_lock(const std::string& uri) { return !uri.starts_with("test:"); }

fs::path hypervisor_lock_file(const fs::path& dir, const std::string& user,
                              const std::string& uri) {
  std::string readable;
  for (char c : user + "@" + uri) {
    bool ok =
        std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' || c == '@';
    char out = ok ? c : '_';
    if (out == '_' && !readable.empty() && readable.back() == '_') continue;
    readable += out;
  }
  // The readable part loses characters; the hash of the exact pair keeps distinct URIs apart.
  return dir / fmt::format("{}-{:08x}.lock", readable, util::fnv1a32(user + '\n' + uri));
}

Expected<LockAttempt> try_lock_run_dir(const fs::path& run_dir) {
  return try_lock(run_dir / kRunLockName);
}

std::string describe_owner(const LockOwner& o) {
  if (o.pid <= 0) return "owner unknown (its lock file is empty)";
  std::string s =
      o.run_dir.empty() ? "run directory not created yet" : "run directory " + o.run_dir;
  s += ", PID " + std::to_string(o.pid);
  if (!o.started.empty()) s += ", started " + o.started;
  return s;
}

Expected<RunLock> RunLock::acquire(const plan::Plan& plan, const fs::path& lock_dir) {
  RunLock rl;
  rl.owner_.pid = static_cast<long>(::getpid());
  rl.owner_.started = utc_now();
  rl.owner_.user = plan.user;
  std::set<std::string> uris;  // sorted: two runs over the same hosts take them in one order
  for (const auto& h : plan.hosts)
    if (uri_needs_lock(h.libvirt_uri)) uris.insert(h.libvirt_uri);
  for (const auto& uri : uris) {
    fs::path file = hypervisor_lock_file(lock_dir, plan.user, uri);
    auto a = TRY(try_lock(file));
    if (!a.lock) {
      std::vector<std::string> names;
      for (const auto& n : plan.nodes)
        if (plan.hosts.at(n.host).libvirt_uri == uri && names.size() < 3) names.push_back(n.name);
      if (plan.network.mode == "managed" && plan.hosts.front().libvirt_uri == uri)
        names.push_back(plan.network.name);
      const std::string pid = a.owner.pid > 0 ? std::to_string(a.owner.pid) : "PID";
      return make_error(
          "another continuum run of user " + plan.user + " is live on " + uri + ": " +
          describe_owner(a.owner) +
          ".\nIts VMs and network carry the names this run would create (" +
          fmt::format("{}", fmt::join(names, ", ")) +
          ", ...: names are per user), so this run refuses before creating anything. Wait for "
          "it to end, "
          "or stop it (Ctrl-C in its terminal, or kill -INT " +
          pid +
          "): one live run per user and hypervisor (docs/run.md). Lock file: " + file.string());
    }
    LockOwner o = rl.owner_;
    o.uri = uri;
    TRY_STATUS(a.lock->write_owner(o));
    rl.locks_.push_back(std::move(*a.lock));
    rl.uris_.push_back(uri);
  }
  return rl;
}

Status RunLock::attach_run_dir(const fs::path& run_dir) {
  owner_.run_dir = fs::absolute(run_dir).string();
  auto a = TRY(try_lock_run_dir(run_dir));
  if (!a.lock)
    return make_error(run_dir.string() + ": its run.lock is held by another process (" +
                      describe_owner(a.owner) + ")");
  TRY_STATUS(a.lock->write_owner(owner_));
  for (size_t i = 0; i < uris_.size(); ++i) {
    LockOwner o = owner_;
    o.uri = uris_[i];
    TRY_STATUS(locks_[i].write_owner(o));
  }
  locks_.push_back(std::move(*a.lock));
  return {};
}

}  // namespace continuum::infra

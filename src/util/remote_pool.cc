#include "continuum/util/remote_pool.h"

#include <map>
#include <mutex>
#include <vector>

namespace continuum::util {

namespace {

std::string key_of(const SshTarget& t) {
  // Fields joined with a byte no path or host name holds.
  return t.host + '\x1f' + std::to_string(t.port) + '\x1f' + t.user + '\x1f' +
         t.private_key.string() + '\x1f' + t.known_hosts.string() + '\x1f' + t.netns;
}

}  // namespace

struct RemotePool::State {
  Connector connect;
  mutable std::mutex mu;
  std::map<std::string, std::vector<RemotePtr>> idle;
  Stats stats;
  int generation = 0;  ///< close() starts a new one: sessions out since before are not taken back
};

namespace {

/// The Remote handed out: forwards to the pooled session and gives it back when dropped. A call
/// that returned an Error (a broken connection, by Remote's contract) keeps it out of the pool.
class Lease : public Remote {
 public:
  Lease(std::shared_ptr<RemotePool::State> state, std::string key, RemotePtr inner, int generation)
      : state_(std::move(state)),
        key_(std::move(key)),
        inner_(std::move(inner)),
        generation_(generation) {}
  ~Lease() override {
    std::lock_guard lock(state_->mu);
    if (broken_) {
      ++state_->stats.dropped;
      return;  // inner_ is closed when it goes with this object
    }
    if (generation_ != state_->generation) return;  // opened before a close(): not reused
    inner_->set_cancel(nullptr);
    state_->idle[key_].push_back(std::move(inner_));
  }
  Expected<ExecResult> exec(const std::string& command,
                            std::chrono::milliseconds timeout) override {
    return note(inner_->exec(command, timeout));
  }
  Status upload(const std::string& content, const std::string& remote_path, int mode) override {
    return note(inner_->upload(content, remote_path, mode));
  }
  std::string describe() const override { return inner_->describe(); }
  void set_cancel(const std::atomic<bool>* cancel) override { inner_->set_cancel(cancel); }
  Expected<std::vector<Turn>> exchange_lines(const std::string& command, int turns,
                                             std::chrono::milliseconds timeout) override {
    return note(inner_->exchange_lines(command, turns, timeout));
  }

 private:
  template <typename T>
  T note(T r) {
    if (!r.ok()) broken_ = true;
    return r;
  }
  std::shared_ptr<RemotePool::State> state_;
  std::string key_;
  RemotePtr inner_;
  int generation_;
  bool broken_ = false;
};

}  // namespace

RemotePool::RemotePool(Connector connect) : state_(std::make_shared<State>()) {
  state_->connect = connect ? std::move(connect) : Connector(ssh_connect);
}

RemotePool::~RemotePool() { close(); }

Expected<RemotePtr> RemotePool::get(const SshTarget& target, std::chrono::milliseconds timeout) {
  const std::string key = key_of(target);
  RemotePtr inner;
  int generation = 0;
  {
    std::lock_guard lock(state_->mu);
    generation = state_->generation;
    auto it = state_->idle.find(key);
    if (it != state_->idle.end() && !it->second.empty()) {
      inner = std::move(it->second.back());
      it->second.pop_back();
      ++state_->stats.reuses;
    }
  }
  if (!inner) {
    // Outside the lock: a handshake takes up to a second, other guests' leases must not wait.
    inner = TRY(state_->connect(target, timeout));
    std::lock_guard lock(state_->mu);
    ++state_->stats.connects;
  }
  inner->set_cancel(target.cancel);
  return RemotePtr(std::make_unique<Lease>(state_, key, std::move(inner), generation));
}

void RemotePool::put(const SshTarget& target, RemotePtr remote) {
  if (!remote) return;
  remote->set_cancel(nullptr);
  std::lock_guard lock(state_->mu);
  state_->idle[key_of(target)].push_back(std::move(remote));
}

void RemotePool::close() {
  std::map<std::string, std::vector<RemotePtr>> idle;
  {
    std::lock_guard lock(state_->mu);
    idle.swap(state_->idle);
    ++state_->generation;
  }
  // Sessions disconnect here, outside the lock.
}

RemotePool::Stats RemotePool::stats() const {
  std::lock_guard lock(state_->mu);
  return state_->stats;
}

}  // namespace continuum::util

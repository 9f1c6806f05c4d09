#pragma once
// One SSH session per guest for the whole run, shared by the phases (reachability, clocks, netem,
// resources, benchmark repeats) instead of a handshake per phase: 0.5-1 s each under TCG, paid
// per VM and per phase before. A phase asks the pool for a Remote; it gets an idle session to the
// same target, or a new connection when none is idle (two users of one guest at once each get
// their own session: never a lock that a long command would hold). The Remote goes back to the
// pool when the phase drops it, unless its connection broke.
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "continuum/util/ssh.h"

namespace continuum::util {

class RemotePool {
 public:
  using Connector =
      std::function<Expected<RemotePtr>(const SshTarget&, std::chrono::milliseconds timeout)>;
  /// `connect` opens a new session (default: ssh_connect).
  explicit RemotePool(Connector connect = {});
  ~RemotePool();
  RemotePool(const RemotePool&) = delete;
  RemotePool& operator=(const RemotePool&) = delete;

  /// A Remote to `target` (host, port, user, key, known_hosts and netns must all match to share a
  /// session). Its cancel flag is target.cancel while it is out of the pool.
  Expected<RemotePtr> get(const SshTarget& target, std::chrono::milliseconds timeout);
  /// Adds a session opened elsewhere (the readiness check's login) as idle.
  void put(const SshTarget& target, RemotePtr remote);
  /// Closes the idle sessions; Remotes still out close when dropped instead of coming back. The
  /// pool stays usable, with new sessions. For when the guests changed what a login gets: a
  /// session keeps the groups and environment of the moment it logged in (the software phase
  /// adds the login user to the docker group, say).
  void close();

  struct Stats {
    int connects = 0;  ///< sessions opened by get()
    int reuses = 0;    ///< get() calls answered with an idle session
    int dropped = 0;   ///< sessions not taken back because their connection broke
  };
  Stats stats() const;

  struct State;  ///< opaque; shared with the Remotes handed out, which may outlive the pool

 private:
  std::shared_ptr<State> state_;
};

}  // namespace continuum::util

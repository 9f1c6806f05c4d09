#pragma once
// Remote: a command channel to one guest (docs/design.md §2). The real implementation is libssh
// with the run's pinned known_hosts (never StrictHostKeyChecking=no); tests may use a fake or a
// real sshd in a network namespace. One Remote is used by one thread at a time.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "continuum/util/expected.h"

namespace continuum::util {

struct SshTarget {
  std::string host;  ///< IP address or name
  int port = 22;
  std::string user;
  std::filesystem::path private_key;  ///< e.g. ~/.ssh/id_rsa_continuum
  std::filesystem::path known_hosts;  ///< the run's known_hosts: the host key must match
  /// Network namespace name (as `ip netns`) to connect from, "" for the current one. The connect
  /// happens on a thread that joined the namespace, so the rest of the process is unaffected.
  std::string netns;
  /// When it becomes true (e.g. util::interrupt_flag() on Ctrl-C), a connect in progress gives up
  /// within 100 ms, and the Remote it made stops its running command (see Remote::set_cancel).
  /// nullptr: never.
  const std::atomic<bool>* cancel = nullptr;
};

struct ExecResult {
  int exit_code = -1;
  bool timed_out = false;
  std::string out;
  std::string err;
  double seconds = 0;
  bool cancelled = false;  ///< stopped early because the Remote's cancel flag became true
};

class Remote {
 public:
  virtual ~Remote() = default;
  /// Runs `command` with the guest's /bin/sh. Callers quote every interpolated value
  /// (util::shell_quote). An Error only for a broken connection, not a non-zero exit.
  virtual Expected<ExecResult> exec(const std::string& command,
                                    std::chrono::milliseconds timeout) = 0;
  /// Writes `content` to `remote_path` (via a temp file + mv, so readers never see half a file).
  virtual Status upload(const std::string& content, const std::string& remote_path, int mode) = 0;
  /// "user@host:port", for messages.
  virtual std::string describe() const = 0;
  /// From now on, once `*cancel` is true, exec and exchange_lines end within 100 ms: the remote
  /// command's process group gets SIGTERM (an SSH "signal" request), the channel is closed, and
  /// exec's result has cancelled = true. nullptr: never. Implementations that cannot stop a
  /// remote command ignore it.
  virtual void set_cancel(const std::atomic<bool>* cancel) { (void)cancel; }

  /// One turn of exchange_lines: the host's clock when it sent a line, the line the command
  /// answered, and the host's clock when the answer arrived.
  struct Turn {
    std::chrono::system_clock::time_point sent;
    std::string answer;
    std::chrono::system_clock::time_point received;
  };
  /// Starts `command` and takes `turns` turns with it over one channel: write "\n" to its stdin,
  /// read one line from its stdout. For exchanges that must not pay a command start per turn
  /// (the clock estimate). Default: an Error saying it is not supported.
  virtual Expected<std::vector<Turn>> exchange_lines(const std::string& command, int turns,
                                                     std::chrono::milliseconds timeout);
};

using RemotePtr = std::unique_ptr<Remote>;

/// Connects and authenticates with the key; verifies the server key against target.known_hosts.
Expected<RemotePtr> ssh_connect(const SshTarget& target, std::chrono::milliseconds timeout);

}  // namespace continuum::util

// Remote over libssh (src/util/include/continuum/util/ssh.h).
//
// Host keys: the server key must be listed in the run's known_hosts for this host. An unknown,
// changed or missing entry is a connection error; nothing is ever added to any known_hosts file
// (no trust-on-first-use), because the run wrote the guests' host keys before they booted.
//
// Network namespaces: the guests of a run may be reachable only inside a namespace (docs/design.md
// §9.3). A socket belongs to the namespace of the thread that created it, so the connect runs on a
// short thread that joined /run/netns/<name>; the process and the caller's thread stay where they
// are, and every later packet on that socket goes through the namespace.
#include "continuum/util/ssh.h"

#include <fcntl.h>
#include <libssh/libssh.h>
#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <type_traits>

#include "continuum/util/strings.h"

namespace continuum::util {
namespace {

using Clock = std::chrono::steady_clock;

void init_libssh_once() {
  static std::once_flag once;
  std::call_once(once, [] { ssh_init(); });
}

std::string known_hosts_verdict(ssh_known_hosts_e v) {
  switch (v) {
    case SSH_KNOWN_HOSTS_OK:
      return "ok";
    case SSH_KNOWN_HOSTS_CHANGED:
      return "the host key DIFFERS from the one pinned in";
    case SSH_KNOWN_HOSTS_OTHER:
      return "the host offered a key type other than the one pinned in";
    case SSH_KNOWN_HOSTS_UNKNOWN:
      return "the host has no entry in";
    case SSH_KNOWN_HOSTS_NOT_FOUND:
      return "no known_hosts file at";
    case SSH_KNOWN_HOSTS_ERROR:
      break;
  }
  return "the host key could not be checked against";
}

class SshRemote final : public Remote {
 public:
  SshRemote(ssh_session s, SshTarget t)
      : session_(s), target_(std::move(t)), cancel_(target_.cancel) {}
  ~SshRemote() override {
    ssh_disconnect(session_);
    ssh_free(session_);
  }
  SshRemote(const SshRemote&) = delete;
  SshRemote& operator=(const SshRemote&) = delete;

  Expected<ExecResult> exec(const std::string& command,
                            std::chrono::milliseconds timeout) override {
    return run(command, nullptr, timeout);
  }

  Status upload(const std::string& content, const std::string& remote_path, int mode) override {
    // A temp name beside the target, so `mv` is a rename in the same filesystem: readers see the
    // old file or the whole new one. Every path goes through shell_quote.
    static std::atomic<unsigned> counter{0};
    std::random_device rd;
    std::string tmp = remote_path + ".tmp.continuum." + std::to_string(rd() % 1000000) + "." +
                      std::to_string(counter++);
    char mode_str[8];
    std::snprintf(mode_str, sizeof mode_str, "%o", static_cast<unsigned>(mode) & 07777u);
    std::string cmd = "umask 077 && cat > " + shell_quote(tmp) + " && chmod " + mode_str + " " +
                      shell_quote(tmp) + " && mv -f " + shell_quote(tmp) + " " +
                      shell_quote(remote_path) + " || { rm -f " + shell_quote(tmp) + "; exit 1; }";
    auto r = run(cmd, &content, std::chrono::milliseconds(120000));
    if (!r) return std::move(r).error();
    if (r->timed_out) return make_error(describe() + ": upload of " + remote_path + " timed out");
    if (r->exit_code != 0)
      return make_error(describe() + ": upload of " + remote_path + " failed (exit " +
                        std::to_string(r->exit_code) + "): " + std::string(trim(r->err)));
    return {};
  }

  Expected<std::vector<Turn>> exchange_lines(const std::string& command, int turns,
                                             std::chrono::milliseconds timeout) override {
    auto deadline = Clock::now() + timeout;
    Channel channel = TRY(start(command));
    ssh_channel ch = channel.get();
    std::vector<Turn> out;
    std::string pending;
    char buf[4096];
    for (int i = 0; i < turns; ++i) {
      Turn t;
      t.sent = std::chrono::system_clock::now();
      auto ended = [&] {
        return make_error(describe() + ": `" + command + "` ended after " + std::to_string(i) +
                          " of " + std::to_string(turns) + " answers");
      };
      // A command that exited shows up either here (the channel is already closed when we write)
      // or below (EOF while we wait for its answer), depending on timing: the same error for both.
      if (ssh_channel_is_closed(ch) || ssh_channel_is_eof(ch)) return ended();
      if (ssh_channel_write(ch, "\n", 1) == SSH_ERROR) {
        if (ssh_channel_is_closed(ch) || ssh_channel_is_eof(ch)) return ended();
        return make_error(describe() +
                          ": write to the remote command failed: " + ssh_get_error(session_));
      }
      size_t nl;
      while ((nl = pending.find('\n')) == std::string::npos) {
        auto now = Clock::now();
        if (cancelled()) {
          ssh_channel_request_send_signal(ch, "TERM");
          return make_error(describe() + ": interrupted", ExitCode::interrupted);
        }
        if (now >= deadline)
          return make_error(describe() + ": no answer from `" + command + "` in time");
        int wait_ms = static_cast<int>(std::min<long>(
            100,
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1));
        int n = ssh_channel_read_timeout(ch, buf, sizeof buf, 0, wait_ms);
        if (n == SSH_ERROR) {
          if (ssh_channel_is_closed(ch) || ssh_channel_is_eof(ch)) return ended();
          return make_error(describe() +
                            ": connection lost during an exchange: " + ssh_get_error(session_));
        }
        if (n > 0)
          pending.append(buf, static_cast<size_t>(n));
        else if (ssh_channel_is_eof(ch) || ssh_channel_is_closed(ch))
          return ended();
      }
      t.received = std::chrono::system_clock::now();
      t.answer = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      out.push_back(std::move(t));
    }
    ssh_channel_send_eof(ch);
    return out;
  }

  void set_cancel(const std::atomic<bool>* cancel) override { cancel_ = cancel; }

  std::string describe() const override {
    std::string d = target_.user + "@" + target_.host + ":" + std::to_string(target_.port);
    if (!target_.netns.empty()) d += " (netns " + target_.netns + ")";
    return d;
  }

 private:
  struct ChannelCloser {
    void operator()(ssh_channel c) const {
      ssh_channel_close(c);
      ssh_channel_free(c);
    }
  };
  using Channel = std::unique_ptr<std::remove_pointer_t<ssh_channel>, ChannelCloser>;

  /// A session channel on which `command` runs (closed and freed when the Channel goes).
  Expected<Channel> start(const std::string& command) {
    Channel ch(ssh_channel_new(session_));
    if (!ch) return make_error(describe() + ": cannot open a channel: " + ssh_get_error(session_));
    if (ssh_channel_open_session(ch.get()) != SSH_OK)
      return make_error(describe() + ": cannot open a session channel: " + ssh_get_error(session_));
    if (ssh_channel_request_exec(ch.get(), command.c_str()) != SSH_OK)
      return make_error(describe() + ": exec request refused: " + ssh_get_error(session_));
    return ch;
  }

  Expected<ExecResult> run(const std::string& command, const std::string* stdin_data,
                           std::chrono::milliseconds timeout) {
    auto start = Clock::now();
    auto deadline = start + timeout;
    Channel channel = TRY(this->start(command));
    ssh_channel ch = channel.get();
    if (stdin_data) {
      size_t off = 0;
      while (off < stdin_data->size()) {
        uint32_t chunk = static_cast<uint32_t>(std::min<size_t>(stdin_data->size() - off, 32768));
        int n = ssh_channel_write(ch, stdin_data->data() + off, chunk);
        if (n == SSH_ERROR)
          return make_error(describe() +
                            ": write to the remote command failed: " + ssh_get_error(session_));
        off += static_cast<size_t>(n);
      }
    }
    // Close stdin in every case: a command that reads stdin must not wait for us forever.
    ssh_channel_send_eof(ch);

    ExecResult res;
    char buf[16384];
    for (;;) {
      auto now = Clock::now();
      if (cancelled()) {
        // sshd signals the command's whole process group (killpg); closing the channel alone
        // would leave a command that never writes running in the guest.
        res.cancelled = true;
        ssh_channel_request_send_signal(ch, "TERM");
        break;
      }
      if (now >= deadline) {
        res.timed_out = true;
        // OpenSSH ≥ 7.9 delivers the signal; either way closing the channel ends our side.
        ssh_channel_request_send_signal(ch, "KILL");
        break;
      }
      int wait_ms = static_cast<int>(std::min<long>(
          100, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1));
      int n = ssh_channel_read_timeout(ch, buf, sizeof buf, 0, wait_ms);
      if (n == SSH_ERROR)
        return make_error(describe() +
                          ": connection lost while running a command: " + ssh_get_error(session_));
      if (n > 0) res.out.append(buf, static_cast<size_t>(n));
      int m;
      while ((m = ssh_channel_read_nonblocking(ch, buf, sizeof buf, 1)) > 0)
        res.err.append(buf, static_cast<size_t>(m));
      if (m == SSH_ERROR)
        return make_error(describe() +
                          ": connection lost while running a command: " + ssh_get_error(session_));
      if (n <= 0 && ssh_channel_is_eof(ch)) {
        // Both streams are drained once EOF is seen and a read returns nothing more.
        while ((n = ssh_channel_read_nonblocking(ch, buf, sizeof buf, 0)) > 0)
          res.out.append(buf, static_cast<size_t>(n));
        while ((m = ssh_channel_read_nonblocking(ch, buf, sizeof buf, 1)) > 0)
          res.err.append(buf, static_cast<size_t>(m));
        break;
      }
    }
    if (!res.timed_out && !res.cancelled) res.exit_code = ssh_channel_get_exit_status(ch);
    res.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return res;
  }

  bool cancelled() const { return cancel_ && cancel_->load(); }

  ssh_session session_;
  SshTarget target_;
  const std::atomic<bool>* cancel_;
};

}  // namespace

Expected<std::vector<Remote::Turn>> Remote::exchange_lines(const std::string& command, int,
                                                           std::chrono::milliseconds) {
  return make_error(describe() + ": line exchanges are not supported (wanted for `" + command +
                    "`)");
}

namespace {

/// Connect + verify + authenticate on the calling thread.
Expected<RemotePtr> connect_here(const SshTarget& t, std::chrono::milliseconds timeout) {
  init_libssh_once();
  std::string who = t.user + "@" + t.host + ":" + std::to_string(t.port);
  if (!t.netns.empty()) who += " (netns " + t.netns + ")";
  if (t.known_hosts.empty())
    return make_error(who +
                      ": no known_hosts file given; refusing to connect without a pinned host key");
  std::error_code ec;
  if (!std::filesystem::exists(t.known_hosts, ec))
    return make_error(who + ": known_hosts file " + t.known_hosts.string() + " does not exist");

  ssh_session s = ssh_new();
  if (!s) return make_error(who + ": ssh_new failed");
  struct Guard {
    ssh_session s;
    bool keep = false;
    ~Guard() {
      if (!keep) {
        ssh_disconnect(s);
        ssh_free(s);
      }
    }
  } guard{s};

  bool no = false;
  int port = t.port;
  long secs = std::max<long>(1, static_cast<long>(timeout.count() / 1000));
  long usecs = static_cast<long>(timeout.count() % 1000) * 1000;
  if (timeout.count() < 1000) secs = 0, usecs = std::max<long>(usecs, 1000);
  std::string kh = t.known_hosts.string();
  // The user's ~/.ssh/config and the system-wide known_hosts must not change what we trust: the
  // global file is pointed at the run's file too.
  if (ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &no) != 0 ||
      ssh_options_set(s, SSH_OPTIONS_HOST, t.host.c_str()) != 0 ||
      ssh_options_set(s, SSH_OPTIONS_PORT, &port) != 0 ||
      ssh_options_set(s, SSH_OPTIONS_USER, t.user.c_str()) != 0 ||
      ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, kh.c_str()) != 0 ||
      ssh_options_set(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, kh.c_str()) != 0 ||
      ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &secs) != 0 ||
      ssh_options_set(s, SSH_OPTIONS_TIMEOUT_USEC, &usecs) != 0)
    return make_error(who + ": invalid SSH options: " + ssh_get_error(s));

  // Connect and authenticate in non-blocking mode, waiting on the socket in 10 ms steps, so that
  // one deadline covers both and a cancel (Ctrl-C) ends the wait at once: a TCG guest can take
  // tens of seconds to send its banner, and a blocking connect would sit through all of it.
  const auto deadline = Clock::now() + timeout;
  auto until_done = [&](auto&& step, int again, const char* what) -> Expected<int> {
    for (;;) {
      int rc = step();
      if (rc != again) return rc;
      if (t.cancel && t.cancel->load())
        return make_error(who + ": interrupted", ExitCode::interrupted);
      if (Clock::now() >= deadline)
        return make_error(who + ": " + what + ": no answer within " +
                          format_number(timeout.count() / 1000.0) + " s");
      socket_t fd = ssh_get_fd(s);
      pollfd p{fd, POLLIN, 0};
      ::poll(&p, fd == SSH_INVALID_SOCKET ? 0 : 1, 10);
    }
  };
  ssh_set_blocking(s, 0);
  int crc = TRY(until_done([&] { return ssh_connect(s); }, SSH_AGAIN, "cannot connect"));
  if (crc != SSH_OK) return make_error(who + ": cannot connect: " + ssh_get_error(s));

  ssh_known_hosts_e v = ssh_session_is_known_server(s);
  if (v != SSH_KNOWN_HOSTS_OK)
    return make_error(who + ": host key rejected: " + known_hosts_verdict(v) + " " + kh);

  ssh_key key = nullptr;
  if (ssh_pki_import_privkey_file(t.private_key.c_str(), nullptr, nullptr, nullptr, &key) != SSH_OK)
    return make_error(who + ": cannot read private key " + t.private_key.string());
  auto auth = until_done([&] { return ssh_userauth_publickey(s, nullptr, key); }, SSH_AUTH_AGAIN,
                         "public key authentication");
  ssh_key_free(key);
  if (!auth) return std::move(auth).error();
  int rc = *auth;
  if (rc != SSH_AUTH_SUCCESS)
    return make_error(
        who + ": public key authentication failed with " + t.private_key.string() +
        (rc == SSH_AUTH_ERROR ? std::string(": ") + ssh_get_error(s) : std::string()));
  // Commands run in blocking mode with the session timeout (their own loops poll for cancel).
  ssh_set_blocking(s, 1);
  guard.keep = true;
  return RemotePtr(new SshRemote(s, t));
}

}  // namespace

Expected<RemotePtr> ssh_connect(const SshTarget& target, std::chrono::milliseconds timeout) {
  if (target.netns.empty()) return connect_here(target, timeout);
  std::string ns_path = "/run/netns/" + target.netns;
  int fd = ::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return make_error("network namespace " + target.netns + ": cannot open " + ns_path + ": " +
                      std::strerror(errno));
  // Results travel as plain members: GCC 12 misreads a moved Expected<unique_ptr> across the
  // thread boundary (-Wfree-nonheap-object).
  RemotePtr remote;
  Error error;
  std::thread th([&] {
    // setns affects only this thread; it ends right after the connect.
    if (::setns(fd, CLONE_NEWNET) != 0) {
      error = make_error("network namespace " + target.netns +
                         ": setns failed: " + std::strerror(errno));
      return;
    }
    auto r = connect_here(target, timeout);
    if (r.ok())
      remote = std::move(r).value();
    else
      error = std::move(r).error();
  });
  th.join();
  ::close(fd);
  if (!remote) return error;
  return remote;
}

}  // namespace continuum::util

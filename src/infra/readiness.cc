// SSH readiness of freshly started VMs (src/infra/include/continuum/infra/readiness.h).
#include "continuum/infra/readiness.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <thread>

#include "continuum/util/parallel.h"
#include "continuum/util/strings.h"

namespace continuum::infra {
namespace {

using Clock = std::chrono::steady_clock;

ReadyResult poll_one(const ReadyTarget& t, const ReadyOptions& o, Clock::time_point polling_start) {
  ReadyResult r;
  r.name = t.name;
  auto start = t.started == Clock::time_point{} ? polling_start : t.started;
  auto deadline = start + o.timeout;
  auto cancelled = [&] { return o.cancel && o.cancel->load(); };
  util::SshTarget ssh = t.ssh;
  if (o.cancel) ssh.cancel = o.cancel;
  while (Clock::now() < deadline) {
    if (cancelled()) {
      r.last_error = "interrupted";
      break;
    }
    ++r.attempts;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    auto conn = util::ssh_connect(
        ssh, std::min(o.connect_timeout, std::max(left, std::chrono::milliseconds(100))));
    if (conn) {
      auto e = (*conn)->exec(o.probe, std::max(left, std::chrono::milliseconds(1000)));
      if (e && e->exit_code == 0) {
        if (o.pool) o.pool->put(ssh, std::move(*conn));
        r.ready = true;
        r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
        if (o.on_ready) o.on_ready(t.name, r.seconds);
        return r;
      }
      r.last_error = e ? "login works but `" + o.probe + "` exited " +
                             std::to_string(e->exit_code) + ": " + std::string(util::trim(e->err))
                       : e.error().message;
    } else {
      r.last_error = conn.error().message;
      if (cancelled()) {
        r.last_error = "interrupted";
        break;
      }
      // A host key mismatch will not heal by waiting: the guest is not the one we seeded.
      if (r.last_error.find("DIFFERS") != std::string::npos) break;
    }
    spdlog::debug("{}: not ready yet ({})", t.name, r.last_error);
    // Sleep in short steps so that a cancellation is seen quickly.
    auto next = std::min(Clock::now() + o.poll_interval, deadline);
    while (Clock::now() < next && !cancelled())
      std::this_thread::sleep_for(
          std::min<Clock::duration>(next - Clock::now(), std::chrono::milliseconds(100)));
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return r;
}

}  // namespace

std::string tail_lines(const std::filesystem::path& file, size_t lines) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return "";
  std::string all((std::istreambuf_iterator<char>(in)), {});
  // Serial logs carry CR and terminal escapes; keep the text readable in an error message.
  std::string clean;
  for (size_t i = 0; i < all.size(); ++i) {
    char c = all[i];
    if (c == '\x1b') {
      size_t j = i + 1;
      if (j < all.size() && all[j] == '[') {
        ++j;
        while (j < all.size() && !(all[j] >= '@' && all[j] <= '~')) ++j;
      }
      i = j;
      continue;
    }
    if (c == '\r') continue;
    clean += c;
  }
  auto v = util::split(clean, '\n');
  while (!v.empty() && util::trim(v.back()).empty()) v.pop_back();
  size_t from = v.size() > lines ? v.size() - lines : 0;
  std::vector<std::string> last(v.begin() + static_cast<long>(from), v.end());
  return util::join(last, "\n");
}

Expected<std::vector<ReadyResult>> wait_ready(const std::vector<ReadyTarget>& targets,
                                              const ReadyOptions& options) {
  auto polling_start = Clock::now();
  std::vector<ReadyResult> results(targets.size());
  // One thread per VM: each mostly waits on the network, and a VM count beyond a few hundred is
  // not something one host boots at once anyway.
  util::parallel_for(targets.size(), util::kAllAtOnce,
                     [&](size_t i) { results[i] = poll_one(targets[i], options, polling_start); });
  if (options.cancel && options.cancel->load()) {
    std::vector<std::string> waiting;
    for (const auto& r : results)
      if (!r.ready) waiting.push_back(r.name);
    if (!waiting.empty())
      return make_error(
          "interrupted while waiting for an SSH login to " + util::join(waiting, ", "),
          ExitCode::interrupted);
  }

  std::string msg;
  size_t failed = 0;
  for (size_t i = 0; i < targets.size(); ++i) {
    const auto& r = results[i];
    if (r.ready) continue;
    ++failed;
    msg += "\n" + r.name + " (" + targets[i].ssh.user + "@" + targets[i].ssh.host +
           ") was not reachable over SSH after " + util::format_number(std::round(r.seconds)) +
           " s (" + std::to_string(r.attempts) + " attempts); last error: " + r.last_error;
    if (!targets[i].console_log.empty()) {
      std::string tail = tail_lines(targets[i].console_log, options.console_tail_lines);
      if (tail.empty())
        msg += "\n  console log " + targets[i].console_log.string() + " is empty or missing";
      else
        msg += "\n  last lines of " + targets[i].console_log.string() + ":\n    " + [&] {
          std::string s;
          for (const auto& l : util::split(tail, '\n')) s += (s.empty() ? "" : "\n    ") + l;
          return s;
        }();
    }
  }
  if (failed)
    return make_error(std::to_string(failed) + " of " + std::to_string(targets.size()) +
                      " VMs did not become ready:" + msg);
  return results;
}

}  // namespace continuum::infra

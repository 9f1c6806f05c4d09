// Guest clock alignment (src/infra/include/continuum/infra/clock.h).
#include "continuum/infra/clock.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <mutex>

#include "continuum/util/files.h"
#include "continuum/util/parallel.h"
#include "continuum/util/strings.h"

namespace continuum::infra {

namespace {

using SysClock = std::chrono::system_clock;

double ms_since_epoch(SysClock::time_point t) {
  return std::chrono::duration<double, std::milli>(t.time_since_epoch()).count();
}

/// Best (shortest round trip) of opt.samples turns with one guest process answering each line
/// with its clock: a turn costs one channel round trip (about 2 ms under TCG). One `date` command
/// per sample was tried first and dropped: a command start costs 120-190 ms under TCG, spent
/// mostly before the guest reads its clock, which left 25-34 ms of error. python3 is in every
/// guest (Ansible and the step need it), so there is no second way to fall back on.
Expected<ClockEstimate> estimate(util::Remote& remote, const ClockOptions& opt) {
  auto turns =
      TRY(remote.exchange_lines(clock_echo_command(), std::max(1, opt.samples) + 1, opt.timeout));
  std::optional<ClockEstimate> best;
  for (size_t i = 1; i < turns.size(); ++i) {  // the first turn also waits for python to start
    auto e = TRY(offset_from_sample(turns[i].sent, turns[i].answer, turns[i].received));
    if (!best || e.rtt_ms < best->rtt_ms) best = e;
  }
  if (!best) return make_error("the guest's clock gave no answer");
  return *best;
}

}  // namespace

Expected<ClockEstimate> offset_from_sample(SysClock::time_point sent,
                                           const std::string& guest_output,
                                           SysClock::time_point received) {
  // "1764430000.123456789": whole seconds and nanoseconds apart, so no precision is lost.
  std::string s(util::trim(guest_output));
  auto dot = s.find('.');
  auto digits = [](const std::string& x) {
    return !x.empty() && x.find_first_not_of("0123456789") == std::string::npos;
  };
  if (dot == std::string::npos || !digits(s.substr(0, dot)) || !digits(s.substr(dot + 1)) ||
      dot > 12)
    return make_error("the guest's clock answered '" + s.substr(0, 60) +
                      "', not seconds.nanoseconds");
  std::string frac = s.substr(dot + 1);
  frac = (frac + "000000000").substr(0, 9);
  double guest_ms = std::stod(s.substr(0, dot)) * 1000.0 + std::stod(frac) / 1e6;
  double t0 = ms_since_epoch(sent), t1 = ms_since_epoch(received);
  ClockEstimate e;
  e.rtt_ms = t1 - t0;
  e.offset_ms = guest_ms - (t0 + t1) / 2;
  return e;
}

std::string clock_echo_command() {
  return util::shell_join({"python3", "-c",
                           "import sys, time\n"
                           "while sys.stdin.readline():\n"
                           "    sys.stdout.write('%.9f\\n' % time.time())\n"
                           "    sys.stdout.flush()\n"});
}

std::string clock_step_command(double delta_ms, bool sudo) {
  // adjtimex(ADJ_SETOFFSET | ADJ_NANO): the kernel adds the offset to the clock atomically. Reading
  // the time and setting time + delta instead loses whatever passes in between, which under TCG
  // was 3-5 ms on a guest's first clock_settime.
  static const char* kScript =
      "import ctypes, sys\n"
      "L, I = ctypes.c_long, ctypes.c_int\n"
      "class Timex(ctypes.Structure):\n"
      "    _fields_ = [('modes', ctypes.c_uint)] + [(n, L) for n in ('offset', 'freq', 'maxerror', "
      "'esterror')] + "
      "[('status', I)] + [(n, L) for n in ('constant', 'precision', 'tolerance', 'sec', 'usec', "
      "'tick', 'ppsfreq', "
      "'jitter')] + [('shift', I)] + [(n, L) for n in ('stabil', 'jitcnt', 'calcnt', 'errcnt', "
      "'stbcnt')] + "
      "[('tai', I), ('pad', I * 11)]\n"
      "ns = round(float(sys.argv[1]) * 1e6)\n"
      "t = Timex(modes=0x0100 | 0x2000, sec=ns // 10**9, usec=ns % 10**9)\n"
      "libc = ctypes.CDLL(None, use_errno=True)\n"
      "if libc.adjtimex(ctypes.byref(t)) < 0:\n"
      "    sys.exit('adjtimex(ADJ_SETOFFSET): ' + __import__('os').strerror(ctypes.get_errno()))\n";
  std::vector<std::string> argv;
  if (sudo) argv = {"sudo", "-n"};
  argv.insert(argv.end(), {"python3", "-c", kScript, fmt::format("{:.3f}", delta_ms)});
  return util::shell_join(argv);
}

ClockResult sync_clock(util::Remote& remote, const std::string& node_id, bool sudo,
                       const ClockOptions& opt) {
  ClockResult res;
  res.node_id = node_id;
  auto before = estimate(remote, opt);
  if (!before) {
    res.error = "cannot read the clock: " + before.error().message;
    return res;
  }
  res.before = *before;
  if (std::fabs(before->offset_ms) <= opt.step_above_ms) return res;
  if (opt.cancel && opt.cancel->load()) {
    res.error = "interrupted before the step";
    return res;
  }
  auto r = remote.exec(clock_step_command(-before->offset_ms, sudo), opt.timeout);
  if (!r || r->exit_code != 0) {
    res.error =
        "cannot step the clock: " + (r ? std::string(util::trim(r->err)) : r.error().message);
    return res;
  }
  res.stepped = true;
  auto after = estimate(remote, opt);
  if (!after) {
    res.error = "cannot read the clock after the step: " + after.error().message;
    return res;
  }
  res.after = *after;
  return res;
}

std::vector<ClockResult> sync_clocks(const Deployment& d, const std::filesystem::path& run_dir,
                                     record::EventLog* events, const ClockOptions& opt) {
  std::vector<ClockResult> out(d.nodes.size());
  util::parallel_for(d.nodes.size(), util::kAllAtOnce, [&](size_t i) {
    const DeployedNode& n = d.nodes[i];
    if (opt.cancel && opt.cancel->load()) {
      out[i].node_id = n.id;
      out[i].error = "interrupted";
      return;
    }
    auto remote = d.connect(n, opt.timeout, opt.cancel);
    if (!remote) {
      out[i].node_id = n.id;
      out[i].error = "cannot connect: " + remote.error().message;
      return;
    }
    out[i] = sync_clock(**remote, n.id, n.ssh_user != "root", opt);
  });
  const bool interrupted = opt.cancel && opt.cancel->load();
  if (interrupted) spdlog::warn("clocks: interrupted; the guest clocks are left as they are");
  for (const auto& r : out) {
    double residual = r.after ? r.after->offset_ms : r.before.offset_ms;
    if (!r.error.empty() && interrupted)
      spdlog::debug("clock of {}: {}", r.node_id, r.error);
    else if (!r.error.empty())
      spdlog::warn("clock of {}: {} (cross-VM latencies involving it are off by its offset)",
                   r.node_id, r.error);
    else if (std::fabs(residual) > opt.warn_above_ms)
      spdlog::warn("clock of {}: still {:+.1f} ms off the host's after the step", r.node_id,
                   residual);
    else
      spdlog::info("clock of {}: {:+.1f} ms off the host's{}", r.node_id, r.before.offset_ms,
                   r.after ? fmt::format(", stepped, now {:+.2f} ms (+-{:.2f})", r.after->offset_ms,
                                         r.after->rtt_ms / 2)
                           : std::string(", left alone"));
    if (events) {
      nlohmann::json det{{"offset_before_ms", r.before.offset_ms},
                         {"rtt_before_ms", r.before.rtt_ms},
                         {"stepped", r.stepped}};
      if (r.after) det["offset_after_ms"] = r.after->offset_ms;
      if (!r.error.empty()) det["error"] = r.error;
      events->emit("clock", "aligned", "", -1, r.node_id, det);
    }
  }
  if (!run_dir.empty()) {
    auto st =
        util::write_file_atomic(run_dir / "infrastructure" / "clocks.csv", format_clocks_csv(out));
    if (!st) spdlog::warn("{}", st.error().message);
  }
  return out;
}

std::string format_clocks_csv(const std::vector<ClockResult>& results) {
  std::string s =
      "node,offset_before_ms,rtt_before_ms,stepped,offset_after_ms,rtt_after_ms,error\n";
  for (const auto& r : results) {
    s += fmt::format(
        "{},{:.3f},{:.3f},{},{},{},{}\n", r.node_id, r.before.offset_ms, r.before.rtt_ms,
        r.stepped ? "true" : "false", r.after ? fmt::format("{:.3f}", r.after->offset_ms) : "",
        r.after ? fmt::format("{:.3f}", r.after->rtt_ms) : "", util::csv_field(r.error));
  }
  return s;
}

}  // namespace continuum::infra

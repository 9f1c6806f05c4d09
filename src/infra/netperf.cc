#include "continuum/infra/netperf.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>

#include "continuum/util/strings.h"
#include "continuum/util/table.h"

namespace continuum::infra {

namespace {

// The eight fields the original asked TCP_RR for, in its order.
constexpr const char* kRrFields =
    "min_latency,mean_latency,max_latency,stddev_latency,transaction_rate,p50_latency,p90_latency,"
    "p99_latency";

std::string quote_output(const std::string& out) {
  std::string s(util::trim(out));
  for (char& c : s)
    if (c == '\n') c = ' ';
  if (s.empty()) return "(no output)";
  return s.size() > 300 ? s.substr(0, 300) + "..." : s;
}

// The comma-separated numbers of the last line that has exactly `n` of them; nullopt if none.
std::optional<std::vector<std::string>> last_csv_line(const std::string& out, size_t n) {
  std::istringstream in(out);
  std::string line;
  std::optional<std::vector<std::string>> found;
  while (std::getline(in, line)) {
    auto fields = util::split(std::string(util::trim(line)), ',');
    if (fields.size() == n) found = fields;
  }
  return found;
}

std::optional<double> number(const std::string& s) {
  const std::string t(util::trim(s));
  if (t.empty()) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(t.c_str(), &end);
  if (end != t.c_str() + t.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

}  // namespace

std::vector<NetperfPair> netperf_pairs(const plan::Plan& p) {
  using plan::Tier;
  static const std::pair<Tier, Tier> kOrder[] = {
      {Tier::cloud, Tier::cloud},    {Tier::cloud, Tier::edge},    {Tier::cloud, Tier::endpoint},
      {Tier::edge, Tier::edge},      {Tier::edge, Tier::cloud},    {Tier::edge, Tier::endpoint},
      {Tier::endpoint, Tier::cloud}, {Tier::endpoint, Tier::edge},
  };
  std::vector<NetperfPair> out;
  for (const auto& [a, b] : kOrder) {
    const plan::Node* src = nullptr;
    for (const auto& n : p.nodes)
      if (n.tier == a) {
        src = &n;
        break;
      }
    if (!src) continue;
    for (const auto& n : p.nodes)
      if (n.tier == b && n.id != src->id)
        out.push_back({src->id, n.id, config::tier_name(a), config::tier_name(b), n.ip});
  }
  return out;
}

namespace {

// netperf's global options, then the test's own after "--": -o selects the output fields (one CSV
// line, no banner with -P 0).
std::vector<std::string> netperf_argv(const std::string& ip, int seconds, const char* test,
                                      const char* fields, bool megabits) {
  std::vector<std::string> a = {"netperf", "-P", "0"};
  if (megabits) a.insert(a.end(), {"-f", "m"});
  a.insert(a.end(), {"-H", ip, "-p", std::to_string(kNetserverPort), "-l", std::to_string(seconds),
                     "-t", test, "--", "-o", fields});
  return a;
}

}  // namespace

std::vector<std::string> tcp_rr_command(const std::string& ip, int seconds) {
  return netperf_argv(ip, seconds, "TCP_RR", kRrFields, false);
}

std::vector<std::string> tcp_stream_command(const std::string& ip, int seconds) {
  return netperf_argv(ip, seconds, "TCP_STREAM", "throughput,throughput_units,elapsed_time", true);
}

std::string netserver_script() {
  // ss is iproute2's (in every image); netserver forks into the background by itself.
  const std::string port = std::to_string(kNetserverPort);
  return "if ss -Hltn 'sport = :" + port +
         "' | grep -q .; then exit 0; fi; "
         "command -v netserver >/dev/null 2>&1 || { echo 'netserver is not installed in this "
         "guest (Debian 13 package netperf; the energy image has it)' >&2; exit 127; }; "
         "netserver -p " +
         port + " >/dev/null";
}

Expected<RrResult> parse_tcp_rr(const std::string& output) {
  auto f = last_csv_line(output, 8);
  if (!f) return make_error("netperf TCP_RR printed no result line: " + quote_output(output));
  double v[8];
  for (size_t i = 0; i < 8; ++i) {
    auto x = number((*f)[i]);
    if (!x)
      return make_error("netperf TCP_RR: not a number: '" + (*f)[i] + "' in " +
                        quote_output(output));
    v[i] = *x;
  }
  return RrResult{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
}

Expected<StreamResult> parse_tcp_stream(const std::string& output) {
  auto f = last_csv_line(output, 3);
  if (!f) return make_error("netperf TCP_STREAM printed no result line: " + quote_output(output));
  auto mbit = number((*f)[0]);
  auto secs = number((*f)[2]);
  const std::string units(util::trim((*f)[1]));
  if (!mbit || !secs)
    return make_error("netperf TCP_STREAM: not a number in " + quote_output(output));
  // -f m asks for 10^6 bit/s; anything else means the command was not the one we built.
  if (units != "10^6bits/s")
    return make_error("netperf TCP_STREAM: unexpected units '" + units + "' (asked for -f m)");
  return StreamResult{*mbit, *secs};
}

double mathis_limit_mbit(double rtt_ms, double loss_pct, double mss_bytes) {
  if (loss_pct <= 0 || rtt_ms <= 0) return std::numeric_limits<double>::infinity();
  return mss_bytes * 8 / (rtt_ms / 1000) * 1.22 / std::sqrt(loss_pct / 100) / 1e6;
}

void judge_throughput(NetperfResult& r) {
  const std::string name = r.pair.from + " -> " + r.pair.to;
  if (!r.stream) {
    r.status = "error";
    if (r.message.empty()) r.message = "pair " + name + ": no TCP_STREAM result";
    return;
  }
  const double m = r.stream->mbit_per_s;
  if (!r.shaped) {
    r.status = "measured";
    return;
  }
  const double c = r.configured_mbit;
  if (m > c * kThroughputHigh) {
    r.status = "warning";
    r.message = fmt::format(
        "pair {}: measured {:.1f} Mbit/s exceeds the configured {:.1f} Mbit/s by {:.0f} % (is the "
        "rate applied?)",
        name, m, c, 100 * (m / c - 1));
    return;
  }
  // Where the platform (a TCG guest's CPU, netem's and htb's timers) cannot push the configured
  // rate even without the limit, the rate cannot be shown on it: reported with both figures, not
  // judged, since what such a path carries swings with the host's load (36-835 Mbit/s between two
  // runs of the same 1000 Mbit/s pair here) and says nothing about the shaping.
  const std::optional<double> ceiling = platform_ceiling_mbit(r);
  if (ceiling && c > *ceiling * kPlatformFraction) {
    const char* where =
        r.unlimited_mbit && (!r.baseline_mbit || *r.unlimited_mbit <= *r.baseline_mbit)
            ? "through the emulated path without the rate limit"
            : "on the bare path";
    r.status = "platform-limited";
    r.message = fmt::format(
        "pair {}: configured {:.1f} Mbit/s, but this platform pushes {:.1f} Mbit/s {}; measured "
        "{:.1f} Mbit/s",
        name, c, *ceiling, where, m);
    return;
  }
  const double expected = c * kPayloadFraction;
  if (m >= expected * kThroughputLow) {
    r.status = "ok";
    return;
  }
  const double mathis = mathis_limit_mbit(r.configured_rtt_ms, r.configured_loss_pct);
  if (r.configured_loss_pct > 0 && m <= mathis * 1.5) {
    // TCP halves its window on every loss: with random loss it cannot fill the rate.
    r.status = "loss-limited";
    r.message = fmt::format(
        "pair {}: measured {:.1f} Mbit/s of {:.1f} configured; {:.2f} % loss and {:.1f} ms RTT "
        "cap TCP at about {:.1f} Mbit/s",
        name, m, c, r.configured_loss_pct, r.configured_rtt_ms, mathis);
    return;
  }
  r.status = "warning";
  r.message = fmt::format(
      "pair {}: measured {:.1f} Mbit/s vs {} {:.1f} Mbit/s ({:+.0f} %; tolerance {:.0f} %)", name,
      m, "the configured rate's payload", expected, 100 * (m / expected - 1),
      100 * (1 - kThroughputLow));
}

std::optional<double> platform_ceiling_mbit(const NetperfResult& r) {
  if (r.baseline_mbit && r.unlimited_mbit) return std::min(*r.baseline_mbit, *r.unlimited_mbit);
  return r.baseline_mbit ? r.baseline_mbit : r.unlimited_mbit;
}

namespace {

/// A CSV number with `decimals` digits, empty when not measured (util::format_fixed's NaN).
std::string opt(const std::optional<double>& v, int decimals) {
  return util::format_fixed(v.value_or(std::nan("")), decimals);
}

}  // namespace

std::string format_netperf_table(const std::vector<NetperfResult>& results) {
  if (results.empty()) return "";
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"pair", "tiers", "configured", "bare path", "unlimited", "TCP_STREAM",
                  "TCP_RR mean", "p99", "trans/s", "status"});
  for (const auto& r : results) {
    rows.push_back({
        r.pair.from + " -> " + r.pair.to,
        r.pair.from_tier + "->" + r.pair.to_tier,
        r.shaped ? fmt::format("{:.1f} Mbit/s", r.configured_mbit) : "-",
        r.baseline_mbit ? fmt::format("{:.1f} Mbit/s", *r.baseline_mbit) : "-",
        r.unlimited_mbit ? fmt::format("{:.1f} Mbit/s", *r.unlimited_mbit) : "-",
        r.stream ? fmt::format("{:.1f} Mbit/s", r.stream->mbit_per_s) : "-",
        r.rr ? fmt::format("{:.0f} us", r.rr->mean_us) : "-",
        r.rr ? fmt::format("{:.0f} us", r.rr->p99_us) : "-",
        r.rr ? fmt::format("{:.0f}", r.rr->transactions_per_s) : "-",
        r.status,
    });
  }
  return util::align_columns(rows);
}

std::string format_netperf_csv(const std::vector<NetperfResult>& results) {
  std::string s =
      "from,to,from_tier,to_tier,to_ip,configured_mbit,configured_rtt_ms,configured_loss_pct,"
      "baseline_mbit,unlimited_mbit,stream_mbit,stream_seconds,rr_min_us,rr_mean_us,rr_max_us,rr_"
      "stddev_us,"
      "rr_transactions_per_s,rr_p50_us,rr_p90_us,rr_p99_us,status\n";
  for (const auto& r : results) {
    const auto& p = r.pair;
    std::optional<double> sm, ss, a, b, c, d, e, f, g, h;
    if (r.stream) sm = r.stream->mbit_per_s, ss = r.stream->seconds;
    if (r.rr)
      a = r.rr->min_us, b = r.rr->mean_us, c = r.rr->max_us, d = r.rr->stddev_us,
      e = r.rr->transactions_per_s, f = r.rr->p50_us, g = r.rr->p90_us, h = r.rr->p99_us;
    s += fmt::format(
        "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", p.from, p.to,
        p.from_tier, p.to_tier, p.to_ip, r.shaped ? fmt::format("{:.3f}", r.configured_mbit) : "",
        r.shaped ? fmt::format("{:.3f}", r.configured_rtt_ms) : "",
        r.shaped ? fmt::format("{:.3f}", r.configured_loss_pct) : "", opt(r.baseline_mbit, 3),
        opt(r.unlimited_mbit, 3), opt(sm, 3), opt(ss, 2), opt(a, 2), opt(b, 2), opt(c, 2),
        opt(d, 2), opt(e, 2), opt(f, 2), opt(g, 2), opt(h, 2), r.status);
  }
  return s;
}

}  // namespace continuum::infra

#pragma once
// `netperf = True`: the original's latency and throughput matrix between the tiers, measured with
// the original's tool (netperf's TCP_RR and TCP_STREAM) and, unlike the original, parsed, judged
// against what the configuration promises, and written to <run>/infrastructure/netperf.csv.
//
// Throughput is judged against the configured htb rate only where the platform can push that
// rate: every pair is first measured on the bare path (no qdisc), as the RTT check measures its
// baseline, and a pair that falls short once shaped is measured again through its emulated path
// with the rate limit lifted (delay, jitter and loss kept): netem's per-packet timers cost a TCG
// guest far more than the bare path shows (here: 1858 Mbit/s bare, 111 Mbit/s through a 15 ms
// netem). Where even that path cannot carry the rate, "1000 Mbit/s between clouds" is reported as
// platform-limited instead of wrong. Pure functions here; the runs happen in netem_apply.cc
// through a NetemExecutor.
#include <optional>
#include <string>
#include <vector>

#include "continuum/plan/plan.h"
#include "continuum/util/expected.h"

namespace continuum::infra {

/// netserver's control port (netperf's default).
inline constexpr int kNetserverPort = 12865;

/// One ordered pair of the matrix: netperf runs on `from` against netserver on `to`.
struct NetperfPair {
  std::string from, to;  ///< node ids
  std::string from_tier, to_tier;
  std::string to_ip;
};

/// The original's matrix: for each ordered tier pair cloud->cloud, cloud->edge, cloud->endpoint,
/// edge->edge, edge->cloud, edge->endpoint, endpoint->cloud, endpoint->edge (no
/// endpoint->endpoint), from the first node of the source tier (plan order: the controller for
/// cloud) to every other node of the target tier. Tiers without nodes are skipped.
std::vector<NetperfPair> netperf_pairs(const plan::Plan& plan);

/// TCP_RR: one-byte request/response transactions; latencies in microseconds.
struct RrResult {
  double min_us = 0, mean_us = 0, max_us = 0, stddev_us = 0;
  double transactions_per_s = 0;
  double p50_us = 0, p90_us = 0, p99_us = 0;
};
/// TCP_STREAM: bulk transfer from `from` to `to`.
struct StreamResult {
  double mbit_per_s = 0;  ///< 10^6 bit/s
  double seconds = 0;     ///< how long it ran
};

/// `netperf -P 0 -H IP -l S -t TCP_RR -- -o <the original's eight fields>` (one CSV line out).
std::vector<std::string> tcp_rr_command(const std::string& ip, int seconds);
/// `netperf -P 0 -f m -H IP -l S -t TCP_STREAM -- -o throughput,throughput_units,elapsed_time`.
std::vector<std::string> tcp_stream_command(const std::string& ip, int seconds);
/// Starts netserver on kNetserverPort unless something listens there already (Debian's package
/// enables netperf.service; an image without it gets one started over SSH). Fails, naming it,
/// when netserver is not installed.
std::string netserver_script();

/// Parses the output of tcp_rr_command: the last line of eight numbers. An Error quoting the
/// output otherwise (e.g. "establish control: are you sure there is a netserver listening").
Expected<RrResult> parse_tcp_rr(const std::string& output);
/// Parses the output of tcp_stream_command: "THROUGHPUT,10^6bits/s,ELAPSED".
Expected<StreamResult> parse_tcp_stream(const std::string& output);

/// One pair, configured and measured.
struct NetperfResult {
  NetperfPair pair;
  double configured_mbit = 0;  ///< htb rate of the sender's class to `to` (default class if none)
  double configured_rtt_ms = 0;
  double configured_loss_pct = 0;  ///< round trip
  bool shaped = false;             ///< false without network emulation: nothing to judge against
  std::optional<double> baseline_mbit;  ///< TCP_STREAM before any qdisc: what the platform pushes
  /// TCP_STREAM through the emulated path with the sender's rate limit lifted (measured only
  /// when the shaped stream fell short): what the platform pushes through netem's delay.
  std::optional<double> unlimited_mbit;
  std::optional<RrResult> rr;
  std::optional<StreamResult> stream;
  /// ok | platform-limited | loss-limited | warning | error | measured (nothing configured)
  std::string status;
  std::string message;  ///< why, naming the pair, when status is not ok/measured
};

/// TCP payload per Ethernet frame that htb counts: 1448 of 1514 bytes (timestamps on). netperf
/// reports payload, so a stream that fills the rate shows 95.6 % of it.
inline constexpr double kPayloadFraction = 1448.0 / 1514.0;
/// Fractions of what a shaped TCP stream can show (the configured rate times kPayloadFraction)
/// that it must reach, and of the configured rate that it may not exceed. The low bound leaves
/// room for netem's jitter, which reorders packets (TCP takes reordering as loss and backs off:
/// 0.79-0.84 of the rate on the 5g preset's jittered links here), and a short test's slow start.
inline constexpr double kThroughputLow = 0.75;
inline constexpr double kThroughputHigh = 1.10;
/// A configured rate above this fraction of what the platform pushes (bare path, or emulated path
/// without the rate limit) is beyond what it can show: reported as platform-limited, not judged.
inline constexpr double kPlatformFraction = 0.80;

/// The most this platform was seen to push on the pair's path: the lower of the bare-path and
/// the unlimited emulated-path throughput, whichever were measured.
std::optional<double> platform_ceiling_mbit(const NetperfResult& r);

/// TCP's ceiling under random loss (Mathis et al.: MSS / RTT * 1.22 / sqrt(p)), Mbit/s; infinite
/// without loss or RTT.
double mathis_limit_mbit(double rtt_ms, double loss_pct, double mss_bytes = 1448);

/// Sets status and message from the configured rate, the baseline and the measured stream.
void judge_throughput(NetperfResult& r);

/// The table printed and put in summary.md.
std::string format_netperf_table(const std::vector<NetperfResult>& results);
/// The same as CSV, header included.
std::string format_netperf_csv(const std::vector<NetperfResult>& results);

}  // namespace continuum::infra

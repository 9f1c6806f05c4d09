#pragma once
// Network emulation between tiers (docs/original.md §5, docs/design.md §5): tc htb classes + netem
// per destination group inside every guest, generated purely from the Plan, applied concurrently
// through a NetemExecutor (SSH for VMs, `ip netns exec` for tests, a dry run that records the
// scripts), then measured as an RTT matrix and reported configured vs measured
// (<run>/infrastructure/network.csv). docs/network.md explains the mechanism and the original's
// traps fixed here.
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "continuum/infra/deployment.h"
#include "continuum/infra/netperf.h"
#include "continuum/plan/plan.h"
#include "continuum/record/events.h"
#include "continuum/util/expected.h"
#include "continuum/util/ssh.h"

namespace continuum::infra {

/// One command as argv; rendered for a shell only through util::shell_join.
using Argv = std::vector<std::string>;

/// htb minor of the default class that takes every packet no filter matches (tc reads class
/// minors as hex: this is 1:999). The original had no default class, so such traffic bypassed
/// htb entirely; here it is shaped explicitly at kDefaultClassRateMbit.
inline constexpr const char* kDefaultClassMinor = "999";
/// Rate of the default class: the original's "unshaped" LAN speed (cloud<->cloud 1000 Mbit/s),
/// so SSH, Ansible and traffic to the host are not slowed, but visibly go through a class.
inline constexpr double kDefaultClassRateMbit = 1000;

/// One htb class of a node: the traffic to `peers` gets `rate_mbit` and, on this end, `delay_ms`
/// (normal distribution with `jitter_ms`) and `loss_pct` on egress.
struct NetemClass {
  int number = 0;     ///< n: classid 1:<hex n>, netem handle <hex n>0:, filter prio n
  std::string group;  ///< "cloud", "edge", "endpoint" or "pair:<node id>"
  double rate_mbit = 0;
  double delay_ms = 0;   ///< applied on this end (halved when latency_is_rtt)
  double jitter_ms = 0;  ///< applied on this end (divided by sqrt(2) when latency_is_rtt)
  double loss_pct = 0;   ///< on this end's egress (per direction)
  std::vector<std::string> peer_ids;
  std::vector<std::string> peer_ips;
};

/// Everything a node gets: its classes in upstream order (tier groups as docs/original.md §5.2,
/// then endpoint<->endpoint when shaped, then [link A B] pairs).
struct NodeNetem {
  std::string node_id;
  std::vector<NetemClass> classes;  ///< empty: the node is left alone
  /// Class that carries traffic to `peer_id`, nullptr when it falls into the default class.
  const NetemClass* class_for(const std::string& peer_id) const;
};

/// The classes of one node. Validates every value (finite, in range, addresses are IPv4) so
/// nothing odd reaches a command line. Error exit code 2 (it is a configuration problem).
Expected<NodeNetem> node_netem(const plan::Plan& plan, const plan::Node& node);

/// Checks an interface name (what `ip` accepts: 1..15 chars, no '/', ':', whitespace or quotes).
Status validate_interface(const std::string& name);

/// The exact tc commands for `node` on `interface`, in order: root htb with the default class,
/// the default class, then per class: class, one u32 filter per peer, netem (when it delays or
/// drops). `sudo` prefixes each with `sudo -n` (the ssh user is not root). Empty when the node
/// has nothing to shape.
Expected<std::vector<Argv>> tc_commands(const plan::Plan& plan, const plan::Node& node,
                                        const std::string& interface, bool sudo = false);

/// `tc class change` of class `number` (NetemClass::number) on `interface` to `rate_mbit`: the
/// netperf matrix lifts one class's rate for a moment to see what the platform pushes through the
/// emulated delay alone, then puts the configured rate back.
Argv tc_class_rate_command(const std::string& interface, int number, double rate_mbit,
                           bool sudo = false);

/// Per node, the tc commands it will get, rendered with shell_join, for `continuum plan`. The
/// interface is found in the guest at run time and is shown as NIC.
std::string netem_summary(const plan::Plan& plan);
/// Same as JSON: {"<node id>": ["tc qdisc add ...", ...], ...} (nodes without commands omitted).
nlohmann::json netem_json(const plan::Plan& plan);

/// A shell script that removes any earlier root qdisc (so a re-apply works) and runs `commands`
/// in order, stopping at the first failure and naming its index on stderr.
std::string apply_script(const std::string& interface, const std::vector<Argv>& commands,
                         bool sudo);
/// Removes any root qdisc from `interface` (never fails): what apply_script starts with.
std::string reset_script(const std::string& interface, bool sudo);

/// Where commands run: SSH into VMs, `ip netns exec` for tests, or nowhere (dry run).
class NetemExecutor {
 public:
  virtual ~NetemExecutor() = default;
  /// Runs `script` with /bin/sh on the node. An Error only when it could not run at all; a
  /// failing script is a non-zero exit_code. Called concurrently for different nodes.
  virtual Expected<util::ExecResult> run(const std::string& node_id, const std::string& script,
                                         std::chrono::milliseconds timeout) = 0;
  /// Whether tc needs `sudo -n` on this node (the login user is not root).
  virtual bool needs_sudo(const std::string& node_id) const = 0;
  /// True when nothing really runs (dry run): interface discovery and measurement are skipped.
  virtual bool dry_run() const { return false; }
  /// "cloud0 (cloud0_alice@192.168.100.3)", for messages.
  virtual std::string describe(const std::string& node_id) const = 0;
};

/// SSH into every node of a Deployment (one Remote per node, opened on first use).
class SshNetemExecutor : public NetemExecutor {
 public:
  explicit SshNetemExecutor(const Deployment& d,
                            std::chrono::milliseconds connect_timeout = std::chrono::seconds(30));
  ~SshNetemExecutor() override;
  Expected<util::ExecResult> run(const std::string& node_id, const std::string& script,
                                 std::chrono::milliseconds timeout) override;
  bool needs_sudo(const std::string& node_id) const override;
  std::string describe(const std::string& node_id) const override;

 private:
  struct Session {
    std::mutex mu;
    util::RemotePtr remote;
  };
  const Deployment& d_;
  std::chrono::milliseconds connect_timeout_;
  std::map<std::string, std::unique_ptr<Session>> sessions_;  // filled in the constructor
};

/// Runs the script as root inside a network namespace per node (`ip netns exec NS sh -c ...`).
class NetnsNetemExecutor : public NetemExecutor {
 public:
  /// node id -> namespace name.
  explicit NetnsNetemExecutor(std::map<std::string, std::string> netns)
      : netns_(std::move(netns)) {}
  Expected<util::ExecResult> run(const std::string& node_id, const std::string& script,
                                 std::chrono::milliseconds timeout) override;
  bool needs_sudo(const std::string&) const override { return false; }
  std::string describe(const std::string& node_id) const override;

 private:
  std::map<std::string, std::string> netns_;
};

/// Records the scripts instead of running them.
class DryRunNetemExecutor : public NetemExecutor {
 public:
  Expected<util::ExecResult> run(const std::string& node_id, const std::string& script,
                                 std::chrono::milliseconds timeout) override;
  bool needs_sudo(const std::string&) const override { return false; }
  bool dry_run() const override { return true; }
  std::string describe(const std::string& node_id) const override { return node_id; }
  /// node id -> scripts, in the order they were run.
  std::map<std::string, std::vector<std::string>> scripts() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::vector<std::string>> scripts_;
};

/// Parsed `ping -q` summary (iputils and busybox formats).
struct PingStats {
  int transmitted = 0;
  int received = 0;
  double loss_pct = 0;
  std::optional<double> min_ms, avg_ms, max_ms, mdev_ms;  ///< absent when nothing came back
  std::vector<double> samples_ms;                         ///< per-reply "time=" values, in order
  /// Median of the samples (avg when there are none): what the verification compares, since
  /// a loaded emulation host (TCG) adds rare large outliers that move the mean, not the median.
  std::optional<double> rtt_ms() const;
};
/// Parses ping's output (per-reply lines and the summary); an Error when there is no
/// "packets transmitted" line.
Expected<PingStats> parse_ping(const std::string& output);

/// The shell command that pings `ip` `count` times, `interval_ms` apart, from a guest (iputils'
/// ping, busybox's where there is none): exactly `count` requests, so the loss it reports is
/// the share of those that got no reply.
std::string ping_command(const std::string& ip, int count, int interval_ms);

/// The interface carrying `ip` in the output of `ip -o -4 addr show`; "" when none does.
std::string interface_for_ip(const std::string& ip_addr_output, const std::string& ip);

/// One measured (or configured-only) link of the RTT matrix.
struct LinkResult {
  std::string from, to;  ///< node ids
  std::string from_ip, to_ip;
  double configured_rtt_ms = 0;     ///< sum of the delays both ends apply
  double configured_jitter_ms = 0;  ///< sqrt of the sum of both ends' jitter squared
  double configured_loss_pct = 0;   ///< round trip: 1 - (1 - a)(1 - b)
  /// Median RTT of the same pair before any qdisc was installed (the path's own latency: a
  /// fraction of a millisecond on KVM, a few milliseconds under TCG); absent when not measured.
  std::optional<double> baseline_rtt_ms;
  /// Loss of the baseline pings: what the bare path drops, which the expected loss includes.
  std::optional<double> baseline_loss_pct;
  PingStats measured;
  /// Round-trip loss the measurement should show (configured combined with the baseline's), and
  /// the range of measured loss a binomial draw of this many pings accepts (loss_range).
  double expected_loss_pct = 0;
  double loss_lo_pct = 0, loss_hi_pct = 0;
  /// Throughput of this direction from the netperf matrix (netperf = True), else absent.
  std::optional<double> configured_mbit, baseline_mbit, measured_mbit;
  std::string throughput_status;
  /// The RTT the link should show: configured + baseline (configured alone without baseline).
  double expected_rtt_ms() const { return configured_rtt_ms + baseline_rtt_ms.value_or(0); }
  double deviation_ms = 0;   ///< measured.rtt_ms() - expected_rtt_ms()
  double deviation_pct = 0;  ///< relative to configured (0 when configured is 0)
  std::string status;        ///< ok | warning | error | unreachable | skipped
  std::string message;       ///< why, naming the link, when status is not ok
};

/// Tolerance of the verification: max(2 ms, 20 % of the configured RTT).
double rtt_tolerance_ms(double configured_rtt_ms);

/// Lost pings out of `n` that are consistent with an expected loss of `expected_pct` (binomial,
/// 0.5 % in each tail; the expectation is taken as at least 0.1 % because hosts drop the odd
/// packet): lo..hi inclusive. 40 pings on a lossless link accept 0-1 lost, 100 pings 0-1; 40
/// pings at 10 % accept 0-10.
struct LossRange {
  int lo = 0, hi = 0;
};
LossRange loss_range(int n, double expected_pct);

/// Judges a measured link: the median RTT against configured + baseline within rtt_tolerance_ms,
/// and the lost pings against loss_range. status ok | warning | unreachable; message names the
/// link and every reason.
void judge_link(LinkResult& r);

struct NodeApplied {
  std::string node_id;
  std::string interface;
  std::vector<std::string> commands;  ///< rendered, as run
  double seconds = 0;
};

struct NetworkReport {
  std::vector<NodeApplied> nodes;
  std::vector<LinkResult> links;      ///< empty without verification
  std::vector<std::string> warnings;  ///< one per link out of tolerance (names it)
  /// Measurements asked for that could not be made (a link's pings or a pair's netperf failed):
  /// the caller fails the run on these after reporting, since a check that measured nothing is
  /// not a passed check.
  std::vector<std::string> failures;
  std::filesystem::path csv;  ///< <run>/infrastructure/network.csv ("" when not written)
  /// netperf = True: the matrix (netperf_pairs order) and <run>/infrastructure/netperf.csv.
  std::vector<NetperfResult> netperf;
  std::filesystem::path netperf_csv;
};

struct NetemOptions {
  /// Pings per link. The median of n samples of a link with jitter j moves by about 1.25 j /
  /// sqrt(n): 40 keeps that under 1 ms for the 4g preset's cloud-endpoint jitter.
  int ping_count = 40;
  int ping_interval_ms = 50;  ///< iputils allows >= 2 ms for unprivileged users
  /// Pings per link before the qdiscs are installed (the baseline); 0 skips the baseline.
  int baseline_count = 20;
  std::chrono::milliseconds command_timeout{std::chrono::seconds(120)};
  /// Overrides Plan::network_verify / network_strict / netperf when set.
  std::optional<bool> verify, strict, netperf;
  /// Seconds per netperf test (overrides Plan::netperf_seconds when set).
  std::optional<int> netperf_seconds;
};

/// The tier representatives and pairs that the RTT matrix measures: for every tier link, the
/// first node of each side (two first nodes for a same-tier link), plus every [link A B] pair.
std::vector<std::pair<std::string, std::string>> measured_pairs(const plan::Plan& plan);

/// The configured-vs-measured table, as printed.
std::string format_table(const std::vector<LinkResult>& links);
/// The same as CSV, header included.
std::string format_csv(const std::vector<LinkResult>& links);

/// Applies netem on every node concurrently and, unless disabled, measures the RTT matrix, writes
/// <run>/infrastructure/network.csv atomically and lists each link out of tolerance in
/// NetworkReport::warnings (an Error instead with network_strict). The caller prints
/// format_table(report.links) and the warnings (the table is also logged at debug level). A failure
/// to apply names the node, the command and its stderr. `events` (optional) gets phase "network"
/// start/end and per node/link events.
Expected<NetworkReport> apply_and_verify(const plan::Plan& plan, NetemExecutor& exec,
                                         const std::filesystem::path& run_dir,
                                         record::EventLog* events, const NetemOptions& opt = {});
/// The same over SSH into the deployed VMs (from the deployment's netns).
Expected<NetworkReport> apply_and_verify(const plan::Plan& plan, const Deployment& deployment,
                                         const std::filesystem::path& run_dir,
                                         record::EventLog* events, const NetemOptions& opt = {});

}  // namespace continuum::infra

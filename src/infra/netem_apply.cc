// Applying the generated tc commands (through a NetemExecutor) and verifying them with an RTT
// matrix between tier representatives (docs/network.md).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "continuum/infra/netem.h"
#include "continuum/util/files.h"
#include "continuum/util/interrupt.h"
#include "continuum/util/parallel.h"
#include "continuum/util/process.h"
#include "continuum/util/strings.h"
#include "continuum/util/table.h"

namespace continuum::infra {

// ---------------------------------------------------------------------------------------------
// Executors

SshNetemExecutor::SshNetemExecutor(const Deployment& d, std::chrono::milliseconds connect_timeout)
    : d_(d), connect_timeout_(connect_timeout) {
  for (const auto& n : d_.nodes) sessions_.emplace(n.id, std::make_unique<Session>());
}

SshNetemExecutor::~SshNetemExecutor() = default;

Expected<util::ExecResult> SshNetemExecutor::run(const std::string& node_id,
                                                 const std::string& script,
                                                 std::chrono::milliseconds timeout) {
  const DeployedNode* n = d_.find(node_id);
  auto it = sessions_.find(node_id);
  if (!n || it == sessions_.end())
    return make_error("node " + node_id + " is not in the deployment");
  std::lock_guard<std::mutex> lock(it->second->mu);
  if (!it->second->remote) {
    // Ctrl-C stops a connect or a ping run at once.
    it->second->remote = TRY(d_.connect(*n, connect_timeout_, util::interrupt_flag()));
  }
  return it->second->remote->exec(script, timeout);
}

bool SshNetemExecutor::needs_sudo(const std::string& node_id) const {
  const DeployedNode* n = d_.find(node_id);
  return !n || n->ssh_user != "root";
}

std::string SshNetemExecutor::describe(const std::string& node_id) const {
  const DeployedNode* n = d_.find(node_id);
  if (!n) return node_id;
  return node_id + " (" + n->ssh_user + "@" + n->ip + ")";
}

Expected<util::ExecResult> NetnsNetemExecutor::run(const std::string& node_id,
                                                   const std::string& script,
                                                   std::chrono::milliseconds timeout) {
  auto it = netns_.find(node_id);
  if (it == netns_.end()) return make_error("node " + node_id + " has no network namespace");
  util::ProcessSpec spec;
  spec.argv = {"ip", "netns", "exec", it->second, "sh", "-c", script};
  spec.timeout = timeout;
  spec.cancel = util::interrupt_flag();
  auto start = std::chrono::steady_clock::now();
  util::ProcessResult r = TRY(util::run_process(spec));
  util::ExecResult e;
  e.exit_code = r.exit_code;
  e.timed_out = r.timed_out;
  e.cancelled = r.cancelled;
  e.out = std::move(r.out);
  e.err = std::move(r.err);
  e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return e;
}

std::string NetnsNetemExecutor::describe(const std::string& node_id) const {
  auto it = netns_.find(node_id);
  return it == netns_.end() ? node_id : node_id + " (netns " + it->second + ")";
}

Expected<util::ExecResult> DryRunNetemExecutor::run(const std::string& node_id,
                                                    const std::string& script,
                                                    std::chrono::milliseconds) {
  std::lock_guard<std::mutex> lock(mu_);
  scripts_[node_id].push_back(script);
  util::ExecResult r;
  r.exit_code = 0;
  return r;
}

std::map<std::string, std::vector<std::string>> DryRunNetemExecutor::scripts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return scripts_;
}

// ---------------------------------------------------------------------------------------------
// Parsing

std::optional<double> PingStats::rtt_ms() const {
  if (samples_ms.empty()) return avg_ms;
  std::vector<double> v = samples_ms;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

Expected<PingStats> parse_ping(const std::string& output) {
  // iputils: "10 packets transmitted, 9 received, +1 errors, 10% packet loss, time 1811ms"
  //          "rtt min/avg/max/mdev = 90.1/91.2/99.3/2.4 ms"
  // busybox: "10 packets transmitted, 10 packets received, 0% packet loss"
  //          "round-trip min/avg/max = 0.1/0.2/0.3 ms"
  static const std::regex counts(R"((\d+) packets transmitted, (\d+) (?:packets )?received)");
  static const std::regex loss(R"(([0-9.]+)% packet loss)");
  static const std::regex rtt(
      R"(min/avg/max(?:/mdev)? = ([0-9.]+)/([0-9.]+)/([0-9.]+)(?:/([0-9.]+))? ms)");
  PingStats s;
  std::smatch m;
  if (!std::regex_search(output, m, counts))
    return make_error("ping printed no summary (\"packets transmitted\"): " +
                      std::string(util::trim(output.substr(0, 300))));
  s.transmitted = std::stoi(m[1].str());
  s.received = std::stoi(m[2].str());
  if (std::regex_search(output, m, loss))
    s.loss_pct = std::stod(m[1].str());
  else if (s.transmitted > 0)
    s.loss_pct = 100.0 * (s.transmitted - s.received) / s.transmitted;
  static const std::regex reply(R"(bytes from .* time[=<]([0-9.]+) ms)");
  for (auto it = std::sregex_iterator(output.begin(), output.end(), reply);
       it != std::sregex_iterator(); ++it)
    s.samples_ms.push_back(std::stod((*it)[1].str()));
  if (std::regex_search(output, m, rtt)) {
    s.min_ms = std::stod(m[1].str());
    s.avg_ms = std::stod(m[2].str());
    s.max_ms = std::stod(m[3].str());
    if (m[4].matched) s.mdev_ms = std::stod(m[4].str());
  }
  return s;
}

std::string interface_for_ip(const std::string& out, const std::string& ip) {
  // "2: ens2    inet 192.168.100.2/16 brd 192.168.255.255 scope global ens2\       valid_lft ..."
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream w(line);
    std::string idx, name, family, addr;
    if (!(w >> idx >> name >> family >> addr) || family != "inet") continue;
    if (addr.substr(0, addr.find('/')) != ip) continue;
    if (auto at = name.find('@'); at != std::string::npos) name.resize(at);  // veth0@if5
    return name;
  }
  return "";
}

// ---------------------------------------------------------------------------------------------
// Verification

double rtt_tolerance_ms(double configured) { return std::max(2.0, 0.2 * configured); }

std::vector<std::pair<std::string, std::string>> measured_pairs(const plan::Plan& p) {
  std::vector<std::pair<std::string, std::string>> out;
  auto add = [&](const std::string& a, const std::string& b) {
    for (const auto& [x, y] : out)
      if ((x == a && y == b) || (x == b && y == a)) return;
    out.emplace_back(a, b);
  };
  auto first = [&](const std::string& tier, int skip) -> const plan::Node* {
    for (const auto& n : p.nodes)
      if (tier == config::tier_name(n.tier) && skip-- == 0) return &n;
    return nullptr;
  };
  for (const auto& l : p.tier_links) {
    const plan::Node* a = first(l.a, 0);
    const plan::Node* b = first(l.b, l.a == l.b ? 1 : 0);
    if (a && b) add(a->id, b->id);
  }
  for (const auto& l : p.pair_links) add(l.a, l.b);
  return out;
}

namespace {

std::string num(const std::optional<double>& v, int decimals = 3) {
  return v ? fmt::format("{:.{}f}", *v, decimals) : std::string();
}

LinkResult configured(const plan::Plan& p, const std::map<std::string, NodeNetem>& nn,
                      const std::string& from, const std::string& to) {
  LinkResult r;
  r.from = from;
  r.to = to;
  const plan::Node* a = p.find(from);
  const plan::Node* b = p.find(to);
  r.from_ip = a ? a->ip : "";
  r.to_ip = b ? b->ip : "";
  // Expected values come from the classes each end really got, so both-ends delay,
  // latency_is_rtt and pair overrides are accounted for in one place.
  const NetemClass* ca = nn.count(from) ? nn.at(from).class_for(to) : nullptr;
  const NetemClass* cb = nn.count(to) ? nn.at(to).class_for(from) : nullptr;
  double da = ca ? ca->delay_ms : 0, db = cb ? cb->delay_ms : 0;
  double ja = ca && ca->delay_ms > 0 ? ca->jitter_ms : 0,
         jb = cb && cb->delay_ms > 0 ? cb->jitter_ms : 0;
  double la = ca ? ca->loss_pct : 0, lb = cb ? cb->loss_pct : 0;
  r.configured_rtt_ms = da + db;
  r.configured_jitter_ms = std::sqrt(ja * ja + jb * jb);
  r.configured_loss_pct = 100.0 * (1 - (1 - la / 100) * (1 - lb / 100));
  return r;
}

}  // namespace

LossRange loss_range(int n, double expected_pct) {
  if (n <= 0) return {0, 0};
  // netem's loss is exact, but a host drops a ping now and then even on a bare path: the
  // expectation is never below 0.1 %, so one lost ping in 40 is no alarm, two are.
  double p = std::clamp(expected_pct / 100, 0.001, 1.0);
  if (p >= 1) return {n, n};
  constexpr double kTail = 0.005;  // each side: a 1 % two-sided test
  std::vector<double> pmf(n + 1);
  pmf[0] = std::pow(1 - p, n);
  for (int k = 0; k < n; ++k) pmf[k + 1] = pmf[k] * (n - k) / (k + 1) * p / (1 - p);
  LossRange r{0, n};
  double below = 0;  // P(X < lo)
  while (r.lo < n && below + pmf[r.lo] <= kTail) below += pmf[r.lo++];
  double above = 0;  // P(X > hi)
  while (r.hi > 0 && above + pmf[r.hi] <= kTail) above += pmf[r.hi--];
  return r;
}

void judge_link(LinkResult& r) {
  std::string name = r.from + " -> " + r.to;
  std::optional<double> measured = r.measured.rtt_ms();
  if (!measured) {
    if (r.configured_loss_pct >= 100) {
      r.status = "ok";
      return;
    }
    r.status = "unreachable";
    r.message = "link " + name + ": no ping reply (" + std::to_string(r.measured.transmitted) +
                " sent), configured RTT " + fmt::format("{:.1f}", r.configured_rtt_ms) + " ms";
    return;
  }
  r.deviation_ms = *measured - r.expected_rtt_ms();
  r.deviation_pct = r.configured_rtt_ms > 0 ? 100.0 * r.deviation_ms / r.configured_rtt_ms : 0;
  double tol = rtt_tolerance_ms(r.configured_rtt_ms);
  std::vector<std::string> why;
  if (std::fabs(r.deviation_ms) > tol)
    why.push_back(fmt::format(
        "measured RTT {:.2f} ms vs configured {:.2f} ms{} ({:+.2f} ms, {:+.1f} %; tolerance "
        "{:.2f} ms)",
        *measured, r.configured_rtt_ms,
        r.baseline_rtt_ms ? fmt::format(" + baseline {:.2f} ms", *r.baseline_rtt_ms)
                          : std::string(),
        r.deviation_ms, r.deviation_pct, tol));
  // Loss: the pings lost must be what a binomial draw at the expected rate gives (the
  // configured round-trip loss combined with what the bare path lost), so 2 % lost on a link
  // configured lossless is flagged however the RTT looks.
  const int n = r.measured.transmitted;
  const int lost = n - r.measured.received;
  const double base = r.baseline_loss_pct.value_or(0) / 100;
  r.expected_loss_pct = 100.0 * (1 - (1 - r.configured_loss_pct / 100) * (1 - base));
  const LossRange range = loss_range(n, r.expected_loss_pct);
  r.loss_lo_pct = n > 0 ? 100.0 * range.lo / n : 0;
  r.loss_hi_pct = n > 0 ? 100.0 * range.hi / n : 0;
  if (n > 0 && (lost < range.lo || lost > range.hi))
    why.push_back(fmt::format(
        "{} of {} pings lost ({:.1f} %) vs configured {:.2f} %{} (accepted {}-{} lost at this "
        "ping count)",
        lost, n, 100.0 * lost / n, r.configured_loss_pct,
        base > 0 ? fmt::format(" and {:.1f} % on the bare path", 100 * base) : std::string(),
        range.lo, range.hi));
  if (why.empty()) {
    r.status = "ok";
    return;
  }
  r.status = "warning";
  r.message = "link " + name + ": " + util::join(why, "; ");
}

std::string ping_command(const std::string& ip, int count, int interval_ms) {
  std::string c = std::to_string(count);
  std::string interval = fmt::format("{:.3f}", interval_ms / 1000.0);
  // iputils ping without -w: with a deadline, iputils keeps sending past -c until it has -c
  // replies, so every reply still in flight when the last one lands counts as lost (42 sent, 40
  // received: "4.8 % loss" on a lossless link whose RTT rose above the 50 ms interval at the end,
  // as an endpoint capped at half a core does under TCG). Without it, ping sends exactly -c and
  // then waits twice the largest RTT seen for the stragglers. busybox's ping (the minimal image)
  // stops sending at -c; its -w only bounds the run.
  std::string deadline = std::to_string(count * interval_ms / 1000 + 10);
  return "if command -v ping >/dev/null 2>&1; then " +
         util::shell_join({"ping", "-n", "-c", c, "-i", interval, ip}) + "; else " +
         util::shell_join({"busybox", "ping", "-c", c, "-w", deadline, ip}) + "; fi";
}

namespace {

std::string one_line(std::string s) {
  s = std::string(util::trim(s));
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s.size() > 500 ? s.substr(0, 500) + "..." : s;
}

}  // namespace

std::string format_table(const std::vector<LinkResult>& links) {
  std::vector<std::vector<std::string>> rows;
  bool throughput = false;
  for (const auto& l : links) throughput |= l.measured_mbit.has_value();
  rows.push_back({"link", "configured RTT", "baseline", "measured RTT (median)", "avg", "min/max",
                  "jitter (cfg/meas)", "loss (cfg/meas)", "deviation", "status"});
  if (throughput)
    for (const char* h : {"rate (cfg/bare/meas, Mbit/s)", "throughput"}) rows[0].push_back(h);
  for (const auto& l : links) {
    const auto& m = l.measured;
    rows.push_back({
        l.from + " -> " + l.to,
        fmt::format("{:.1f} ms", l.configured_rtt_ms),
        l.baseline_rtt_ms ? fmt::format("{:.2f} ms", *l.baseline_rtt_ms) : "-",
        m.rtt_ms() ? fmt::format("{:.2f} ms", *m.rtt_ms()) : "-",
        m.avg_ms ? fmt::format("{:.2f}", *m.avg_ms) : "-",
        m.min_ms ? fmt::format("{:.1f}/{:.1f}", *m.min_ms, *m.max_ms) : "-",
        fmt::format("{:.1f}/{}", l.configured_jitter_ms,
                    m.mdev_ms ? fmt::format("{:.1f}", *m.mdev_ms) : "-"),
        fmt::format("{}/{:.1f} %", util::format_number(l.configured_loss_pct), m.loss_pct),
        m.rtt_ms() ? fmt::format("{:+.2f} ms", l.deviation_ms) : "-",
        l.status,
    });
    if (throughput) {
      auto v = [](const std::optional<double>& x) {
        return util::format_fixed(x.value_or(std::nan("")), 1, "-");
      };
      rows.back().push_back(v(l.configured_mbit) + "/" + v(l.baseline_mbit) + "/" +
                            v(l.measured_mbit));
      rows.back().push_back(l.throughput_status.empty() ? "-" : l.throughput_status);
    }
  }
  return util::align_columns(rows);
}

std::string format_csv(const std::vector<LinkResult>& links) {
  std::string s =
      "from,to,from_ip,to_ip,configured_rtt_ms,configured_jitter_ms,configured_loss_pct,"
      "baseline_rtt_ms,expected_rtt_ms,measured_rtt_ms,measured_avg_ms,measured_min_ms,measured_"
      "max_ms,jitter_ms,loss_pct,"
      "deviation_ms,deviation_pct,status,expected_loss_pct,loss_accepted_low_pct,"
      "loss_accepted_high_pct,baseline_loss_pct,configured_mbit,baseline_mbit,measured_mbit,"
      "throughput_status\n";
  for (const auto& l : links) {
    const auto& m = l.measured;
    bool have = m.rtt_ms().has_value();
    s += fmt::format("{},{},{},{},{:.3f},{:.3f},{:.3f},{},{:.3f},{},{},{},{},{},{:.3f},{},{},{}\n",
                     l.from, l.to, l.from_ip, l.to_ip, l.configured_rtt_ms, l.configured_jitter_ms,
                     l.configured_loss_pct, num(l.baseline_rtt_ms), l.expected_rtt_ms(),
                     num(m.rtt_ms()), num(m.avg_ms), num(m.min_ms), num(m.max_ms), num(m.mdev_ms),
                     m.loss_pct, have ? fmt::format("{:.3f}", l.deviation_ms) : "",
                     have ? fmt::format("{:.2f}", l.deviation_pct) : "", l.status);
    s.pop_back();  // the newline: the loss and throughput columns follow
    s += fmt::format(",{:.3f},{:.3f},{:.3f},{},{},{},{},{}\n", l.expected_loss_pct, l.loss_lo_pct,
                     l.loss_hi_pct, num(l.baseline_loss_pct), num(l.configured_mbit),
                     num(l.baseline_mbit), num(l.measured_mbit), l.throughput_status);
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Apply and verify

namespace {

// What the steps of one apply_and_verify share. Each node's thread writes only its own entry of
// `errors` and `rep.nodes`.
struct ApplyRun {
  ApplyRun(const plan::Plan& p, NetemExecutor& exec, const std::filesystem::path& run_dir,
           record::EventLog* events, const NetemOptions& opt, NetworkReport& rep)
      : p(p), exec(exec), run_dir(run_dir), events(events), opt(opt), rep(rep) {}

  const plan::Plan& p;
  NetemExecutor& exec;
  const std::filesystem::path& run_dir;
  record::EventLog* events;
  const NetemOptions& opt;
  NetworkReport& rep;
  std::map<std::string, NodeNetem> nn;
  std::vector<std::optional<Error>> errors;
  bool measure = false;
  bool netperf = false;
  int netperf_seconds = 10;
};

template <typename Fn>
void for_each_node(ApplyRun& run, Fn&& fn) {
  util::parallel_for(run.p.nodes.size(), util::kAllAtOnce, [&](size_t i) {
    if (!run.nn.at(run.p.nodes[i].id).classes.empty() && !run.errors[i] &&
        !util::interrupt_requested())
      fn(i);
  });
}

Status failures(const ApplyRun& run) {
  std::vector<std::string> f;
  for (const auto& e : run.errors)
    if (e) f.push_back(e->message);
  if (f.empty()) return {};
  if (run.events) run.events->emit("network", "end", "", -1, "", {{"error", util::join(f, "; ")}});
  return make_error(util::join(f, "\n"));
}

// Ctrl-C: nothing new starts (no further step, node or ping run) and running commands are
// stopped by their executor; the phase ends with exit code 130.
Status interrupted(const ApplyRun& run) {
  if (!util::interrupt_requested()) return {};
  if (run.events) run.events->emit("network", "end", "", -1, "", {{"interrupted", true}});
  return util::check_interrupt();
}

void fail(ApplyRun& run, size_t i, const std::string& msg) {
  run.errors[i] = make_error("netem on " + run.exec.describe(run.p.nodes[i].id) + ": " + msg);
}

void find_interface(ApplyRun& run, size_t i) {
  const plan::Node& n = run.p.nodes[i];
  NetemExecutor& exec = run.exec;
  run.rep.nodes[i].node_id = n.id;
  run.rep.nodes[i].interface = "NIC";
  if (exec.dry_run()) return;
  auto r = exec.run(n.id, "ip -o -4 addr show", run.opt.command_timeout);
  if (!r) return fail(run, i, r.error().message);
  if (r->cancelled) return;
  if (r->exit_code != 0) return fail(run, i, "`ip -o -4 addr show` failed: " + one_line(r->err));
  std::string iface = interface_for_ip(r->out, n.ip);
  if (iface.empty())
    return fail(run, i,
                "no interface carries " + n.ip + " (ip -o -4 addr show: " + one_line(r->out) + ")");
  run.rep.nodes[i].interface = iface;
  if ((run.measure && run.opt.baseline_count > 0) || run.netperf) {
    auto reset =
        exec.run(n.id, reset_script(iface, exec.needs_sudo(n.id)), run.opt.command_timeout);
    if (!reset) return fail(run, i, reset.error().message);
  }
}

// 1. Find the NIC carrying each node's address (rather than the original's hard-coded ens2) and,
// when verifying, remove what an earlier apply left so the baseline sees the bare path.
Status find_interfaces(ApplyRun& run) {
  for_each_node(run, [&](size_t i) { find_interface(run, i); });
  TRY_STATUS(interrupted(run));
  return failures(run);
}

void add_configured_links(ApplyRun& run) {
  auto pairs = measured_pairs(run.p);
  if (run.measure)
    for (const auto& [a, b] : pairs) run.rep.links.push_back(configured(run.p, run.nn, a, b));
}

// RTT matrix: one thread per source node (a Remote serves one thread at a time).
template <typename Store>
void ping_matrix(ApplyRun& run, int pings, Store&& store) {
  // One thread per source node, its links one after the other: two pings from one guest at
  // once would share its vCPU and blur each other.
  std::map<std::string, std::vector<size_t>> by_source_map;
  for (size_t i = 0; i < run.rep.links.size(); ++i)
    by_source_map[run.rep.links[i].from].push_back(i);
  std::vector<std::vector<size_t>> by_source;
  for (auto& [src, idx] : by_source_map) by_source.push_back(std::move(idx));
  const NetemOptions& opt = run.opt;
  util::parallel_for(by_source.size(), util::kAllAtOnce, [&](size_t s) {
    for (size_t i : by_source[s]) {
      if (util::interrupt_requested()) break;
      LinkResult& l = run.rep.links[i];
      auto timeout = std::chrono::milliseconds(pings * opt.ping_interval_ms + 30000);
      auto r = run.exec.run(l.from, ping_command(l.to_ip, pings, opt.ping_interval_ms), timeout);
      if (!r) {
        store(l, Expected<PingStats>(r.error()));
        continue;
      }
      store(l, parse_ping(r->out + "\n" + r->err));
    }
  });
}

// 2. Baseline: the path's own RTT, which the emulated delay adds to: 0.5 ms between namespaces
// in a TCG VM, 1.5-1.7 ms between two TCG guests, more between physical hosts.
Status measure_baseline(ApplyRun& run) {
  if (!run.measure || run.opt.baseline_count <= 0) return {};
  ping_matrix(run, run.opt.baseline_count, [&](LinkResult& l, Expected<PingStats> s) {
    if (s) {
      l.baseline_rtt_ms = s->rtt_ms();
      l.baseline_loss_pct = s->loss_pct;
    } else if (!util::interrupt_requested())
      spdlog::warn("network: no baseline for {} -> {}: {}", l.from, l.to, s.error().message);
  });
  return interrupted(run);
}

std::string tc_failure(const util::ExecResult& r, const std::vector<std::string>& commands) {
  static const std::regex failed(R"(continuum-netem: command (\d+) failed)");
  std::smatch m;
  std::string which = "(the reset before the commands)";
  if (std::regex_search(r.err, m, failed)) {
    size_t k = std::stoul(m[1].str());
    if (k < commands.size()) which = "`" + commands[k] + "`";
  }
  std::string err = std::regex_replace(r.err, failed, "");
  return "command " + which + " failed (exit " + std::to_string(r.exit_code) +
         "): " + one_line(err);
}

void apply_node(ApplyRun& run, size_t i) {
  const plan::Node& n = run.p.nodes[i];
  NodeApplied& out = run.rep.nodes[i];
  auto start = std::chrono::steady_clock::now();
  const std::string iface = out.interface;
  bool sudo = run.exec.needs_sudo(n.id);
  auto cmds = tc_commands(run.p, n, iface, sudo);
  if (!cmds) return fail(run, i, cmds.error().message);
  std::string script = apply_script(iface, *cmds, sudo);
  for (const auto& c : *cmds) out.commands.push_back(util::shell_join(c));
  if (!run.run_dir.empty()) {
    auto st = util::write_file_atomic(run.run_dir / "infrastructure" / "tc" / (n.id + ".sh"),
                                      "#!/bin/sh\n" + script);
    if (!st) return fail(run, i, st.error().message);
  }
  auto r = run.exec.run(n.id, script, run.opt.command_timeout);
  if (!r) return fail(run, i, r.error().message);
  if (r->cancelled) return;
  if (r->timed_out) return fail(run, i, "tc commands timed out");
  if (r->exit_code != 0) return fail(run, i, tc_failure(*r, out.commands));
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (run.events)
    run.events->emit(
        "network", "applied", "", -1, n.id,
        {{"interface", iface}, {"commands", out.commands.size()}, {"seconds", out.seconds}});
}

// 3. Apply on every node concurrently.
Status apply_qdiscs(ApplyRun& run) {
  for_each_node(run, [&](size_t i) { apply_node(run, i); });
  TRY_STATUS(interrupted(run));
  TRY_STATUS(failures(run));
  for (const auto& a : run.rep.nodes)
    if (!a.commands.empty())
      spdlog::info("netem: {} on {}: {} tc commands", a.node_id, a.interface, a.commands.size());
  return {};
}

// 4. Measure with the qdiscs in place.
Status measure_links(ApplyRun& run) {
  ping_matrix(run, run.opt.ping_count, [&](LinkResult& l, Expected<PingStats> s) {
    if (!s) {
      l.status = "error";
      l.message = "link " + l.from + " -> " + l.to + ": " + s.error().message;
      return;
    }
    l.measured = *s;
    judge_link(l);
  });
  return interrupted(run);
}

// netperf: every step runs one test at a time over the whole matrix. Two streams at once would
// share the host's cores (and a TCG guest's vCPU) and measure each other, not the links.

std::string netperf_log(const NetperfPair& pr, const std::string& test) {
  return pr.from + "_to_" + pr.to + "_" + test + ".txt";
}

// Runs one netperf test on `pr.from`; keeps its raw output (the original's only record) under
// infrastructure/netperf/. An Error names the pair and quotes the tool.
Expected<std::string> netperf_run(ApplyRun& run, const NetperfPair& pr, const std::string& test,
                                  const std::vector<std::string>& argv) {
  auto timeout = std::chrono::seconds(run.netperf_seconds + 60);
  auto r = run.exec.run(pr.from, util::shell_join(argv) + " 2>&1", timeout);
  if (!r) return make_error("netperf " + pr.from + " -> " + pr.to + ": " + r.error().message);
  if (!run.run_dir.empty())
    (void)util::write_file_atomic(
        run.run_dir / "infrastructure" / "netperf" / netperf_log(pr, test),
        "$ " + util::shell_join(argv) + "\n" + r->out + r->err);
  if (r->cancelled) return make_error("netperf interrupted");
  if (r->timed_out)
    return make_error("netperf " + pr.from + " -> " + pr.to + " " + test + ": timed out");
  return r->out + r->err;
}

// netserver on every node that is a target, then the bare path's throughput per pair (before
// any qdisc), which the shaped throughput is judged against.
Status netperf_prepare(ApplyRun& run) {
  if (!run.netperf) return {};
  auto pairs = netperf_pairs(run.p);
  std::set<std::string> targets;
  for (const auto& pr : pairs) targets.insert(pr.to);
  std::vector<std::string> ids(targets.begin(), targets.end());
  std::vector<std::optional<Error>> errs(ids.size());
  util::parallel_for(ids.size(), util::kAllAtOnce, [&](size_t i) {
    auto r = run.exec.run(ids[i], netserver_script(), run.opt.command_timeout);
    if (!r)
      errs[i] = r.error();
    else if (r->exit_code != 0 && !r->cancelled)
      errs[i] = make_error("netserver on " + run.exec.describe(ids[i]) + ": exit " +
                           std::to_string(r->exit_code) + ": " + one_line(r->err + r->out));
  });
  TRY_STATUS(interrupted(run));
  for (auto& e : errs)
    if (e) return make_error("netperf = True: " + e->message);
  for (const auto& pr : pairs) {
    NetperfResult res;
    res.pair = pr;
    res.shaped = run.p.network_emulation;
    if (res.shaped) {
      const NetemClass* c = run.nn.at(pr.from).class_for(pr.to);
      res.configured_mbit = c ? c->rate_mbit : kDefaultClassRateMbit;
      LinkResult l = configured(run.p, run.nn, pr.from, pr.to);
      res.configured_rtt_ms = l.configured_rtt_ms;
      res.configured_loss_pct = l.configured_loss_pct;
    }
    run.rep.netperf.push_back(res);
  }
  if (!run.p.network_emulation) return {};
  for (auto& res : run.rep.netperf) {
    if (util::interrupt_requested()) break;
    auto out = netperf_run(run, res.pair, "bare_TCP_STREAM",
                           tcp_stream_command(res.pair.to_ip, run.netperf_seconds));
    auto st = out ? parse_tcp_stream(*out) : Expected<StreamResult>(out.error());
    if (st)
      res.baseline_mbit = st->mbit_per_s;
    else
      spdlog::warn("netperf: no bare-path throughput for {} -> {}: {}", res.pair.from, res.pair.to,
                   st.error().message);
  }
  return interrupted(run);
}

// TCP_STREAM of one pair with the sender's class rate lifted to kUnlimitedMbit (delay, jitter and
// loss stay) into res.unlimited_mbit, then the configured rate put back. A failed measurement is
// one more error of the pair (`errs`); a rate that cannot be put back is the Error returned, since
// the rest of the run would go over a link without its limit.
constexpr double kUnlimitedMbit = 100000;
Status netperf_unlimited(ApplyRun& run, NetperfResult& res, std::vector<std::string>& errs) {
  const auto& pr = res.pair;
  const NetemClass* c = run.nn.at(pr.from).class_for(pr.to);
  size_t i = 0;
  while (i < run.p.nodes.size() && run.p.nodes[i].id != pr.from) ++i;
  if (c == nullptr || i == run.p.nodes.size()) return {};  // default class: nothing to lift
  const std::string& dev = run.rep.nodes[i].interface;
  const bool sudo = run.exec.needs_sudo(pr.from);
  auto set_rate = [&](double mbit) -> Status {
    auto r =
        run.exec.run(pr.from, util::shell_join(tc_class_rate_command(dev, c->number, mbit, sudo)),
                     run.opt.command_timeout);
    if (!r) return r.error();
    if (r->exit_code != 0)
      return make_error("tc class change on " + pr.from + ": exit " + std::to_string(r->exit_code) +
                        ": " + one_line(r->err + r->out));
    return {};
  };
  if (Status up = set_rate(kUnlimitedMbit); !up.ok()) {
    errs.push_back("lifting the rate: " + up.error().message);
    return {};
  }
  auto out = netperf_run(run, pr, "unlimited_TCP_STREAM",
                         tcp_stream_command(pr.to_ip, run.netperf_seconds));
  if (Status back = set_rate(c->rate_mbit); !back.ok())
    return make_error("netperf: the configured rate of " + pr.from + " -> " + pr.to +
                      " could not be put back: " + back.error().message);
  auto st = out ? parse_tcp_stream(*out) : Expected<StreamResult>(out.error());
  if (st)
    res.unlimited_mbit = st->mbit_per_s;
  else
    errs.push_back("without the rate limit: " + st.error().message);
  return {};
}

// The matrix with the qdiscs in place: TCP_RR then TCP_STREAM per pair, judged.
Status netperf_measure(ApplyRun& run) {
  if (!run.netperf) return {};
  if (run.events)
    run.events->emit("netperf", "start", "", -1, "",
                     {{"pairs", run.rep.netperf.size()}, {"seconds", run.netperf_seconds}});
  for (auto& res : run.rep.netperf) {
    if (util::interrupt_requested()) break;
    const auto& pr = res.pair;
    std::vector<std::string> errs;
    auto rr_out = netperf_run(run, pr, "TCP_RR", tcp_rr_command(pr.to_ip, run.netperf_seconds));
    auto rr = rr_out ? parse_tcp_rr(*rr_out) : Expected<RrResult>(rr_out.error());
    if (rr)
      res.rr = *rr;
    else
      errs.push_back(rr.error().message);
    auto st_out =
        netperf_run(run, pr, "TCP_STREAM", tcp_stream_command(pr.to_ip, run.netperf_seconds));
    auto st = st_out ? parse_tcp_stream(*st_out) : Expected<StreamResult>(st_out.error());
    if (st)
      res.stream = *st;
    else
      errs.push_back(st.error().message);
    if (st && res.shaped &&
        st->mbit_per_s < res.configured_mbit * kPayloadFraction * kThroughputLow) {
      // Short of the rate: is it the platform (netem's timers in a TCG guest) or the shaping?
      TRY_STATUS(netperf_unlimited(run, res, errs));
    }
    judge_throughput(res);
    if (!errs.empty()) {
      res.status = "error";
      res.message = "pair " + pr.from + " -> " + pr.to + ": " + util::join(errs, "; ");
    }
    if (run.events) {
      nlohmann::json f = {{"to", pr.to}, {"status", res.status}};
      if (res.stream) f["stream_mbit"] = res.stream->mbit_per_s;
      if (res.baseline_mbit) f["baseline_mbit"] = *res.baseline_mbit;
      if (res.unlimited_mbit) f["unlimited_mbit"] = *res.unlimited_mbit;
      if (res.shaped) f["configured_mbit"] = res.configured_mbit;
      if (res.rr) f["rr_mean_us"] = res.rr->mean_us;
      run.events->emit("netperf", "measured", "", -1, pr.from, f);
    }
  }
  TRY_STATUS(interrupted(run));
  // network.csv's links get the throughput of their direction.
  for (auto& l : run.rep.links)
    for (const auto& res : run.rep.netperf)
      if (res.pair.from == l.from && res.pair.to == l.to) {
        if (res.shaped) l.configured_mbit = res.configured_mbit;
        l.baseline_mbit = res.baseline_mbit;
        if (res.stream) l.measured_mbit = res.stream->mbit_per_s;
        l.throughput_status = res.status;
      }
  // platform-limited and loss-limited are what the platform and TCP can do, not a fault: said
  // in the table and the log, not raised as warnings (which network_strict turns into errors).
  for (const auto& res : run.rep.netperf) {
    if (res.status == "error")
      run.rep.failures.push_back("netperf: " + res.message);
    else if (res.status == "warning")
      run.rep.warnings.push_back("netperf: " + res.message);
    else if (!res.message.empty())
      spdlog::info("netperf: {}", res.message);
  }
  if (!run.run_dir.empty()) {
    run.rep.netperf_csv = run.run_dir / "infrastructure" / "netperf.csv";
    TRY_STATUS(util::write_file_atomic(run.rep.netperf_csv, format_netperf_csv(run.rep.netperf)));
  }
  if (run.events) run.events->emit("netperf", "end");
  return {};
}

Status report_links(ApplyRun& run) {
  NetworkReport& rep = run.rep;
  for (const auto& l : rep.links) {
    if (run.events)
      run.events->emit("network", "measured", "", -1, l.from,
                       {{"to", l.to},
                        {"configured_rtt_ms", l.configured_rtt_ms},
                        {"baseline_rtt_ms", l.baseline_rtt_ms ? *l.baseline_rtt_ms : -1.0},
                        {"measured_rtt_ms", l.measured.rtt_ms() ? *l.measured.rtt_ms() : -1.0},
                        {"loss_pct", l.measured.loss_pct},
                        {"status", l.status}});
    if (l.status == "error")
      rep.failures.push_back(l.message);
    else if (l.status != "ok")
      rep.warnings.push_back(l.message);
  }
  if (run.measure)
    spdlog::debug("network: configured vs measured round-trip times ({} pings per link)\n{}",
                  run.opt.ping_count, format_table(rep.links));
  if (run.measure && !run.run_dir.empty()) {
    rep.csv = run.run_dir / "infrastructure" / "network.csv";
    TRY_STATUS(util::write_file_atomic(rep.csv, format_csv(rep.links)));
  }
  if (run.events)
    run.events->emit("network", "end", "", -1, "", {{"warnings", rep.warnings.size()}});
  return {};
}

}  // namespace

Expected<NetworkReport> apply_and_verify(const plan::Plan& p, NetemExecutor& exec,
                                         const std::filesystem::path& run_dir,
                                         record::EventLog* events, const NetemOptions& opt) {
  NetworkReport rep;
  const bool netperf = opt.netperf.value_or(p.netperf);
  if (!p.network_emulation && !netperf) return rep;
  bool verify = opt.verify.value_or(p.network_verify);
  bool strict = opt.strict.value_or(p.network_strict);
  if (events) events->emit("network", "start");

  ApplyRun run(p, exec, run_dir, events, opt, rep);
  // Generation first: a bad value stops everything before any guest is touched.
  for (const auto& n : p.nodes) run.nn.emplace(n.id, TRY(node_netem(p, n)));
  run.errors.resize(p.nodes.size());
  rep.nodes.resize(p.nodes.size());
  run.measure = verify && p.network_emulation && !exec.dry_run();
  run.netperf = netperf && !exec.dry_run();
  run.netperf_seconds = opt.netperf_seconds.value_or(p.netperf_seconds);

  TRY_STATUS(find_interfaces(run));
  add_configured_links(run);
  TRY_STATUS(measure_baseline(run));
  TRY_STATUS(netperf_prepare(run));
  TRY_STATUS(apply_qdiscs(run));
  if (!run.measure && !run.netperf) {
    if (events) events->emit("network", "end");
    return rep;
  }
  if (run.measure) TRY_STATUS(measure_links(run));
  TRY_STATUS(netperf_measure(run));
  TRY_STATUS(report_links(run));
  if (rep.warnings.empty()) return rep;
  if (strict) return make_error("network_strict: " + util::join(rep.warnings, "\n"));
  return rep;
}

Expected<NetworkReport> apply_and_verify(const plan::Plan& p, const Deployment& d,
                                         const std::filesystem::path& run_dir,
                                         record::EventLog* events, const NetemOptions& opt) {
  SshNetemExecutor exec(d);
  return apply_and_verify(p, exec, run_dir, events, opt);
}

}  // namespace continuum::infra

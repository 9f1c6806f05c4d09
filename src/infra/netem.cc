// Pure generation of the tc commands per node (docs/original.md §5.2, plus the fixes described in
// docs/network.md): no I/O here, so `continuum plan` and the unit tests see exactly what a guest
// will run.
#include "continuum/infra/netem.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "continuum/util/strings.h"

namespace continuum::infra {
namespace {

using config::Tier;

// Limits: generous for any emulated link, tight enough that a typo (a delay in µs, a rate in
// bit/s) is caught before it reaches a guest.
constexpr double kMaxDelayMs = 60000;
constexpr double kMaxRateMbit = 100000;  // 100 Gbit/s
constexpr int kMaxClasses = 0x998;       // below the default class 1:999

std::string hex(int n) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%x", static_cast<unsigned>(n));
  return buf;
}

bool valid_ipv4(const std::string& s) {
  auto parts = util::split(s, '.');
  if (parts.size() != 4) return false;
  for (const auto& p : parts) {
    if (p.empty() || p.size() > 3) return false;
    for (char c : p)
      if (c < '0' || c > '9') return false;
    if (std::stoi(p) > 255) return false;
  }
  return true;
}

std::string describe_link(const plan::Link& l) { return "link " + l.a + " <-> " + l.b; }

Status check_value(const plan::Link& l, const char* what, double v, double lo, double hi,
                   bool lo_open) {
  bool ok = std::isfinite(v) && (lo_open ? v > lo : v >= lo) && v <= hi;
  if (ok) return {};
  return make_error(describe_link(l) + ": " + what + " = " + util::format_number(v) +
                        " is out of range (" + (lo_open ? "> " : ">= ") + util::format_number(lo) +
                        " and <= " + util::format_number(hi) + ")",
                    ExitCode::usage);
}

Status validate_link(const plan::Link& l) {
  TRY_STATUS(check_value(l, "latency_avg (ms)", l.latency_avg_ms, 0, kMaxDelayMs, false));
  TRY_STATUS(check_value(l, "latency_var (ms)", l.latency_var_ms, 0, kMaxDelayMs, false));
  TRY_STATUS(check_value(l, "throughput (Mbit/s)", l.throughput_mbit, 0, kMaxRateMbit, true));
  TRY_STATUS(check_value(l, "loss (%)", l.loss_pct, 0, 100, false));
  return {};
}

NetemClass make_class(const plan::Plan& p, const plan::Link& l, std::string group) {
  NetemClass c;
  c.group = std::move(group);
  c.rate_mbit = l.throughput_mbit;
  // Both ends delay their egress. latency_is_rtt: each end takes half, and the jitter of a sum
  // of two independent normals is sqrt(2) times each one, so each end gets var / sqrt(2).
  c.delay_ms = p.latency_is_rtt ? l.latency_avg_ms / 2 : l.latency_avg_ms;
  c.jitter_ms = p.latency_is_rtt ? l.latency_var_ms / std::sqrt(2.0) : l.latency_var_ms;
  c.loss_pct = l.loss_pct;
  return c;
}

/// Peer tier groups in upstream order (docs/original.md §5.2); endpoint<->endpoint last (new).
std::vector<Tier> group_order(Tier self) {
  switch (self) {
    case Tier::cloud:
      return {Tier::cloud, Tier::edge, Tier::endpoint};
    case Tier::edge:
      return {Tier::edge, Tier::cloud, Tier::endpoint};
    case Tier::endpoint:
      return {Tier::cloud, Tier::edge, Tier::endpoint};
  }
  return {};
}

bool has_pair(const plan::Plan& p, const std::string& x, const std::string& y) {
  for (const auto& l : p.pair_links)
    if ((l.a == x && l.b == y) || (l.a == y && l.b == x)) return true;
  return false;
}

/// Rounds to microseconds (tc's time resolution) and prints without trailing zeros.
std::string ms(double v) { return util::format_number(std::round(v * 1000) / 1000) + "ms"; }

}  // namespace

const NetemClass* NodeNetem::class_for(const std::string& peer_id) const {
  for (const auto& c : classes)
    for (const auto& id : c.peer_ids)
      if (id == peer_id) return &c;
  return nullptr;
}

Status validate_interface(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 15 && name != "." && name != "..";
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
          c == '@'))
      ok = false;
  if (ok) return {};
  return make_error("network interface name '" + name +
                    "' is not valid (1-15 characters: letters, digits, - _ . @)");
}

Expected<NodeNetem> node_netem(const plan::Plan& p, const plan::Node& node) {
  NodeNetem out;
  out.node_id = node.id;
  if (!p.network_emulation) return out;
  for (const auto& n : p.nodes)
    if (!valid_ipv4(n.ip))
      return make_error("node " + n.id + ": address '" + n.ip + "' is not an IPv4 address",
                        ExitCode::usage);

  for (Tier t : group_order(node.tier)) {
    const plan::Link* l = p.tier_link(node.tier, t);
    if (!l || !l->shaped) continue;
    TRY_STATUS(validate_link(*l));
    NetemClass c = make_class(p, *l, config::tier_name(t));
    for (const auto& peer : p.nodes) {
      if (peer.tier != t || peer.id == node.id || has_pair(p, node.id, peer.id)) continue;
      c.peer_ids.push_back(peer.id);
      c.peer_ips.push_back(peer.ip);
    }
    if (!c.peer_ids.empty()) out.classes.push_back(std::move(c));
  }
  for (const auto& l : p.pair_links) {
    if (!l.shaped || (l.a != node.id && l.b != node.id)) continue;
    const std::string& peer_id = l.a == node.id ? l.b : l.a;
    const plan::Node* peer = p.find(peer_id);
    if (!peer)
      return make_error("[link " + l.a + " " + l.b + "]: no node '" + peer_id + "'",
                        ExitCode::usage);
    TRY_STATUS(validate_link(l));
    NetemClass c = make_class(p, l, "pair:" + peer_id);
    c.peer_ids.push_back(peer->id);
    c.peer_ips.push_back(peer->ip);
    out.classes.push_back(std::move(c));
  }
  if (static_cast<int>(out.classes.size()) > kMaxClasses)
    return make_error("node " + node.id + ": " + std::to_string(out.classes.size()) +
                          " tc classes; at most " + std::to_string(kMaxClasses) + " are supported",
                      ExitCode::usage);
  for (size_t i = 0; i < out.classes.size(); ++i) out.classes[i].number = static_cast<int>(i) + 1;
  return out;
}

Expected<std::vector<Argv>> tc_commands(const plan::Plan& p, const plan::Node& node,
                                        const std::string& interface, bool sudo) {
  NodeNetem nn = TRY(node_netem(p, node));
  std::vector<Argv> out;
  if (nn.classes.empty()) return out;
  TRY_STATUS(validate_interface(interface));
  auto tc = [&](std::initializer_list<std::string> args) {
    Argv a;
    if (sudo) a = {"sudo", "-n"};
    a.push_back("tc");
    a.insert(a.end(), args);
    return a;
  };
  const std::string& dev = interface;
  const std::string def = kDefaultClassMinor;
  out.push_back(tc({"qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", def}));
  out.push_back(tc({"class", "add", "dev", dev, "parent", "1:", "classid", "1:" + def, "htb",
                    "rate", util::format_number(kDefaultClassRateMbit) + "mbit"}));
  for (const auto& c : nn.classes) {
    const std::string id = "1:" + hex(c.number);
    out.push_back(tc({"class", "add", "dev", dev, "parent", "1:", "classid", id, "htb", "rate",
                      util::format_number(c.rate_mbit) + "mbit"}));
    for (const auto& ip : c.peer_ips)
      out.push_back(tc({"filter", "add", "dev", dev, "parent", "1:", "protocol", "ip", "prio",
                        std::to_string(c.number), "u32", "flowid", id, "match", "ip", "dst", ip}));
    if (c.delay_ms <= 0 && c.loss_pct <= 0) continue;  // as upstream: no netem without delay
    Argv q =
        tc({"qdisc", "add", "dev", dev, "parent", id, "handle", hex(c.number) + "0:", "netem"});
    if (c.delay_ms > 0) {
      q.insert(q.end(), {"delay", ms(c.delay_ms)});
      // tc refuses "distribution" without jitter (the original would fail on var = 0).
      if (std::round(c.jitter_ms * 1000) > 0)
        q.insert(q.end(), {ms(c.jitter_ms), "distribution", "normal"});
    }
    if (c.loss_pct > 0) q.insert(q.end(), {"loss", util::format_number(c.loss_pct) + "%"});
    out.push_back(std::move(q));
  }
  return out;
}

Argv tc_class_rate_command(const std::string& interface, int number, double rate_mbit, bool sudo) {
  Argv a;
  if (sudo) a = {"sudo", "-n"};
  a.insert(a.end(), {"tc", "class", "change", "dev", interface, "parent", "1:", "classid",
                     "1:" + hex(number), "htb", "rate", util::format_number(rate_mbit) + "mbit"});
  return a;
}

std::string reset_script(const std::string& interface, bool sudo) {
  Argv del;
  if (sudo) del = {"sudo", "-n"};
  del.insert(del.end(), {"tc", "qdisc", "del", "dev", interface, "root"});
  return util::shell_join(del) + " >/dev/null 2>&1 || true\n";
}

std::string apply_script(const std::string& interface, const std::vector<Argv>& commands,
                         bool sudo) {
  // Remove what an earlier apply left (the original failed on a second run: "Exclusivity flag on").
  std::string s = reset_script(interface, sudo);
  s += "continuum_run() { n=$1; shift; \"$@\" || { rc=$?; "
       "echo \"continuum-netem: command $n failed (exit $rc)\" >&2; exit $rc; }; }\n";
  for (size_t i = 0; i < commands.size(); ++i)
    s += "continuum_run " + std::to_string(i) + " " + util::shell_join(commands[i]) + "\n";
  return s;
}

nlohmann::json netem_json(const plan::Plan& p) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& n : p.nodes) {
    auto cmds = tc_commands(p, n, "NIC");
    if (!cmds || cmds->empty()) continue;
    nlohmann::json a = nlohmann::json::array();
    for (const auto& c : *cmds) a.push_back(util::shell_join(c));
    j[n.id] = std::move(a);
  }
  return j;
}

std::string netem_summary(const plan::Plan& p) {
  std::string s;
  if (!p.network_emulation) return "Network emulation: off\n";
  s += "Network emulation: tc commands per VM (NIC = the interface carrying the VM's address, "
       "found in the guest; ";
  s += p.latency_is_rtt ? "latencies are round trips: each end applies half"
                        : "each end applies the configured latency, so RTT = 2 x latency";
  s += ")\n";
  for (const auto& n : p.nodes) {
    auto cmds = tc_commands(p, n, "NIC");
    s += "  " + n.id + " (" + n.ip + ")";
    if (!cmds) {
      s += ": error: " + cmds.error().message + "\n";
      continue;
    }
    if (cmds->empty()) {
      s += ": nothing to shape\n";
      continue;
    }
    s += ":\n";
    for (const auto& c : *cmds) s += "    " + util::shell_join(c) + "\n";
  }
  return s;
}

}  // namespace continuum::infra

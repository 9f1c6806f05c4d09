// Emulated links (docs/original.md §5.1): tier defaults, the 4g/5g presets, the per-tier override
// keys, the new loss and endpoint keys, and [link A B] node pair overrides.
#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "continuum/util/strings.h"
#include "internal.h"

namespace continuum::plan::detail {
namespace {

struct Values {
  double avg, var, mbit;
};

/// Each component of an override that is set (>= 0; -1 means "not set") replaces the default.
void apply(Link& l, const config::LinkOverride& o) {
  if (o.latency_avg >= 0) l.latency_avg_ms = o.latency_avg;
  if (o.latency_var >= 0) l.latency_var_ms = o.latency_var;
  if (o.throughput >= 0) l.throughput_mbit = o.throughput;
  if (o.loss >= 0) l.loss_pct = o.loss;
}

bool any_set(const config::LinkOverride& o) {
  return o.latency_avg >= 0 || o.latency_var >= 0 || o.throughput >= 0 || o.loss >= 0;
}

Link make_link(Tier a, Tier b, Values v) {
  Link l;
  l.a = config::tier_name(a);
  l.b = config::tier_name(b);
  l.latency_avg_ms = v.avg;
  l.latency_var_ms = v.var;
  l.throughput_mbit = v.mbit;
  l.loss_pct = 0;
  l.shaped = true;
  return l;
}

std::string at(const config::PairOverride& o) {
  std::string s = o.where.file;
  if (o.where.line > 0) s += ":" + std::to_string(o.where.line);
  if (!s.empty()) s += ": ";
  return s + "[link " + o.a + " " + o.b + "]: ";
}

/// One side of a [link A B]: a node (index into Plan::nodes) or a whole tier.
struct Side {
  bool is_tier = false;
  Tier tier = Tier::cloud;
  size_t node = 0;
};

Expected<Side> resolve(const Plan& p, const config::PairOverride& o, const std::string& word) {
  for (Tier t : {Tier::cloud, Tier::edge, Tier::endpoint}) {
    if (word != config::tier_name(t)) continue;
    bool any =
        std::any_of(p.nodes.begin(), p.nodes.end(), [&](const Node& n) { return n.tier == t; });
    if (!any)
      return make_error(at(o) + "tier '" + word + "' has no nodes in this plan", ExitCode::usage);
    return Side{true, t, 0};
  }
  for (size_t i = 0; i < p.nodes.size(); ++i)
    if (p.nodes[i].id == word || p.nodes[i].name == word) return Side{false, p.nodes[i].tier, i};
  std::vector<std::string> ids;
  for (const Node& n : p.nodes) ids.push_back(n.id);
  std::string msg = at(o) + "no node '" + word + "' in this plan";
  if (std::string near = util::closest_match(word, ids); !near.empty())
    msg += " (did you mean '" + near + "'?)";
  if (ids.size() <= 12)
    msg += "; nodes: " + util::join(ids, ", ");
  else
    msg +=
        "; nodes: " + ids.front() + " ... " + ids.back() + " (" + std::to_string(ids.size()) + ")";
  return make_error(msg + "; or a tier name: cloud, edge, endpoint", ExitCode::usage);
}

/// A [link A B] with both sides resolved.
struct Resolved {
  const config::PairOverride* o;
  Side a, b;
};

Expected<std::vector<Resolved>> resolve_all(const Plan& p,
                                            const std::vector<config::PairOverride>& pairs) {
  std::vector<Resolved> overrides;
  for (const auto& o : pairs) {
    Side a = TRY(resolve(p, o, o.a));
    Side b = TRY(resolve(p, o, o.b));
    if (!a.is_tier && !b.is_tier && a.node == b.node)
      return make_error(at(o) + "a link needs two different nodes", ExitCode::usage);
    overrides.push_back({&o, a, b});
  }
  return overrides;
}

// The wireless preset only sets the endpoint links' throughput (Mbit/s).
Expected<double> wireless_throughput(const std::string& preset) {
  if (preset == "4g") return 7.21;
  if (preset == "5g") return 29.66;
  return make_error("wireless_network_preset '" + preset + "' is not supported (4g or 5g)",
                    ExitCode::usage);
}

void add_tier_links(const config::Infrastructure& infra, double wireless_mbit, Plan& p) {
  int count[3] = {0, 0, 0};
  for (const Node& n : p.nodes) count[static_cast<int>(n.tier)]++;
  auto has = [&](Tier a, Tier b) {
    if (a == b) return count[static_cast<int>(a)] >= 2;
    return count[static_cast<int>(a)] >= 1 && count[static_cast<int>(b)] >= 1;
  };
  auto add = [&](Tier a, Tier b, Values v, const config::LinkOverride& o) {
    if (!has(a, b)) return;
    Link l = make_link(a, b, v);
    apply(l, o);
    p.tier_links.push_back(l);
  };
  add(Tier::cloud, Tier::cloud, {0, 0, 1000}, infra.cloud_link);
  add(Tier::edge, Tier::edge, {7.5, 2.5, 1000}, infra.edge_link);
  add(Tier::cloud, Tier::edge, {7.5, 2.5, 1000}, infra.cloud_edge_link);
  add(Tier::cloud, Tier::endpoint, {45, 5, wireless_mbit}, infra.cloud_endpoint_link);
  add(Tier::edge, Tier::endpoint, {7.5, 2.5, wireless_mbit}, infra.edge_endpoint_link);
  if (has(Tier::endpoint, Tier::endpoint)) {
    // The original never shapes endpoint<->endpoint; the endpoint_* keys opt in (from 0 ms, 1
    // Gbit/s).
    Link l = make_link(Tier::endpoint, Tier::endpoint, {0, 0, 1000});
    l.shaped = any_set(infra.endpoint_link);
    apply(l, infra.endpoint_link);
    p.tier_links.push_back(l);
  }
}

// [link tier tier] acts like the override keys, after them.
void apply_tier_pairs(const std::vector<Resolved>& overrides, Plan& p) {
  for (const Resolved& r : overrides) {
    if (!r.a.is_tier || !r.b.is_tier) continue;
    for (Link& l : p.tier_links) {
      bool match = (l.a == config::tier_name(r.a.tier) && l.b == config::tier_name(r.b.tier)) ||
                   (l.b == config::tier_name(r.a.tier) && l.a == config::tier_name(r.b.tier));
      if (!match) continue;
      apply(l, r.o->values);
      l.shaped = true;
    }
  }
}

using PairLinks = std::map<std::pair<size_t, size_t>, Link>;

void override_pair(const Plan& p, PairLinks& pairs, size_t x, size_t y,
                   const config::LinkOverride& o) {
  if (x == y) return;
  auto key = std::minmax(x, y);
  auto it = pairs.find(key);
  if (it == pairs.end()) {
    Link l;
    const Link* base = p.tier_link(p.nodes[key.first].tier, p.nodes[key.second].tier);
    if (base && base->shaped)
      l = *base;
    else
      l = make_link(Tier::cloud, Tier::cloud, {0, 0, 1000});
    l.shaped = true;
    l.a = p.nodes[key.first].id;
    l.b = p.nodes[key.second].id;
    it = pairs.emplace(key, l).first;
  }
  apply(it->second, o);
}

// Node pairs: a node-tier override first, then node-node (more specific wins per component;
// within one specificity a later section wins). Each pair starts from its tier link.
void add_pair_links(const std::vector<Resolved>& overrides, Plan& p) {
  PairLinks pairs;
  for (int pass = 0; pass < 2; ++pass) {
    for (const Resolved& r : overrides) {
      bool node_node = !r.a.is_tier && !r.b.is_tier;
      bool node_tier = r.a.is_tier != r.b.is_tier;
      if ((pass == 0 && !node_tier) || (pass == 1 && !node_node)) continue;
      if (node_node) {
        override_pair(p, pairs, r.a.node, r.b.node, r.o->values);
        continue;
      }
      const Side& node = r.a.is_tier ? r.b : r.a;
      const Side& tier = r.a.is_tier ? r.a : r.b;
      for (size_t i = 0; i < p.nodes.size(); ++i)
        if (p.nodes[i].tier == tier.tier) override_pair(p, pairs, node.node, i, r.o->values);
    }
  }
  for (auto& [key, l] : pairs) p.pair_links.push_back(std::move(l));
}

}  // namespace

Status make_links(const config::Config& cfg, Plan& p) {
  const auto& infra = cfg.infrastructure;
  p.tier_links.clear();
  p.pair_links.clear();

  // Resolve every [link] first so that a wrong name is an error even with emulation off.
  const std::vector<Resolved> overrides = TRY(resolve_all(p, infra.pair_overrides));
  if (!infra.network_emulation) return {};

  const double wireless_mbit = TRY(wireless_throughput(infra.wireless_network_preset));
  add_tier_links(infra, wireless_mbit, p);
  apply_tier_pairs(overrides, p);
  add_pair_links(overrides, p);
  return {};
}

}  // namespace continuum::plan::detail

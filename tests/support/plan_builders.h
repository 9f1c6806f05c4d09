#pragma once
// Plan pieces by hand for the network tests (netem, netperf): a node as plan::make names it for
// user alice, and a tier or pair link.
#include <string>

#include "continuum/plan/plan.h"

namespace continuum::test_support {

inline plan::Node node(const std::string& id, config::Tier t, const std::string& ip) {
  plan::Node n;
  n.id = id;
  n.name = id + "_alice";
  n.ssh_user = n.name;
  n.tier = t;
  n.ip = ip;
  return n;
}

/// `avg` and `var` as the configuration gives them (one-way ms), `mbit` the htb rate.
inline plan::Link link(const std::string& a, const std::string& b, double avg, double var,
                       double mbit, double loss = 0, bool shaped = true) {
  plan::Link l;
  l.a = a;
  l.b = b;
  l.latency_avg_ms = avg;
  l.latency_var_ms = var;
  l.throughput_mbit = mbit;
  l.loss_pct = loss;
  l.shaped = shaped;
  return l;
}

}  // namespace continuum::test_support

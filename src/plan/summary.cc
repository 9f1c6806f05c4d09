// `continuum plan` text output: what a run would create, readable at a glance.
#include <sstream>
#include <string>
#include <vector>

#include "continuum/plan/plan.h"
#include "continuum/util/strings.h"

namespace continuum::plan {
namespace {

/// Left-aligned columns separated by two spaces, indented by two; no trailing blanks.
std::string table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows)
    for (size_t c = 0; c < r.size(); ++c) {
      if (width.size() <= c) width.push_back(0);
      width[c] = std::max(width[c], r[c].size());
    }
  std::string out;
  for (const auto& r : rows) {
    std::string line = " ";
    for (size_t c = 0; c < r.size(); ++c) {
      line += " " + r[c];
      if (c + 1 < r.size()) line += std::string(width[c] - r[c].size() + 1, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + '\n';
  }
  return out;
}

/// 0,1,2,3,6 -> "0-3,6".
std::string cpu_ranges(const std::vector<int>& cpus) {
  if (cpus.empty()) return "-";
  std::string out;
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ",";
    out += std::to_string(cpus[i]);
    if (j > i) out += "-" + std::to_string(cpus[j]);
    i = j + 1;
  }
  return out;
}

std::string plural(size_t n, const std::string& word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

}  // namespace

std::string summary(const Plan& p) {
  using util::format_number;
  std::ostringstream o;
  o << "Plan for " << p.config_name << ": " << plural(p.nodes.size(), "VM") << " on "
    << plural(p.hosts.size(), "host") << ", nothing created\n";
  std::vector<std::vector<std::string>> head = {{"user", p.user}, {"mode", p.mode}};
  std::string net;
  if (p.network.mode == "managed")
    net = "libvirt network " + p.network.name + " (bridge " + p.network.bridge + ", gateway " +
          p.network.gateway + "/" + std::to_string(p.network.prefix_len) + ")";
  else
    net = "existing bridge " + p.network.bridge + " (" + p.network.prefix + "." +
          std::to_string(p.network.middle) + ".0/" + std::to_string(p.network.prefix_len) + ")";
  head.push_back({"network", net});
  o << table(head);

  o << "\nHosts\n";
  std::vector<std::vector<std::string>> hosts = {
      {"#", "HOST", "LIBVIRT URI", "CORES", "USED", "CLOUD", "EDGE", "ENDPOINT"}};
  for (size_t h = 0; h < p.hosts.size(); ++h) {
    int count[3] = {0, 0, 0};
    for (const Node& n : p.nodes)
      if (n.host == h) count[static_cast<int>(n.tier)]++;
    hosts.push_back({std::to_string(h), p.hosts[h].name, p.hosts[h].libvirt_uri,
                     std::to_string(p.hosts[h].physical_cores),
                     std::to_string(p.hosts[h].used_cores), std::to_string(count[0]),
                     std::to_string(count[1]), std::to_string(count[2])});
  }
  o << table(hosts);

  bool disk = false;
  for (const Node& n : p.nodes) disk = disk || n.read_bytes_sec || n.write_bytes_sec;
  o << "\nNodes (" << p.nodes.size() << ")\n";
  std::vector<std::vector<std::string>> nodes = {
      {"NAME", "TIER", "HOST", "CORES", "MEMORY", "QUOTA", "IP", "PINNED CPUS"}};
  if (disk) nodes[0].push_back("DISK READ/WRITE");
  for (const Node& n : p.nodes) {
    std::vector<std::string> r = {n.name,
                                  config::tier_name(n.tier),
                                  n.host < p.hosts.size() ? p.hosts[n.host].name : "?",
                                  std::to_string(n.cores),
                                  std::to_string(n.memory_mib) + " MiB",
                                  format_number(n.quota),
                                  n.ip,
                                  cpu_ranges(n.pinned_cpus)};
    if (disk) {
      auto mb = [](uint64_t b) {
        return b ? format_number(static_cast<double>(b) / 1e6) : std::string("-");
      };
      r.push_back(mb(n.read_bytes_sec) + "/" + mb(n.write_bytes_sec) + " MB/s");
    }
    nodes.push_back(std::move(r));
  }
  o << table(nodes);

  if (!p.network_emulation) {
    o << "\nLinks: not emulated (network_emulation = False)\n";
  } else {
    o << "\nLinks (latency "
      << (p.latency_is_rtt ? "is the round trip" : "per direction, applied at both ends") << ")\n";
    std::vector<std::vector<std::string>> links = {
        {"A", "B", "LATENCY AVG", "VAR", "THROUGHPUT", "LOSS"}};
    auto row = [&](const Link& l) {
      if (!l.shaped) {
        links.push_back({l.a, l.b, "not shaped", "", "", ""});
        return;
      }
      links.push_back({l.a, l.b, format_number(l.latency_avg_ms) + " ms",
                       format_number(l.latency_var_ms) + " ms",
                       format_number(l.throughput_mbit) + " Mbit/s",
                       format_number(l.loss_pct) + " %"});
    };
    for (const Link& l : p.tier_links) row(l);
    for (const Link& l : p.pair_links) row(l);
    if (links.size() == 1)
      o << "  none (fewer than two VMs)\n";
    else
      o << table(links);
  }

  o << "\nPlaybooks:" << (p.playbooks.empty() ? " none" : "") << "\n";
  for (const auto& st : p.playbooks)
    o << "  " << st.name << " (" << st.file << ")"
      << (st.after.empty() ? "" : ", after " + util::join(st.after, ", ")) << "\n";
  o << "\nBenchmark\n";
  o << table({{"application", p.application.empty() ? "none" : p.application},
              {"repeats", std::to_string(p.repeats)},
              {"workloads", p.workloads.empty() ? "none" : util::join(p.workloads, ", ")}});
  return o.str();
}

}  // namespace continuum::plan

// Plan <-> JSON (docs/plan-schema.md). The plan is saved as <run>/plan.json and read back by
// `destroy`/`report`, so from_json checks every field and names the one that is wrong.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "continuum/plan/plan.h"

namespace continuum::plan {
namespace {

using nlohmann::json;

constexpr int kSchemaVersion = 1;

json link_json(const Link& l) {
  return json{{"a", l.a},
              {"b", l.b},
              {"latency_avg_ms", l.latency_avg_ms},
              {"latency_var_ms", l.latency_var_ms},
              {"throughput_mbit", l.throughput_mbit},
              {"loss_pct", l.loss_pct},
              {"shaped", l.shaped}};
}

/// Thrown inside from_json with the JSON path of the offending field.
struct FieldError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Reads obj[key] as T; a missing key or a wrong type names the path (e.g. nodes[3].ip).
template <typename T>
T field(const json& obj, const char* key, const std::string& path) {
  std::string where = path.empty() ? key : path + "." + key;
  if (!obj.is_object()) throw FieldError(path + ": expected an object");
  auto it = obj.find(key);
  if (it == obj.end()) throw FieldError(where + ": missing");
  try {
    if constexpr (std::is_same_v<T, bool>) {
      if (!it->is_boolean()) throw FieldError(where + ": expected true or false");
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!it->is_string()) throw FieldError(where + ": expected a string");
    } else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T>) {
      if (!it->is_number_integer() ||
          (!it->is_number_unsigned() && it->template get<int64_t>() < 0))
        throw FieldError(where + ": expected a non-negative integer");
    } else if constexpr (std::is_integral_v<T>) {
      if (!it->is_number_integer()) throw FieldError(where + ": expected an integer");
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!it->is_number()) throw FieldError(where + ": expected a number");
    }
    return it->template get<T>();
  } catch (const json::exception& e) {
    throw FieldError(where + ": " + e.what());
  }
}

const json& array(const json& obj, const char* key, const std::string& path) {
  std::string where = path.empty() ? key : path + "." + key;
  auto it = obj.find(key);
  if (it == obj.end()) throw FieldError(where + ": missing");
  if (!it->is_array()) throw FieldError(where + ": expected an array");
  return *it;
}

Link link_from(const json& j, const std::string& path) {
  Link l;
  l.a = field<std::string>(j, "a", path);
  l.b = field<std::string>(j, "b", path);
  l.latency_avg_ms = field<double>(j, "latency_avg_ms", path);
  l.latency_var_ms = field<double>(j, "latency_var_ms", path);
  l.throughput_mbit = field<double>(j, "throughput_mbit", path);
  l.loss_pct = field<double>(j, "loss_pct", path);
  l.shaped = field<bool>(j, "shaped", path);
  return l;
}

Tier tier_from(const std::string& s, const std::string& path) {
  for (Tier t : {Tier::cloud, Tier::edge, Tier::endpoint})
    if (s == config::tier_name(t)) return t;
  throw FieldError(path + ": unknown tier '" + s + "' (cloud, edge or endpoint)");
}

std::vector<std::string> strings_from(const json& obj, const char* key, const std::string& path) {
  std::vector<std::string> out;
  const json& a = array(obj, key, path);
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].is_string())
      throw FieldError(std::string(key) + "[" + std::to_string(i) + "]: expected a string");
    out.push_back(a[i].get<std::string>());
  }
  return out;
}

}  // namespace

nlohmann::json to_json(const Plan& p) {
  json hosts = json::array();
  for (const Host& h : p.hosts)
    hosts.push_back({{"name", h.name},
                     {"libvirt_uri", h.libvirt_uri},
                     {"physical_cores", h.physical_cores},
                     {"used_cores", h.used_cores}});
  json nodes = json::array();
  for (const Node& n : p.nodes)
    nodes.push_back({{"id", n.id},
                     {"name", n.name},
                     {"hostname", n.hostname},
                     {"ssh_user", n.ssh_user},
                     {"tier", config::tier_name(n.tier)},
                     {"controller", n.controller},
                     {"index", n.index},
                     {"host", n.host},
                     {"cores", n.cores},
                     {"memory_mib", n.memory_mib},
                     {"quota", n.quota},
                     {"cputune_period", n.cputune_period},
                     {"cputune_quota", n.cputune_quota},
                     {"pinned_cpus", n.pinned_cpus},
                     {"read_bytes_sec", n.read_bytes_sec},
                     {"write_bytes_sec", n.write_bytes_sec},
                     {"ip", n.ip}});
  json tier_links = json::array(), pair_links = json::array();
  for (const Link& l : p.tier_links) tier_links.push_back(link_json(l));
  json playbooks = json::array();
  for (const PlaybookStep& st : p.playbooks)
    playbooks.push_back(
        {{"name", st.name}, {"file", st.file}, {"after", st.after}, {"vars", st.vars}});
  for (const Link& l : p.pair_links) pair_links.push_back(link_json(l));
  return json{{"schema_version", kSchemaVersion},
              {"config_name", p.config_name},
              {"user", p.user},
              {"mode", p.mode},
              {"hosts", hosts},
              {"nodes", nodes},
              {"network",
               {{"mode", p.network.mode},
                {"name", p.network.name},
                {"bridge", p.network.bridge},
                {"prefix", p.network.prefix},
                {"middle", p.network.middle},
                {"gateway", p.network.gateway},
                {"prefix_len", p.network.prefix_len},
                {"forward", p.network.forward}}},
              {"network_emulation", p.network_emulation},
              {"latency_is_rtt", p.latency_is_rtt},
              {"network_verify", p.network_verify},
              {"network_strict", p.network_strict},
              {"netperf", p.netperf},
              {"netperf_seconds", p.netperf_seconds},
              {"tier_links", tier_links},
              {"pair_links", pair_links},
              {"playbooks", playbooks},
              {"application", p.application},
              {"repeats", p.repeats},
              {"workloads", p.workloads}};
}

Expected<Plan> from_json(const nlohmann::json& j) {
  try {
    if (!j.is_object()) throw FieldError("plan: expected a JSON object");
    int version = field<int>(j, "schema_version", "");
    if (version != kSchemaVersion)
      throw FieldError("schema_version: " + std::to_string(version) +
                       " is not supported (this continuum reads " + std::to_string(kSchemaVersion) +
                       ")");
    Plan p;
    p.config_name = field<std::string>(j, "config_name", "");
    p.user = field<std::string>(j, "user", "");
    p.mode = field<std::string>(j, "mode", "");
    const json& hosts = array(j, "hosts", "");
    for (size_t i = 0; i < hosts.size(); ++i) {
      std::string at = "hosts[" + std::to_string(i) + "]";
      Host h;
      h.name = field<std::string>(hosts[i], "name", at);
      h.libvirt_uri = field<std::string>(hosts[i], "libvirt_uri", at);
      h.physical_cores = field<int>(hosts[i], "physical_cores", at);
      h.used_cores = field<int>(hosts[i], "used_cores", at);
      p.hosts.push_back(std::move(h));
    }
    const json& nodes = array(j, "nodes", "");
    for (size_t i = 0; i < nodes.size(); ++i) {
      std::string at = "nodes[" + std::to_string(i) + "]";
      const json& o = nodes[i];
      Node n;
      n.id = field<std::string>(o, "id", at);
      n.name = field<std::string>(o, "name", at);
      n.hostname = field<std::string>(o, "hostname", at);
      n.ssh_user = field<std::string>(o, "ssh_user", at);
      n.tier = tier_from(field<std::string>(o, "tier", at), at + ".tier");
      n.controller = field<bool>(o, "controller", at);
      n.index = field<int>(o, "index", at);
      n.host = field<size_t>(o, "host", at);
      if (n.host >= p.hosts.size())
        throw FieldError(at + ".host: " + std::to_string(n.host) + " is not an index into hosts");
      n.cores = field<int>(o, "cores", at);
      n.memory_mib = field<int>(o, "memory_mib", at);
      n.quota = field<double>(o, "quota", at);
      n.cputune_period = field<int>(o, "cputune_period", at);
      n.cputune_quota = field<int>(o, "cputune_quota", at);
      const json& pins = array(o, "pinned_cpus", at);
      for (size_t k = 0; k < pins.size(); ++k) {
        if (!pins[k].is_number_integer())
          throw FieldError(at + ".pinned_cpus[" + std::to_string(k) + "]: expected an integer");
        n.pinned_cpus.push_back(pins[k].get<int>());
      }
      n.read_bytes_sec = field<uint64_t>(o, "read_bytes_sec", at);
      n.write_bytes_sec = field<uint64_t>(o, "write_bytes_sec", at);
      n.ip = field<std::string>(o, "ip", at);
      p.nodes.push_back(std::move(n));
    }
    const json& net = j.contains("network") ? j["network"] : json();
    if (!net.is_object()) throw FieldError("network: missing or not an object");
    p.network.mode = field<std::string>(net, "mode", "network");
    p.network.name = field<std::string>(net, "name", "network");
    p.network.bridge = field<std::string>(net, "bridge", "network");
    p.network.prefix = field<std::string>(net, "prefix", "network");
    p.network.middle = field<int>(net, "middle", "network");
    p.network.gateway = field<std::string>(net, "gateway", "network");
    p.network.prefix_len = field<int>(net, "prefix_len", "network");
    p.network.forward = net.value("forward", "");  // absent in plans written before guest_internet
    p.network_emulation = field<bool>(j, "network_emulation", "");
    p.latency_is_rtt = field<bool>(j, "latency_is_rtt", "");
    p.network_verify = field<bool>(j, "network_verify", "");
    p.network_strict = field<bool>(j, "network_strict", "");
    p.netperf = j.value("netperf", false);  // absent in plans written before the netperf matrix
    p.netperf_seconds = j.value("netperf_seconds", 10);
    const json& tl = array(j, "tier_links", "");
    for (size_t i = 0; i < tl.size(); ++i)
      p.tier_links.push_back(link_from(tl[i], "tier_links[" + std::to_string(i) + "]"));
    const json& pl = array(j, "pair_links", "");
    for (size_t i = 0; i < pl.size(); ++i)
      p.pair_links.push_back(link_from(pl[i], "pair_links[" + std::to_string(i) + "]"));
    const json& pb = array(j, "playbooks", "");
    for (size_t i = 0; i < pb.size(); ++i) {
      const std::string at = "playbooks[" + std::to_string(i) + "]";
      PlaybookStep st;
      st.name = field<std::string>(pb[i], "name", at);
      st.file = field<std::string>(pb[i], "file", at);
      st.after = strings_from(pb[i], "after", at);
      st.vars = pb[i].value("vars", std::map<std::string, std::string>{});
      p.playbooks.push_back(std::move(st));
    }
    p.application = field<std::string>(j, "application", "");
    p.repeats = field<int>(j, "repeats", "");
    p.workloads = strings_from(j, "workloads", "");
    return p;
  } catch (const FieldError& e) {
    return make_error(std::string("invalid plan JSON: ") + e.what());
  } catch (const nlohmann::json::exception& e) {
    return make_error(std::string("invalid plan JSON: ") + e.what());
  }
}

}  // namespace continuum::plan

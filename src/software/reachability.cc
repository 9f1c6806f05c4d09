// Reachability preflight of the playbooks' download sources
// (src/software/include/continuum/software/reachability.h).
#include "continuum/software/reachability.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "continuum/record/events.h"
#include "continuum/software/inventory.h"
#include "continuum/software/software.h"
#include "continuum/util/parallel.h"
#include "continuum/util/strings.h"

namespace continuum::software {
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool valid_name(std::string_view n) {
  if (n.empty() || !(std::isalpha(static_cast<unsigned char>(n[0])) || n[0] == '_')) return false;
  for (char c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

struct UrlParts {
  std::string scheme, host;
  int port = 0;
};

// scheme://[user@]host[:port]/...; host lower-cased, brackets of an IPv6 literal removed.
std::optional<UrlParts> split_url(const std::string& url) {
  auto sep = url.find("://");
  if (sep == std::string::npos) return std::nullopt;
  UrlParts u;
  u.scheme = lower(url.substr(0, sep));
  std::string rest = url.substr(sep + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (auto at = rest.rfind('@'); at != std::string::npos) rest = rest.substr(at + 1);
  std::string port;
  if (!rest.empty() && rest[0] == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos) return std::nullopt;
    u.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') port = rest.substr(close + 2);
  } else {
    auto colon = rest.rfind(':');
    u.host = rest.substr(0, colon);
    if (colon != std::string::npos) port = rest.substr(colon + 1);
  }
  u.host = lower(u.host);
  if (u.host.empty()) return std::nullopt;
  if (!port.empty()) {
    if (port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5)
      return std::nullopt;
    u.port = std::stoi(port);
  } else {
    u.port = u.scheme == "https" ? 443 : 80;
  }
  return u;
}

bool ipv4_in(const std::string& host, const std::string& cidr) {
  auto slash = cidr.find('/');
  std::string net = cidr.substr(0, slash);
  int len = 32;
  if (slash != std::string::npos) {
    std::string l = cidr.substr(slash + 1);
    if (l.empty() || l.size() > 2 || l.find_first_not_of("0123456789") != std::string::npos)
      return false;
    len = std::stoi(l);
    if (len > 32) return false;
  }
  in_addr h{}, n{};
  if (::inet_pton(AF_INET, host.c_str(), &h) != 1 || ::inet_pton(AF_INET, net.c_str(), &n) != 1)
    return false;
  uint32_t mask = len == 0 ? 0 : ~uint32_t{0} << (32 - len);
  return (ntohl(h.s_addr) & mask) == (ntohl(n.s_addr) & mask);
}

// The probe script. It trusts nothing it reads (the downloads themselves check signatures and
// TLS), so TLS is not verified here: the guests may not have ca-certificates before the
// container_runtime playbook installs them, and a missing CA bundle is not a reachability
// problem. getaddrinfo has no timeout of its own, hence threads joined against one deadline.
constexpr const char* kProbeScript = R"PY(
import http.client, json, os, socket, ssl, sys, threading, time, urllib.parse
spec = json.loads(sys.argv[1])
T = float(spec["timeout"])
codename = "stable"
try:
    for line in open("/etc/os-release"):
        if line.startswith("VERSION_CODENAME=") and line.split("=", 1)[1].strip().strip('"'):
            codename = line.split("=", 1)[1].strip().strip('"')
except OSError:
    pass
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
BAD_PROXY_STATUS = (403, 407, 502, 503, 504)

def probe(p, out):
    t0 = time.monotonic()
    deadline = t0 + T
    left = lambda: max(0.05, deadline - time.monotonic())
    if not p["always"] and p["unless"] and all(os.path.exists(f) for f in p["unless"]):
        out.update(skipped=True, ok=True)
        return
    url = p["url"].replace("{codename}", codename)
    out["url"] = url
    u = urllib.parse.urlsplit(url)
    proxy = urllib.parse.urlsplit(p["proxy"]) if p["proxy"] else None
    first = proxy or u
    host, port = first.hostname, first.port or (443 if first.scheme == "https" else 80)
    what = ("proxy " if proxy else "") + "%s:%d" % (host, port)
    try:
        out["stage"] = "dns"
        addrs = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        out["stage"] = "connect"
        err = None
        for fam, typ, proto, _, addr in addrs:
            s = socket.socket(fam, typ, proto)
            s.settimeout(left())
            try:
                s.connect(addr)
                err = None
                break
            except OSError as e:
                err = e
            finally:
                s.close()
        if err is not None:
            raise err
        out["stage"] = "http"
        if u.scheme == "https":
            if proxy:
                c = http.client.HTTPSConnection(host, port, timeout=left(), context=ctx)
                c.set_tunnel(u.hostname, u.port or 443)
            else:
                c = http.client.HTTPSConnection(host, port, timeout=left(), context=ctx)
            path = urllib.parse.urlunsplit(("", "", u.path or "/", u.query, ""))
        else:
            c = http.client.HTTPConnection(host, port, timeout=left())
            path = url if proxy else urllib.parse.urlunsplit(("", "", u.path or "/", u.query, ""))
        c.request("HEAD", path, headers={"User-Agent": "continuum-reachability"})
        r = c.getresponse()
        out["status"] = r.status
        c.close()
        if proxy and r.status in BAD_PROXY_STATUS:
            out["error"] = "the proxy answered HTTP %d %s" % (r.status, r.reason)
        else:
            out["ok"] = True
    except socket.gaierror as e:
        out["error"] = "cannot resolve %s: %s" % (host, e.strerror or e)
    except (socket.timeout, TimeoutError):
        out["error"] = "no answer from %s within %gs (%s)" % (what, T, out["stage"])
        out["stage"] = "timeout"
    except OSError as e:
        msg = e.strerror or str(e)
        if out["stage"] == "connect":
            out["error"] = "cannot connect to %s: %s" % (what, msg)
        else:
            out["error"] = "HTTP HEAD via %s failed: %s" % (what, msg)
    except Exception as e:
        out["error"] = "%s: %s" % (type(e).__name__, e)
    out["seconds"] = round(time.monotonic() - t0, 3)

results = [{"ok": False, "skipped": False, "stage": "", "error": "", "status": 0, "seconds": 0.0} for _ in spec["probes"]]
threads = [threading.Thread(target=probe, args=(p, r), daemon=True) for p, r in zip(spec["probes"], results)]
for t in threads:
    t.start()
end = time.monotonic() + T + 0.5
for t in threads:
    t.join(max(0.0, end - time.monotonic()))
for t, r in zip(threads, results):
    if t.is_alive():
        r.update(ok=False, error="no answer within %gs (%s)" % (T, r["stage"] or "start"), stage="timeout", seconds=T)
print(json.dumps(results), flush=True)
os._exit(0)
)PY";

}  // namespace

Expected<std::string> expand_template(const std::string& text,
                                      const std::map<std::string, std::string>& vars) {
  std::string out = text;
  for (int depth = 0; depth < 16; ++depth) {
    auto open = out.find("{{");
    if (open == std::string::npos) return out;
    std::string result;
    size_t pos = 0;
    while ((open = out.find("{{", pos)) != std::string::npos) {
      auto close = out.find("}}", open + 2);
      if (close == std::string::npos) return make_error("unterminated '{{' in '" + text + "'");
      std::string name(util::trim(std::string_view(out).substr(open + 2, close - open - 2)));
      if (!valid_name(name))
        return make_error("'{{ " + name + " }}' in '" + text +
                          "': only {{ variable }} is understood here (no filters or expressions)");
      auto it = vars.find(name);
      if (it == vars.end()) return make_error("'" + text + "' uses the undefined variable " + name);
      result += out.substr(pos, open - pos) + it->second;
      pos = close + 2;
    }
    out = result + out.substr(pos);
  }
  return make_error("'" + text + "': variables refer to each other in a cycle");
}

Expected<Versions> load_versions(const std::filesystem::path& file,
                                 const std::map<std::string, std::string>& extra, bool strict) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(file.string());
  } catch (const YAML::Exception& e) {
    return make_error(file.string() + ": " + e.what());
  }
  if (!root.IsMap()) return make_error(file.string() + ": expected a mapping of variables");
  Versions v;
  for (const auto& kvp : root)
    if (kvp.second.IsScalar()) v.vars[kvp.first.as<std::string>()] = kvp.second.as<std::string>();
  std::map<std::string, std::string> all = v.vars;
  for (const auto& [k, val] : extra) all[k] = val;

  const YAML::Node list = root["continuum_sources"];
  if (!list || !list.IsSequence())
    return make_error(file.string() + ": continuum_sources is missing or not a list");
  std::set<std::string> groups;
  for (const auto& [g, ids] : inventory_groups(plan::Plan{})) groups.insert(g);
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node e = list[i];
    const std::string where = file.string() + ": continuum_sources[" + std::to_string(i) + "]";
    if (!e.IsMap()) return make_error(where + ": expected a mapping");
    SourceEntry s;
    for (auto [key, field] : {std::pair{"step", &s.step},
                              {"hosts", &s.hosts},
                              {"url", &s.url},
                              {"unless", &s.unless}}) {
      if (e[key] && e[key].IsScalar())
        *field = e[key].as<std::string>();
      else if (std::string(key) != "unless")
        return make_error(where + ": '" + key + "' is missing");
    }
    for (const auto& g : util::split(s.hosts, ':'))
      if (!groups.count(std::string(util::trim(g))))
        return make_error(where + ": hosts: unknown inventory group '" + g + "'");
    if (s.url != "apt") {
      auto url = expand_template(s.url, all);
      if (!url) {
        if (strict) return make_error(where + ": " + url.error().message);
        continue;  // needs an inventory variable this configuration does not have
      }
      s.url = *url;
      auto parts = split_url(s.url);
      if (!parts || (parts->scheme != "http" && parts->scheme != "https"))
        return make_error(where + ": url '" + s.url + "' is neither 'apt' nor an http(s) URL");
    }
    if (!s.unless.empty() && s.unless[0] != '/')
      return make_error(where + ": unless '" + s.unless + "' is not an absolute path");
    v.sources.push_back(std::move(s));
  }
  return v;
}

bool no_proxy_matches(const std::string& host_in, const std::string& no_proxy) {
  const std::string host = lower(host_in);
  for (const auto& raw : util::split(no_proxy, ',')) {
    std::string item = lower(std::string(util::trim(raw)));
    if (item.empty()) continue;
    if (item == "*") return true;
    if (item.find('/') != std::string::npos ||
        item.find_first_not_of("0123456789.") == std::string::npos) {
      if (ipv4_in(host, item)) return true;
      continue;
    }
    if (item == host) return true;
    std::string suffix = item[0] == '.' ? item : "." + item;
    if (host.size() > suffix.size() &&
        host.compare(host.size() - suffix.size(), suffix.size(), suffix) == 0)
      return true;
  }
  return false;
}

std::string proxy_for(const std::string& url, bool apt, const config::Infrastructure& infra,
                      const std::string& no_proxy) {
  auto u = split_url(url);
  if (!u) return "";
  // apt's Acquire::http::Proxy (guest_apt_proxy) applies to http sources whatever no_proxy says.
  if (apt && u->scheme == "http" && !infra.guest_apt_proxy.empty()) return infra.guest_apt_proxy;
  const std::string& p = u->scheme == "https" ? infra.guest_https_proxy : infra.guest_http_proxy;
  if (p.empty() || no_proxy_matches(u->host, no_proxy)) return "";
  return p;
}

std::vector<GuestProbes> plan_probes(const plan::Plan& plan, const config::Config& cfg,
                                     const infra::Deployment* dep, const Versions& versions,
                                     const std::vector<std::string>& steps) {
  const std::set<std::string> selected(steps.begin(), steps.end());
  std::map<std::string, std::set<std::string>> groups_of;  // node id -> groups
  for (const auto& [g, ids] : inventory_groups(plan))
    for (const auto& id : ids) groups_of[id].insert(g);
  const std::string no_proxy = guest_no_proxy(plan, cfg.infrastructure, dep);
  std::string mirror = cfg.infrastructure.guest_apt_mirror;
  if (mirror.empty() && versions.vars.count("debian_mirror"))
    mirror = versions.vars.at("debian_mirror");
  while (!mirror.empty() && mirror.back() == '/') mirror.pop_back();

  std::vector<GuestProbes> out;
  for (const auto& n : plan.nodes) {
    GuestProbes g;
    g.node_id = n.id;
    for (const auto& s : versions.sources) {
      if (!selected.count(s.step)) continue;
      bool member = false;
      for (const auto& grp : util::split(s.hosts, ':'))
        member |= groups_of[n.id].count(std::string(util::trim(grp))) > 0;
      if (!member) continue;
      const bool apt = s.url == "apt";
      if (apt && mirror.empty()) continue;
      Probe p;
      p.source = s.url;
      p.url = apt ? mirror + "/dists/{codename}/InRelease" : s.url;
      p.proxy = proxy_for(apt ? mirror : s.url, apt, cfg.infrastructure, no_proxy);
      auto same = std::find_if(g.probes.begin(), g.probes.end(), [&](const Probe& q) {
        return q.url == p.url && q.proxy == p.proxy;
      });
      Probe& target = same != g.probes.end() ? *same : g.probes.emplace_back(std::move(p));
      if (s.unless.empty())
        target.always = true;
      else if (std::find(target.unless.begin(), target.unless.end(), s.unless) ==
               target.unless.end())
        target.unless.push_back(s.unless);
      if (std::find(target.steps.begin(), target.steps.end(), s.step) == target.steps.end())
        target.steps.push_back(s.step);
    }
    if (!g.probes.empty()) out.push_back(std::move(g));
  }
  return out;
}

std::string probe_command(const std::vector<Probe>& probes, double timeout_s) {
  nlohmann::json spec{{"timeout", timeout_s}, {"probes", nlohmann::json::array()}};
  for (const auto& p : probes)
    spec["probes"].push_back(
        {{"url", p.url}, {"proxy", p.proxy}, {"always", p.always}, {"unless", p.unless}});
  return util::shell_join({"python3", "-c", kProbeScript, spec.dump()});
}

Expected<std::vector<ProbeResult>> parse_probe_output(const std::string& out, size_t n) {
  // The JSON array is the last line the script prints.
  std::string_view text = util::trim(out);
  auto nl = text.rfind('\n');
  std::string last(nl == std::string_view::npos ? text : text.substr(nl + 1));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(last);
  } catch (const nlohmann::json::exception&) {
    return make_error("the probe printed '" + last.substr(0, 200) + "', not its JSON results");
  }
  if (!j.is_array() || j.size() != n)
    return make_error("the probe returned " +
                      (j.is_array() ? std::to_string(j.size()) : std::string("no")) +
                      " results for " + std::to_string(n) + " sources");
  std::vector<ProbeResult> res;
  try {
    for (const auto& r : j) {
      ProbeResult p;
      p.skipped = r.value("skipped", false);
      p.ok = r.value("ok", false);
      p.stage = r.value("stage", "");
      p.error = r.value("error", "");
      p.status = r.value("status", 0);
      p.seconds = r.value("seconds", 0.0);
      p.url = r.value("url", "");
      res.push_back(std::move(p));
    }
  } catch (const nlohmann::json::exception& e) {
    return make_error(std::string("unexpected probe result: ") + e.what());
  }
  return res;
}

ReachabilityReport run_probes(const infra::Deployment& dep, const std::vector<GuestProbes>& probes,
                              double timeout_s, const Connector& connect_in) {
  ReachabilityReport rep;
  const auto t0 = std::chrono::steady_clock::now();
  Connector connect = connect_in;
  if (!connect)
    connect = [&dep](const infra::DeployedNode& n) {
      return dep.connect(n, std::chrono::seconds(30));
    };
  std::mutex mu;
  std::vector<std::pair<const GuestProbes*, const infra::DeployedNode*>> todo;
  for (const auto& g : probes) {
    const infra::DeployedNode* node = dep.find(g.node_id);
    if (!node) {
      rep.errors.push_back(g.node_id + ": not in the deployment");
      continue;
    }
    ++rep.guests;
    todo.emplace_back(&g, node);
  }
  util::parallel_for(todo.size(), util::kAllAtOnce, [&](size_t t) {
    const GuestProbes& g = *todo[t].first;
    const infra::DeployedNode* node = todo[t].second;
    auto fail = [&](const std::string& why) {
      std::lock_guard lock(mu);
      rep.errors.push_back(node->name + " (" + node->ip + "): " + why);
    };
    auto remote = connect(*node);
    if (!remote) return fail("cannot connect over SSH: " + remote.error().message);
    // python3's start under TCG and the SSH channel come on top of the probes' own deadline.
    auto limit = std::chrono::milliseconds(static_cast<long>(timeout_s * 1000) + 30000);
    auto r = (*remote)->exec(probe_command(g.probes, timeout_s), limit);
    if (!r) return fail("the check could not run: " + r.error().message);
    if (r->exit_code == 127) {
      std::lock_guard lock(mu);
      rep.warnings.push_back(node->name +
                             ": no python3 in the guest, its download sources were not checked");
      return;
    }
    if (r->exit_code != 0)
      return fail("the check exited with " + std::to_string(r->exit_code) + ": " +
                  std::string(util::trim(r->err)).substr(0, 300));
    auto results = parse_probe_output(r->out, g.probes.size());
    if (!results) return fail(results.error().message);
    std::lock_guard lock(mu);
    for (size_t i = 0; i < results->size(); ++i) {
      const ProbeResult& pr = (*results)[i];
      if (pr.skipped) {
        ++rep.satisfied;
        continue;
      }
      ++rep.probed;
      if (!pr.ok) rep.unreachable.push_back({node->id, node->name, node->ip, g.probes[i], pr});
    }
  });
  // Guests in plan order, then sources in probe order: the message reads the same every time.
  auto order = [&](const std::string& id) {
    for (size_t i = 0; i < probes.size(); ++i)
      if (probes[i].node_id == id) return i;
    return probes.size();
  };
  std::stable_sort(rep.unreachable.begin(), rep.unreachable.end(),
                   [&](const Unreachable& a, const Unreachable& b) {
                     return order(a.node_id) < order(b.node_id);
                   });
  std::sort(rep.errors.begin(), rep.errors.end());
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

std::string describe_unreachable(const ReachabilityReport& r, const config::Infrastructure& infra) {
  std::string s;
  const size_t n = r.unreachable.size();
  s += fmt::format(
      "reachability: {} download source(s) the playbooks need are unreachable from the guests "
      "(checked in {:.1f} s, timeout {} s per source):\n",
      n, r.seconds, util::format_number(infra.reachability_timeout));
  bool via_proxy = false, apt = false, https = false;
  for (const auto& u : r.unreachable) {
    s += "  " + u.vm + " (" + u.ip + "): " + (u.result.url.empty() ? u.probe.url : u.result.url);
    if (!u.probe.proxy.empty()) s += " via proxy " + u.probe.proxy;
    s += " [" + util::join(u.probe.steps, ", ") + "]: " + u.result.error + "\n";
    via_proxy |= !u.probe.proxy.empty();
    apt |= u.probe.source == "apt";
    https |= util::starts_with(u.probe.url, "https:");
  }
  for (const auto& e : r.errors) s += "  check failed on " + e + "\n";
  if (n == 0) return s;
  s += "Without them the software phase would fail on the first download, minutes from now. To "
       "fix:\n";
  if (infra.guest_internet == "none")
    s += "  - guest_internet = none isolates the guests' network: set [infrastructure] "
         "guest_internet = nat "
         "(the default) to give them NAT through the host, or a proxy below\n";
  else if (!via_proxy)
    s += "  - the guests go out through the host's NAT (guest_internet = nat): give the host an "
         "uplink "
         "(a default route and DNS), or set a proxy below\n";
  if (via_proxy)
    s += "  - check that the configured proxy is reachable from the guests and allows these hosts "
         "(guest_http_proxy, guest_https_proxy, guest_apt_proxy)\n";
  else
    s += std::string("  - [infrastructure] guest_http_proxy") +
         (https ? " / guest_https_proxy" : "") +
         " = http://<proxy>:<port> the guests can reach (guest_no_proxy for hosts to reach "
         "directly)\n";
  if (apt)
    s += "  - for the Debian packages: [infrastructure] guest_apt_proxy = "
         "http://<apt-cacher-ng>:3142, or "
         "guest_apt_mirror = a local Debian mirror\n";
  s += "  - or a guest image that already has the software (then these downloads are skipped); "
       "reachability_check = False skips this check\n";
  return s;
}

Expected<ReachabilityReport> check_reachability(const plan::Plan& plan, const config::Config& cfg,
                                                const infra::Deployment& dep,
                                                record::EventLog* events,
                                                const std::filesystem::path& versions_file,
                                                const Connector& connect) {
  ReachabilityReport rep;
  rep.skipped = true;
  if (!cfg.infrastructure.reachability_check) {
    rep.skip_reason = "reachability_check = False";
    return rep;
  }
  std::vector<std::string> steps;
  for (const auto& st : plan.playbooks) steps.push_back(st.name);
  if (steps.empty()) {
    rep.skip_reason = "no playbooks to run";
    return rep;
  }
  std::map<std::string, std::string> extra;
  for (const auto& [k, v] : kube_version_vars(cfg)) extra[k] = v;
  auto versions = load_versions(
      versions_file.empty() ? playbook_root() / "versions.yml" : versions_file, extra);
  if (!versions) return std::move(versions).error();
  auto probes = plan_probes(plan, cfg, &dep, *versions, steps);
  if (probes.empty()) {
    rep.skip_reason = "the selected playbooks (" + util::join(steps, ", ") + ") download nothing";
    return rep;
  }
  rep.skipped = false;
  if (events) events->emit("reachability", "start");
  rep = run_probes(dep, probes, cfg.infrastructure.reachability_timeout, connect);
  for (const auto& w : rep.warnings) spdlog::warn("reachability: {}", w);
  if (events) {
    nlohmann::json unreachable = nlohmann::json::array();
    for (const auto& u : rep.unreachable)
      unreachable.push_back({{"vm", u.vm},
                             {"url", u.result.url.empty() ? u.probe.url : u.result.url},
                             {"proxy", u.probe.proxy},
                             {"error", u.result.error}});
    events->emit("reachability", "end", "", -1, "",
                 {{"ok", rep.ok()},
                  {"seconds", rep.seconds},
                  {"guests", rep.guests},
                  {"probed", rep.probed},
                  {"satisfied", rep.satisfied},
                  {"unreachable", unreachable},
                  {"errors", rep.errors}});
  }
  if (!rep.ok()) return make_error(describe_unreachable(rep, cfg.infrastructure));
  return rep;
}

}  // namespace continuum::software

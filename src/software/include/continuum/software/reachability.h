#pragma once
// Reachability preflight (docs/software.md, "Reachability"): right after the VMs boot, every guest
// checks over SSH that it reaches each source its playbooks will download from, so a run whose
// guests have no way out fails within seconds with the list of what is unreachable from which VM
// and how to fix it, instead of an apt or get_url timeout minutes into the software phase.
//
// The sources are those of playbooks/versions.yml (`continuum_sources`, one entry per playbook
// step and source), for the playbook steps of the plan (plan::Plan::playbooks). Each guest runs one
// python3 process (python3 is in every guest: Ansible needs it) that probes all its sources in
// parallel: name resolution, TCP connect, then an HTTP HEAD, through the proxy the playbooks would
// use. A source marked `unless: FILE` is skipped in a guest that has FILE (the playbook skips that
// download too), so the offline image, which has everything base, mosquitto and the application
// need, checks nothing.
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "continuum/config/config.h"
#include "continuum/infra/deployment.h"
#include "continuum/plan/plan.h"
#include "continuum/util/expected.h"
#include "continuum/util/ssh.h"

namespace continuum::record {
class EventLog;
}

namespace continuum::software {

/// One entry of playbooks/versions.yml `continuum_sources`, its URL template expanded.
struct SourceEntry {
  std::string step;    ///< playbook step name (plan::PlaybookStep::name)
  std::string hosts;   ///< inventory groups that download it, "a:b" = either
  std::string url;     ///< http(s) URL, or "apt" for the guests' Debian archive
  std::string unless;  ///< guest file whose presence skips the download; "" = always downloaded
};

/// playbooks/versions.yml as continuum reads it.
struct Versions {
  std::map<std::string, std::string> vars;  ///< top-level scalar variables, as written
  std::vector<SourceEntry> sources;
};

/// Substitutes every `{{ name }}` (spaces optional) with vars[name], recursively (a variable may
/// refer to others). Anything else between braces (filters, expressions) or an unknown name is
/// an Error: the file continuum reads must stay within what it can evaluate.
Expected<std::string> expand_template(const std::string& text,
                                      const std::map<std::string, std::string>& vars);

/// Reads `file` (playbooks/versions.yml). `extra` adds the inventory variables the templates may
/// use (kubeversion_major, ...); a template naming a variable that is neither in the file nor in
/// `extra` makes that entry an Error only when `strict`, otherwise the entry is dropped (a
/// Kubernetes source when the resource manager is not Kubernetes). Unknown groups in `hosts`,
/// missing fields and URLs that are not http(s) are Errors naming the file and entry.
Expected<Versions> load_versions(const std::filesystem::path& file,
                                 const std::map<std::string, std::string>& extra = {},
                                 bool strict = false);

/// What one guest probes.
struct Probe {
  std::string url;                  ///< http(s) URL probed ({codename}: the guest's Debian release)
  std::string proxy;                ///< http://host:port the request goes through; "" = direct
  bool always = false;              ///< some step downloads it whatever the guest has
  std::vector<std::string> unless;  ///< else: skipped when every one of these files exists
  std::vector<std::string> steps;   ///< playbook steps that download it
  std::string source;               ///< as in versions.yml ("apt", or the URL)
};

struct GuestProbes {
  std::string node_id;
  std::vector<Probe> probes;
};

/// True when `host` matches the no_proxy list (comma-separated: "*", exact names, ".domain" or
/// "domain" suffixes, IPv4 addresses and a.b.c.d/len networks), as curl and Go read it.
bool no_proxy_matches(const std::string& host, const std::string& no_proxy);

/// The proxy the guests' downloads of `url` use: for apt sources guest_apt_proxy when set,
/// otherwise guest_http_proxy / guest_https_proxy by scheme, unless no_proxy matches the host.
std::string proxy_for(const std::string& url, bool apt, const config::Infrastructure& infra,
                      const std::string& no_proxy);

/// The probes of every guest for the given steps: entries whose step is selected and whose
/// hosts include the guest; `apt` becomes the mirror's InRelease (guest_apt_mirror, else
/// versions.yml's debian_mirror); probes of one URL through one proxy are merged. Guests with
/// nothing to probe are left out.
std::vector<GuestProbes> plan_probes(const plan::Plan& plan, const config::Config& cfg,
                                     const infra::Deployment* dep, const Versions& versions,
                                     const std::vector<std::string>& steps);

/// The guest command: `python3 -c <script> <probes as JSON>`, printing one JSON array with a
/// result per probe. Every probe runs in its own thread; each ends within `timeout_s`.
std::string probe_command(const std::vector<Probe>& probes, double timeout_s);

struct ProbeResult {
  bool skipped = false;  ///< the guest has the `unless` files
  bool ok = false;
  std::string stage;  ///< where it failed: dns | connect | http | timeout
  std::string error;  ///< the reason, for people
  int status = 0;     ///< HTTP status when one came back
  double seconds = 0;
  std::string url;  ///< the URL as the guest probed it ({codename} replaced)
};

/// Parses the output of probe_command for `n` probes.
Expected<std::vector<ProbeResult>> parse_probe_output(const std::string& out, size_t n);

struct Unreachable {
  std::string node_id, vm, ip;
  Probe probe;
  ProbeResult result;
};

struct ReachabilityReport {
  bool skipped = false;
  std::string skip_reason;
  size_t guests = 0;     ///< guests probed
  size_t probed = 0;     ///< probes that ran (not skipped by `unless`)
  size_t satisfied = 0;  ///< probes skipped because the guest has the files
  std::vector<Unreachable> unreachable;
  std::vector<std::string> errors;  ///< guests where the check itself could not run
  std::vector<std::string> warnings;
  double seconds = 0;
  bool ok() const { return unreachable.empty() && errors.empty(); }
};

/// How run_probes reaches a guest (the real one: util::ssh_connect with the deployment's
/// pinned host keys).
using Connector = std::function<Expected<util::RemotePtr>(const infra::DeployedNode&)>;

/// Runs the probes, all guests in parallel, one python3 process per guest. A guest without
/// python3 is a warning (its probes are not run); a guest that cannot be reached over SSH or
/// whose output is not understood is an error of the check.
ReachabilityReport run_probes(const infra::Deployment& dep, const std::vector<GuestProbes>& probes,
                              double timeout_s, const Connector& connect = {});

/// The failure message: what is unreachable from which VM, through which proxy, and how to fix
/// it given the configuration (uplink and guest_internet, proxies, apt proxy/mirror, image).
std::string describe_unreachable(const ReachabilityReport& r, const config::Infrastructure& infra);

/// The preflight as `continuum CONFIG` runs it after the infrastructure phase: skipped with
/// reachability_check = False, infra_only, or when no selected step downloads anything;
/// otherwise plan_probes + run_probes with reachability_timeout, events `reachability`
/// start/end. An Error (exit code 1) carrying describe_unreachable's message when a source is
/// unreachable. `versions_file` defaults to playbook_root()/versions.yml.
Expected<ReachabilityReport> check_reachability(const plan::Plan& plan, const config::Config& cfg,
                                                const infra::Deployment& dep,
                                                record::EventLog* events,
                                                const std::filesystem::path& versions_file = {},
                                                const Connector& connect = {});

}  // namespace continuum::software

#include "continuum/infra/environment_probe.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <charconv>
#include <cstdlib>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "continuum/infra/image.h"
#include "continuum/record/events.h"
#include "continuum/util/files.h"
#include "continuum/util/hash.h"
#include "continuum/util/parallel.h"
#include "continuum/util/strings.h"

namespace continuum::infra {
namespace {
namespace fs = std::filesystem;

// libvirt prints every error to stderr by default; the caller reports them.
void quiet(void*, virErrorPtr) {}

std::string libvirt_error(const std::string& what) {
  const char* m = virGetLastErrorMessage();
  return what + ": " + (m ? m : "unknown libvirt error");
}

/// The value of `attr` in the first `<tag ...>` of `xml` (either quote), or "".
std::string first_attribute(std::string_view xml, std::string_view tag, std::string_view attr) {
  size_t p = xml.find("<" + std::string(tag));
  while (p != std::string_view::npos) {
    size_t after = p + 1 + tag.size();
    if (after < xml.size() && (xml[after] == ' ' || xml[after] == '\t' || xml[after] == '\n'))
      break;
    p = xml.find("<" + std::string(tag), after);
  }
  if (p == std::string_view::npos) return "";
  size_t end = xml.find('>', p);
  std::string_view open =
      xml.substr(p, end == std::string_view::npos ? std::string_view::npos : end - p);
  for (char q : {'\'', '"'}) {
    std::string key = " " + std::string(attr) + "=" + q;
    size_t a = open.find(key);
    if (a == std::string_view::npos) continue;
    size_t v = a + key.size();
    size_t e = open.find(q, v);
    if (e != std::string_view::npos) return std::string(open.substr(v, e - v));
  }
  return "";
}

/// The text of the first `<tag>...</tag>`, entities &amp; &lt; &gt; &apos; &quot; decoded.
std::string first_element_text(std::string_view xml, std::string_view tag) {
  std::string open = "<" + std::string(tag) + ">", close = "</" + std::string(tag) + ">";
  size_t a = xml.find(open);
  if (a == std::string_view::npos) return "";
  a += open.size();
  size_t b = xml.find(close, a);
  if (b == std::string_view::npos) return "";
  std::string_view raw = xml.substr(a, b - a);
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '&') {
      out += raw[i];
      continue;
    }
    static constexpr std::pair<std::string_view, char> kEntities[] = {
        {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&apos;", '\''}, {"&quot;", '"'}};
    bool done = false;
    for (const auto& [ent, c] : kEntities)
      if (raw.substr(i, ent.size()) == ent) {
        out += c;
        i += ent.size() - 1;
        done = true;
        break;
      }
    if (!done) out += '&';
  }
  return out;
}

bool is_url(const std::string& s) { return s.starts_with("http://") || s.starts_with("https://"); }

}  // namespace

Expected<record::HypervisorFacts> probe_hypervisor(const std::string& uri) {
  virSetErrorFunc(nullptr, quiet);
  // Read-only: this only asks, and a read-only socket is open to more users than the admin one.
  virConnectPtr c = virConnectOpenReadOnly(uri.c_str());
  if (!c) return make_error(libvirt_error("libvirt: cannot connect to " + uri));
  struct Close {
    virConnectPtr c;
    ~Close() { virConnectClose(c); }
  } close{c};
  record::HypervisorFacts h;
  h.uri = uri;
  if (const char* t = virConnectGetType(c)) h.type = t;
  unsigned long v = 0;
  // A driver without a hypervisor version answers 0: unknown rather than "0.0.0".
  if (virConnectGetVersion(c, &v) == 0 && v > 0)
    h.hypervisor_version = record::libvirt_version_string(v);
  unsigned long lv = 0;
  if (virConnectGetLibVersion(c, &lv) == 0 && lv > 0)
    h.libvirt_version = record::libvirt_version_string(lv);
  if (char* name = virConnectGetHostname(c)) {
    h.hostname = name;
    free(name);
  }
  virNodeInfo info{};
  if (virNodeGetInfo(c, &info) == 0) {
    h.cpu_arch = info.model;
    h.cpus = static_cast<int>(info.cpus);
    h.memory_kib = info.memory;
  }
  if (h.type.empty()) return make_error(libvirt_error("libvirt: " + uri + ": no driver type"));
  return h;
}

std::string accelerator_of_domain_xml(std::string_view xml) {
  std::string type = first_attribute(xml, "domain", "type");
  if (type == "qemu") return "tcg";  // libvirt's "qemu" domain type is QEMU's TCG emulator
  return type;
}

std::string kernel_of_domain_xml(std::string_view xml) { return first_element_text(xml, "kernel"); }

record::ImageFacts probe_image(const fs::path& domain_kernel, const config::Infrastructure& infra,
                               const fs::path& image_cache, std::vector<std::string>& errors) {
  record::ImageFacts im;
  std::error_code ec;
  // The offline image is found through the domains rather than the configuration: the kernel
  // they boot lies in the image directory the run used, next to its image.json.
  if (!domain_kernel.empty()) {
    fs::path dir = domain_kernel.parent_path();
    fs::path meta = dir / "image.json";
    if (fs::exists(meta, ec)) {
      im.source = "offline";
      im.id = dir.filename().string();
      im.path = dir.string();
      auto text = util::read_file(meta);
      if (!text) {
        errors.push_back(text.error().message);
        return im;
      }
      try {
        auto j = nlohmann::json::parse(*text);
        im.id = j.value("id", im.id);
        im.recipe_sha256 = j.value("recipe_sha256", "");
        im.variant = j.value("variant", "");
        im.suite = j.value("suite", "");
        im.kernel = j.value("kernel", "");
      } catch (const nlohmann::json::exception& e) {
        errors.push_back(meta.string() + ": " + e.what());
      }
      return im;
    }
  }
  std::string src(util::trim(infra.base_image));
  if (src.empty()) {
    errors.push_back(
        "base image: the domains boot no offline image with an image.json" +
        (domain_kernel.empty() ? std::string() : " (kernel " + domain_kernel.string() + ")"));
    return im;
  }
  if (is_url(src)) {
    // As ensure_base_image caches it: url-<sha256(url)[:12]>.img with a .json record.
    std::string key = util::sha256_hex(src).substr(0, 12);
    im.source = "url";
    im.url = src;
    im.id = "url-" + key;
    im.path = (image_cache / (im.id + ".img")).string();
    fs::path meta = image_cache / (im.id + ".json");
    auto text = util::read_file(meta);
    if (!text) {
      errors.push_back("base image: " + text.error().message);
      return im;
    }
    try {
      im.sha256 = nlohmann::json::parse(*text).value("sha256", "");
    } catch (const nlohmann::json::exception& e) {
      errors.push_back(meta.string() + ": " + e.what());
    }
    return im;
  }
  im.source = "path";
  im.path = fs::absolute(util::expand_user(src), ec).string();
  im.id = im.path;
  // Hashing a disk image of gigabytes would hold the run up for seconds to minutes; the checksum
  // is recorded when the configuration gives one (apply verified it).
  im.sha256 = util::to_lower(util::trim(infra.base_image_sha256));
  return im;
}

std::string guest_probe_command() {
  return "uname -r; nproc; sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | "
         "head -n 1";
}

Status parse_guest_output(std::string_view out, record::GuestFacts& g) {
  auto lines = util::split(out, '\n');
  while (!lines.empty() && util::trim(lines.back()).empty()) lines.pop_back();
  if (lines.size() < 2) return make_error("unexpected answer: '" + std::string(out) + "'");
  std::string kernel(util::trim(lines[0]));
  std::string cpus(util::trim(lines[1]));
  int n = 0;
  auto [ptr, ec] = std::from_chars(cpus.data(), cpus.data() + cpus.size(), n);
  if (kernel.empty() || kernel.find(' ') != std::string::npos || ec != std::errc() ||
      ptr != cpus.data() + cpus.size() || n <= 0)
    return make_error("unexpected answer: '" + std::string(out) + "'");
  g.kernel = kernel;
  g.vcpus = n;
  if (lines.size() > 2) g.cpu_model = std::string(util::trim(lines[2]));
  return {};
}

record::Environment collect_environment(const plan::Plan& plan, const config::Infrastructure& infra,
                                        const Deployment& d, const fs::path& run_dir,
                                        const EnvironmentProbeOptions& opt) {
  record::Environment env;
  env.collected = record::rfc3339_ns(std::chrono::system_clock::now());
  env.continuum = record::this_build(opt.source_dir);
  env.host = record::local_host(opt.proc_cpuinfo);

  // Per domain: its host's URI and what its definition says (the file apply defined it from).
  std::map<std::string, std::string> accel_by_uri;
  fs::path kernel;
  for (const auto& n : d.nodes) {
    record::GuestFacts g;
    g.node = n.id;
    g.domain = n.name;
    for (const auto& pn : plan.nodes)
      if (pn.id == n.id && pn.host < plan.hosts.size()) g.uri = plan.hosts[pn.host].libvirt_uri;
    fs::path xml_file = run_dir / "infrastructure" / (n.name + ".xml");
    if (auto xml = util::read_file(xml_file)) {
      g.accelerator = accelerator_of_domain_xml(*xml);
      if (kernel.empty()) kernel = kernel_of_domain_xml(*xml);
      if (!g.uri.empty() && !g.accelerator.empty()) {
        auto [it, inserted] = accel_by_uri.try_emplace(g.uri, g.accelerator);
        if (!inserted && it->second != g.accelerator) it->second = "mixed";
      }
    } else {
      env.errors.push_back("accelerator of " + n.id + ": " + xml.error().message);
    }
    env.guests.push_back(std::move(g));
  }

  for (const auto& h : plan.hosts) {
    bool seen = false;
    for (const auto& x : env.hypervisors) seen = seen || x.uri == h.libvirt_uri;
    if (seen) continue;
    auto facts = probe_hypervisor(h.libvirt_uri);
    if (!facts) {
      env.errors.push_back(facts.error().message);
      record::HypervisorFacts unknown;
      unknown.uri = h.libvirt_uri;
      facts = unknown;
    }
    if (auto it = accel_by_uri.find(h.libvirt_uri); it != accel_by_uri.end())
      facts->accelerator = it->second;
    env.hypervisors.push_back(*facts);
  }

  fs::path cache = opt.image_cache.empty() ? image_cache_dir(infra) : opt.image_cache;
  env.image = probe_image(kernel, infra, cache, env.errors);

  // Guest kernels, all guests at once (one short command each).
  std::mutex mu;
  util::parallel_for(env.guests.size(), util::kAllAtOnce, [&](size_t i) {
    record::GuestFacts& g = env.guests[i];
    const DeployedNode* n = d.find(g.node);
    auto fail = [&](const std::string& why) {
      std::lock_guard lock(mu);
      env.errors.push_back("guest " + g.node + ": " + why);
    };
    if (!n) return fail("not in the deployment");
    if (opt.cancel && opt.cancel->load()) return fail("interrupted");
    Expected<util::RemotePtr> remote = make_error("no connection");
    if (opt.connect) {
      remote = opt.connect(d, *n);
    } else {
      remote = d.connect(*n, opt.timeout, opt.cancel);
    }
    if (!remote) return fail("cannot connect: " + remote.error().message);
    (*remote)->set_cancel(opt.cancel);
    auto r = (*remote)->exec(guest_probe_command(), opt.timeout);
    if (!r) return fail(r.error().message);
    if (r->exit_code != 0)
      return fail("`" + guest_probe_command() + "` exited " + std::to_string(r->exit_code) + ": " +
                  std::string(util::trim(r->err)));
    if (auto st = parse_guest_output(r->out, g); !st) fail(st.error().message);
  });
  return env;
}

Expected<record::Environment> record_environment(const plan::Plan& plan,
                                                 const config::Infrastructure& infra,
                                                 const Deployment& d, const fs::path& run_dir,
                                                 const EnvironmentProbeOptions& opt) {
  auto env = collect_environment(plan, infra, d, run_dir, opt);
  TRY_STATUS(record::write_environment(run_dir, env));
  return env;
}

}  // namespace continuum::infra

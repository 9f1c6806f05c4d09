#include "continuum/record/environment.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <optional>
#include <set>
#include <vector>

#include "continuum/util/files.h"
#include "continuum/util/paths.h"
#include "continuum/util/process.h"
#include "continuum/util/strings.h"
#include "continuum/version.h"

namespace continuum::record {
namespace {
namespace fs = std::filesystem;

/// Unknown is null: a reader must not take "" or 0 for a measured value.
nlohmann::json str_or_null(const std::string& s) {
  return s.empty() ? nlohmann::json() : nlohmann::json(s);
}
nlohmann::json int_or_null(long long v) { return v > 0 ? nlohmann::json(v) : nlohmann::json(); }

/// One line of `git -C dir ARGS` (trimmed), or nullopt when git fails or is missing.
std::optional<std::string> git(const fs::path& dir, const std::vector<std::string>& args) {
  if (!util::have_program("git")) return std::nullopt;
  util::ProcessSpec spec;
  spec.argv = {"git", "-C", dir.string()};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.timeout = std::chrono::seconds(20);
  auto r = util::run_process(spec);
  if (!r || r->exit_code != 0 || r->timed_out) return std::nullopt;
  return std::string(util::trim(r->out));
}

}  // namespace

std::string Environment::accelerator() const {
  std::set<std::string> seen;
  for (const auto& h : hypervisors)
    if (!h.accelerator.empty()) seen.insert(h.accelerator);
  for (const auto& g : guests)
    if (!g.accelerator.empty()) seen.insert(g.accelerator);
  return util::join(std::vector<std::string>(seen.begin(), seen.end()), "+");
}

nlohmann::json to_json(const Environment& env) {
  nlohmann::json j;
  j["format"] = "continuum-environment";
  j["version"] = 1;
  j["collected"] = str_or_null(env.collected);
  const auto& b = env.continuum;
  j["continuum"] = {{"version", str_or_null(b.version)},
                    {"git_commit", str_or_null(b.git_commit)},
                    {"git_dirty", b.git_known ? nlohmann::json(b.git_dirty) : nlohmann::json()}};
  const auto& h = env.host;
  j["host"] = {{"hostname", str_or_null(h.hostname)},
               {"cpu_model", str_or_null(h.cpu_model)},
               {"logical_cpus", int_or_null(h.logical_cpus)},
               {"os", str_or_null(h.os)},
               {"kernel_release", str_or_null(h.kernel_release)},
               {"kernel_version", str_or_null(h.kernel_version)},
               {"machine", str_or_null(h.machine)}};
  j["accelerator"] = str_or_null(env.accelerator());
  nlohmann::json hv = nlohmann::json::object();
  for (const auto& x : env.hypervisors)
    hv[x.uri] = {{"type", str_or_null(x.type)},
                 {"hypervisor_version", str_or_null(x.hypervisor_version)},
                 {"libvirt_version", str_or_null(x.libvirt_version)},
                 {"hostname", str_or_null(x.hostname)},
                 {"cpu_arch", str_or_null(x.cpu_arch)},
                 {"cpus", int_or_null(x.cpus)},
                 {"memory_kib", int_or_null(static_cast<long long>(x.memory_kib))},
                 {"accelerator", str_or_null(x.accelerator)}};
  j["hypervisors"] = hv;
  const auto& im = env.image;
  nlohmann::json image = {{"source", str_or_null(im.source)},
                          {"id", str_or_null(im.id)},
                          {"path", str_or_null(im.path)}};
  // Only the fields of the image's kind: an offline image has no URL, a downloaded one no recipe.
  if (im.source == "offline") {
    image["recipe_sha256"] = str_or_null(im.recipe_sha256);
    image["variant"] = str_or_null(im.variant);
    image["suite"] = str_or_null(im.suite);
    image["kernel"] = str_or_null(im.kernel);
  } else {
    if (im.source == "url") image["url"] = str_or_null(im.url);
    image["sha256"] = str_or_null(im.sha256);
  }
  j["image"] = image;
  nlohmann::json guests = nlohmann::json::object();
  for (const auto& g : env.guests)
    guests[g.node] = {
        {"domain", str_or_null(g.domain)},           {"uri", str_or_null(g.uri)},
        {"accelerator", str_or_null(g.accelerator)}, {"kernel", str_or_null(g.kernel)},
        {"cpu_model", str_or_null(g.cpu_model)},     {"vcpus", int_or_null(g.vcpus)}};
  j["guests"] = guests;
  j["errors"] = env.errors;
  return j;
}

std::string libvirt_version_string(unsigned long long v) {
  return std::to_string(v / 1000000) + "." + std::to_string((v / 1000) % 1000) + "." +
         std::to_string(v % 1000);
}

std::string cpu_model_from_cpuinfo(std::string_view text) {
  // x86 first; the others are what ARM ("Model", older "Processor") and MIPS ("cpu model") use.
  for (std::string_view key : {"model name", "Model", "cpu model", "Processor"}) {
    for (const auto& line : util::split(text, '\n')) {
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      if (util::trim(std::string_view(line).substr(0, colon)) != key) continue;
      auto value = util::trim(std::string_view(line).substr(colon + 1));
      if (!value.empty()) return std::string(value);
    }
  }
  return "";
}

HostFacts local_host(const fs::path& proc_cpuinfo) {
  HostFacts h;
  char name[HOST_NAME_MAX + 1] = "";
  if (gethostname(name, sizeof name) == 0) h.hostname = name;
  if (auto text = util::read_file(proc_cpuinfo)) h.cpu_model = cpu_model_from_cpuinfo(*text);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  h.logical_cpus = n > 0 ? static_cast<int>(n) : 0;
  utsname u{};
  if (uname(&u) == 0) {
    h.os = u.sysname;
    h.kernel_release = u.release;
    h.kernel_version = u.version;
    h.machine = u.machine;
  }
  return h;
}

BuildFacts this_build(const fs::path& source_dir) {
  BuildFacts b;
  b.version = kVersion;
  fs::path dir = source_dir;
  if (dir.empty()) {
    // An installed binary (<prefix>/bin with <prefix>/share/continuum) was not built from the
    // tree kSourceDir names any more, so that tree's HEAD would be a guess: no commit then.
    auto layout = util::current_layout();
    std::error_code ec;
    if (!layout.exe_dir.empty() &&
        fs::is_directory(layout.exe_dir / ".." / "share" / "continuum" / "playbooks", ec))
      return b;
    dir = kSourceDir;
  }
  auto head = git(dir, {"rev-parse", "--verify", "HEAD"});
  if (!head || head->size() != 40) return b;
  auto status = git(dir, {"status", "--porcelain", "--untracked-files=no"});
  if (!status) return b;
  b.git_commit = *head;
  b.git_known = true;
  b.git_dirty = !status->empty();
  return b;
}

Status write_environment(const fs::path& run_dir, const Environment& env) {
  return util::write_file_atomic(run_dir / kEnvironmentFile, to_json(env).dump(2) + "\n");
}

}  // namespace continuum::record

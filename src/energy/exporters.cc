#include "continuum/energy/exporters.h"

#include <curl/curl.h>
#include <poll.h>
#include <unistd.h>

#include <cctype>
#include <fstream>
#include <sstream>

#include "continuum/energy/scraper.h"
#include "continuum/util/files.h"
#include "continuum/util/strings.h"

namespace continuum::energy {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

/// utime + stime of a process (also of a zombie, which keeps them until reaped), in seconds.
std::optional<double> cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name (field 2) may hold blanks and parentheses: fields count from the last ')'.
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(text.substr(close + 2));
  std::string f;
  unsigned long long utime = 0, stime = 0;
  for (int field = 3; field <= 15 && rest >> f; ++field) {
    if (field == 14) utime = std::stoull(f);
    if (field == 15) stime = std::stoull(f);
  }
  const long hz = ::sysconf(_SC_CLK_TCK);
  return static_cast<double>(utime + stime) / static_cast<double>(hz > 0 ? hz : 100);
}

/// True when `url` answers 200 within a second.
bool answers(const std::string& url) {
  CURL* c = curl_easy_init();
  if (!c) return false;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 1000L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");  // exporters are local: never through a proxy
  curl_easy_setopt(
      c, CURLOPT_WRITEFUNCTION,
      +[](char*, size_t size, size_t n, void*) -> size_t { return size * n; });
  long code = 0;
  const bool ok = curl_easy_perform(c) == CURLE_OK &&
                  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200;
  curl_easy_cleanup(c);
  return ok;
}

std::string log_tail(const fs::path& log) {
  auto text = util::read_file(log);
  if (!text || text->empty()) return "(its log is empty)";
  auto lines = util::split(*text, '\n');
  while (!lines.empty() && util::trim(lines.back()).empty()) lines.pop_back();
  const size_t from = lines.size() > 5 ? lines.size() - 5 : 0;
  std::string out = "last lines of " + log.string() + ":";
  for (size_t i = from; i < lines.size(); ++i) out += "\n    " + lines[i];
  return out;
}

}  // namespace

Expected<std::vector<ExporterLaunch>> plan_exporters(const config::Config& cfg, const plan::Plan& p,
                                                     const fs::path& run_dir) {
  const auto& e = cfg.energy;
  if (e.exporter_command.empty())
    return make_error("[energy] exporter_command is empty: nothing to start", ExitCode::usage);
  std::vector<ExporterLaunch> out;
  const auto targets = make_targets(e, p);
  for (size_t i = 0; i < targets.size(); ++i) {
    ExporterLaunch l;
    l.vm = targets[i].vm;
    l.index = static_cast<int>(i);
    l.port = e.host_port_base + l.index;
    l.url = targets[i].url;
    l.log = run_dir / "energy" / "exporters" / (l.vm + ".log");
    const std::map<std::string, std::string> vars = {
        {"vm", l.vm},
        {"index", std::to_string(l.index)},
        {"port", std::to_string(l.port)},
        {"share", (fs::path(cfg.infrastructure.virtiofs_host_dir) / l.vm).string()},
        {"address", e.host_address}};
    bool leading = true;
    for (const auto& word : e.exporter_command) {
      std::string err;
      auto w = util::expand_placeholders(word, vars, &err);
      if (!w) return make_error("[energy] exporter_command: " + err, ExitCode::usage);
      if (leading && config::is_env_assignment(*w)) {
        const size_t eq = w->find('=');
        l.env[w->substr(0, eq)] = w->substr(eq + 1);
        continue;
      }
      leading = false;
      l.argv.push_back(std::move(*w));
    }
    if (l.argv.empty())
      return make_error("[energy] exporter_command: only NAME=value words, no program",
                        ExitCode::usage);
    out.push_back(std::move(l));
  }
  return out;
}

Expected<std::unique_ptr<ExporterSet>> ExporterSet::start(
    const std::vector<ExporterLaunch>& launches, double timeout_s, const OnStarted& on_started,
    OnStopped on_stopped, const std::atomic<bool>* cancel) {
  std::unique_ptr<ExporterSet> set(new ExporterSet());
  set->on_stopped_ = std::move(on_stopped);
  for (auto& l : launches) {
    std::error_code ec;
    fs::create_directories(l.log.parent_path(), ec);
    util::ProcessSpec spec;
    spec.argv = l.argv;
    spec.env = l.env;
    auto proc = util::Background::start(spec, l.log);
    if (!proc)
      return make_error("energy: exporter of " + l.vm + " (" + util::shell_join(l.argv) +
                        ") did not start: " + proc.error().message);
    auto id = util::process_identity((*proc)->pid());
    set->launches_.push_back(l);
    set->procs_.push_back(std::move(*proc));
    set->started_.push_back(Clock::now());
    if (id && on_started) {
      if (auto st = on_started(l, *id); !st) return st.error();  // ~ExporterSet stops them
    }
  }
  // Wait until every exporter answers. Polling is the only way to learn that a foreign program's
  // listener is up; 100 ms between rounds costs nothing next to the start of a Scaphandre.
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(timeout_s));
  std::vector<bool> up(set->launches_.size(), false);
  for (;;) {
    size_t pending = 0;
    for (size_t i = 0; i < up.size(); ++i) {
      if (up[i]) continue;
      const auto& l = set->launches_[i];
      if (!set->procs_[i]->running())
        return make_error("energy: the exporter of " + l.vm + " (" + util::shell_join(l.argv) +
                          ") exited with status " +
                          std::to_string(set->procs_[i]->exit_status().value_or(-1)) +
                          " before it answered " + l.url + "; " + log_tail(l.log));
      up[i] = answers(l.url);
      if (!up[i]) ++pending;
    }
    if (pending == 0) break;
    if (cancel && cancel->load())
      return make_error("energy: interrupted while waiting for the exporters",
                        ExitCode::interrupted);
    if (Clock::now() >= deadline) {
      std::string msg = "energy: exporter(s) not answering after " +
                        util::format_number(timeout_s) + " s ([energy] exporter_start_timeout):";
      for (size_t i = 0; i < up.size(); ++i)
        if (!up[i])
          msg += "\n  " + set->launches_[i].vm + ": " + set->launches_[i].url + " (" +
                 util::shell_join(set->launches_[i].argv) + "); " + log_tail(set->launches_[i].log);
      return make_error(msg);
    }
    ::poll(nullptr, 0, 100);
  }
  return set;
}

ExporterSet::~ExporterSet() { stop(); }

std::vector<pid_t> ExporterSet::pids() const {
  std::vector<pid_t> out;
  for (const auto& p : procs_) out.push_back(p->pid());
  return out;
}

std::vector<ExporterUsage> ExporterSet::stop() {
  std::vector<ExporterUsage> out;
  for (size_t i = 0; i < procs_.size(); ++i) {
    if (!procs_[i]) continue;
    ExporterUsage u;
    u.vm = launches_[i].vm;
    u.pid = procs_[i]->pid();
    // Read before anything reaps it: a zombie still has its times, a reaped child has none.
    u.cpu_seconds = cpu_seconds(u.pid).value_or(0);
    u.wall_seconds = std::chrono::duration<double>(Clock::now() - started_[i]).count();
    if (!procs_[i]->running()) u.died_with = procs_[i]->exit_status();
    procs_[i]->stop();
    procs_[i].reset();
    if (on_stopped_) on_stopped_(launches_[i]);
    out.push_back(std::move(u));
  }
  procs_.clear();
  return out;
}

std::string describe_usage(const std::vector<ExporterUsage>& usage) {
  std::string out;
  for (const auto& u : usage) {
    out += u.vm + ": PID " + std::to_string(u.pid) + ", CPU " +
           util::format_fixed(u.cpu_percent(), 2) + " % of one core over " +
           util::format_fixed(u.wall_seconds, 1) + " s";
    if (u.died_with)
      out += ", had exited before the end (status " + std::to_string(*u.died_with) + ")";
    out += "\n";
  }
  return out;
}

}  // namespace continuum::energy

#include "continuum/energy/scraper.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "continuum/energy/energy.h"
#include "continuum/energy/prometheus.h"
#include "continuum/record/events.h"
#include "continuum/util/strings.h"

namespace continuum::energy {
namespace {

std::string url_host(const std::string& h) {
  // A bare IPv6 address needs brackets in a URL.
  if (h.find(':') != std::string::npos && h.front() != '[') return "[" + h + "]";
  return h;
}

std::string with_slash(const std::string& path) {
  if (path.empty() || path[0] != '/') return "/" + path;
  return path;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* buf = static_cast<std::string*>(user);
  buf->append(data, size * n);
  return size * n;
}

// curl_global_init is not thread-safe; do it once before any scraper thread exists.
void curl_init_once() {
  static bool done = [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return true;
  }();
  (void)done;
}

using SteadyClock = std::chrono::steady_clock;

// A target's curl handle and the buffers curl writes into. Not copyable: curl keeps pointers to
// `body` and `errbuf` for as long as the handle lives.
struct Curl {
  Curl() = default;
  Curl(const Curl&) = delete;
  Curl& operator=(const Curl&) = delete;

  CURL* handle = nullptr;
  struct curl_slist* headers = nullptr;
  std::string body;
  char errbuf[CURL_ERROR_SIZE] = {0};
};

// false when libcurl cannot make a handle.
bool open_curl(Curl& c, const std::string& url, double timeout_s) {
  c.handle = curl_easy_init();
  if (!c.handle) return false;
  CURL* curl = c.handle;
  c.body.reserve(1 << 16);
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &c.body);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, c.errbuf);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_s * 1000));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_s * 1000));
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");         // never send exporter traffic via a proxy
  curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");  // gzip if the exporter offers it
  c.headers = curl_slist_append(nullptr, "Accept: text/plain;version=0.0.4");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, c.headers);
  return true;
}

struct Exchange {
  SteadyClock::time_point mono0, mono1;
  std::chrono::system_clock::time_point wall0;
  std::string err;  // "" when the exporter answered 200
};

Exchange perform(Curl& c) {
  Exchange x;
  c.body.clear();
  c.errbuf[0] = 0;
  x.mono0 = SteadyClock::now();
  x.wall0 = std::chrono::system_clock::now();
  CURLcode rc = curl_easy_perform(c.handle);
  x.mono1 = SteadyClock::now();
  long status = 0;
  curl_easy_getinfo(c.handle, CURLINFO_RESPONSE_CODE, &status);
  if (rc != CURLE_OK)
    x.err = c.errbuf[0] ? c.errbuf : curl_easy_strerror(rc);
  else if (status != 200)
    x.err = "HTTP " + std::to_string(status);
  return x;
}

// The `up` row of one scrape (kUpMetric): 1 with the VM's energy data, else 0 and the reason.
void append_up(std::string& rows, const SampleRow& base, bool ok, const std::string& err) {
  SampleRow r = base;
  r.metric = kUpMetric;
  r.value = ok ? 1 : 0;
  if (!ok) {
    prom::Label l{"error", err};
    r.labels = prom::canonical_labels(std::span<const prom::Label>(&l, 1));
  }
  rows += samples_csv_line(r);
}

struct Stamp {
  double t = 0;
  std::string wall;
};
Stamp midpoint(const Exchange& x, SteadyClock::time_point run_start) {
  auto half = (x.mono1 - x.mono0) / 2;
  return {std::chrono::duration<double>(x.mono0 + half - run_start).count(),
          record::rfc3339_ns(
              x.wall0 + std::chrono::duration_cast<std::chrono::system_clock::duration>(half))};
}

struct Parsed {
  size_t kept = 0;
  bool energy_sample = false;
  prom::ParseResult res;
};

// The kept samples of one answer and its `up` row as samples.csv lines in `rows` (cleared first;
// reused so its buffer is).
Parsed to_rows(prom::Parser& parser, const Target& target, const KindSpec& kind, const Stamp& at,
               std::string_view body, std::string& rows) {
  rows.clear();
  Parsed p;
  SampleRow r;
  r.time = at.wall;
  r.t = at.t;
  r.vm = target.vm;
  r.target = target.url;
  p.res = parser.parse(body, [&](const prom::Sample& s) {
    if (!keep_sample(kind, s, target.vm)) return;
    if (selects(kind, s.name, target.vm, [&](std::string_view n) { return s.label(n); }))
      p.energy_sample = true;
    r.metric.assign(s.name);
    r.labels = prom::canonical_labels(s.labels);
    r.value = s.value;
    rows += samples_csv_line(r);
    ++p.kept;
  });
  r.labels.clear();
  append_up(rows, r, p.energy_sample,
            p.energy_sample ? "" : "answered without " + wanted_metrics(kind, target.vm));
  return p;
}

SteadyClock::time_point next_tick(SteadyClock::time_point next, SteadyClock::duration period) {
  next += period;
  auto now = SteadyClock::now();
  if (next < now) {
    // A slow scrape: skip the missed ticks instead of firing them back to back.
    auto behind = (now - next) / period + 1;
    next += behind * period;
  }
  return next;
}

}  // namespace

std::vector<Target> make_targets(const config::Energy& e, const plan::Plan& p,
                                 const infra::Deployment* d) {
  std::vector<Target> out;
  for (size_t i = 0; i < p.nodes.size(); ++i) {
    const auto& n = p.nodes[i];
    Target t;
    t.vm = n.name;
    t.kind = e.exporter_kind;
    if (e.exporter_kind == config::ExporterKind::kepler) {
      // One Kepler on the host sees every VM's qemu process and names it (vm_name).
      t.url = "http://" + url_host(e.host_address) + ":" + std::to_string(e.host_port_base) +
              with_slash(e.path);
    } else if (e.exporter == config::Exporter::guest) {
      std::string ip = n.ip;
      if (d) {
        if (const auto* dn = d->find(n.id); dn && !dn->ip.empty()) ip = dn->ip;
      }
      t.url = "http://" + url_host(ip) + ":" + std::to_string(e.guest_port) + with_slash(e.path);
    } else {
      t.url = "http://" + url_host(e.host_address) + ":" +
              std::to_string(e.host_port_base + static_cast<int>(i)) + with_slash(e.path);
    }
    out.push_back(std::move(t));
  }
  return out;
}

bool keep_metric(std::string_view name, bool has_vmname) {
  const KindSpec& k = kind_spec(config::ExporterKind::scaphandre);
  for (auto prefix : k.keep)
    if (name.starts_with(prefix)) return true;
  for (const auto& c : k.keep_if)
    if (name.starts_with(c.prefix)) return has_vmname;
  return false;
}

bool keep_sample(const KindSpec& k, const prom::Sample& s, std::string_view vm) {
  if (!k.vm_label.empty()) {
    // A shared exporter: only this VM's series (the others are the other targets').
    auto v = s.label(k.vm_label);
    if (v && *v != vm) return false;
  }
  for (auto prefix : k.keep)
    if (s.name.starts_with(prefix)) return true;
  for (const auto& c : k.keep_if) {
    if (!s.name.starts_with(c.prefix)) continue;
    // An empty value is no label (Prometheus' rule): node-exporter's textfile collector gives
    // every sample of a family all the family's label names, empty where a line had none.
    auto v = s.label(c.needs_label);
    return v && !v->empty();
  }
  return false;
}

ScrapeRows rows_from_exposition(const Target& target, std::string_view body, double t,
                                const std::string& wall) {
  prom::Parser parser;
  std::string text;
  Parsed p = to_rows(parser, target, kind_spec(target.kind), {t, wall}, body, text);
  ScrapeRows out;
  out.energy_sample = p.energy_sample;
  out.parse_errors = p.res.errors.size();
  // Back through the CSV reader: what is tested is what lands in samples.csv.
  std::vector<std::string> f;
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    SampleRow r;
    if (!util::csv_split(line, f) || f.size() != 7) continue;
    r.time = f[0];
    r.t = std::stod(f[1]);
    r.vm = f[2];
    r.target = f[3];
    r.metric = f[4];
    r.labels = f[5];
    r.value = std::stod(f[6]);
    out.rows.push_back(std::move(r));
  }
  return out;
}

Scraper::Scraper(ScraperOptions opts) : opts_(std::move(opts)) {}

Scraper::~Scraper() { stop(); }

Status Scraper::start(const std::vector<Target>& targets, const std::filesystem::path& run_dir,
                      std::chrono::steady_clock::time_point run_start) {
  if (running()) return make_error("energy scraper already running");
  if (!(opts_.interval > 0)) return make_error("energy scrape interval must be > 0");
  curl_init_once();
  auto dir = run_dir / "energy";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  auto path = dir / "samples.csv";
  bool fresh = !std::filesystem::exists(path) || std::filesystem::file_size(path, ec) == 0;
  file_ = std::fopen(path.c_str(), "ae");
  if (!file_) return make_error(path.string() + ": cannot open for writing");
  if (fresh) {
    std::string h = samples_csv_header() + "\n";
    std::fwrite(h.data(), 1, h.size(), file_);
    std::fflush(file_);
  }
  targets_ = targets;
  run_start_ = run_start;
  stopping_ = false;
  stats_.clear();
  for (const auto& t : targets_) {
    TargetStats s;
    s.vm = t.vm;
    s.url = t.url;
    stats_.push_back(std::move(s));
  }
  started_ = std::chrono::steady_clock::now();
  stopped_ = {};
  spdlog::info("energy: scraping {} exporter(s) every {} s ({})", targets_.size(), opts_.interval,
               targets_.empty() ? "" : std::string(kind_spec(targets_[0].kind).name));
  for (size_t i = 0; i < targets_.size(); ++i) threads_.emplace_back([this, i] { run_target(i); });
  return {};
}

void Scraper::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  std::lock_guard lock(mu_);
  if (started_ != std::chrono::steady_clock::time_point{} &&
      stopped_ == std::chrono::steady_clock::time_point{})
    stopped_ = std::chrono::steady_clock::now();
  if (file_) {
    std::fclose(file_);
    file_ = nullptr;
    for (const auto& s : stats_)
      spdlog::info("energy: {} ({}): {} scrapes ok, {} failed, {} samples kept", s.vm, s.url,
                   s.scrapes_ok, s.scrapes_failed, s.samples);
  }
}

std::vector<TargetStats> Scraper::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

double Scraper::window_seconds() const {
  std::lock_guard lock(mu_);
  using SteadyClock = std::chrono::steady_clock;
  if (started_ == SteadyClock::time_point{}) return 0;
  auto end = stopped_ == SteadyClock::time_point{} ? SteadyClock::now() : stopped_;
  return std::chrono::duration<double>(end - started_).count();
}

std::vector<CoverageVerdict> judge_coverage(const std::vector<TargetStats>& stats, double window_s,
                                            double interval_s, double min_coverage) {
  std::vector<CoverageVerdict> out;
  // The first scrape starts at once and one follows every interval, so a window of W seconds
  // allows floor(W / interval) + 1; one fewer is expected so that a scrape cut off by stop()
  // never counts against an exporter.
  const double expected = interval_s > 0 ? std::max(1.0, std::floor(window_s / interval_s)) : 1.0;
  for (const auto& s : stats) {
    CoverageVerdict v;
    v.vm = s.vm;
    v.url = s.url;
    v.obtained = s.energy_scrapes;
    v.expected = expected;
    v.coverage = std::min(1.0, static_cast<double>(v.obtained) / expected);
    v.ok = v.coverage + 1e-9 >= min_coverage;
    if (!v.ok) {
      v.reason = !s.last_error.empty()                  ? s.last_error
                 : s.scrapes_ok + s.scrapes_failed == 0 ? "no scrape completed in the window"
                                                        : "too few scrapes completed in the window";
    }
    out.push_back(std::move(v));
  }
  return out;
}

Status check_coverage(const Scraper& scraper, double interval_s, double min_coverage,
                      std::vector<CoverageVerdict>* verdicts) {
  auto v = judge_coverage(scraper.stats(), scraper.window_seconds(), interval_s, min_coverage);
  std::string msg = coverage_failure(v, min_coverage);
  if (verdicts) *verdicts = std::move(v);
  if (!msg.empty()) return make_error(msg);
  return {};
}

std::string coverage_failure(const std::vector<CoverageVerdict>& verdicts, double min_coverage) {
  std::string s;
  size_t bad = 0;
  for (const auto& v : verdicts) {
    if (v.ok) continue;
    ++bad;
    s += fmt::format("  {}: {} gave {} of {} expected samples ({:.0f} %): {}\n", v.vm, v.url,
                     v.obtained, static_cast<size_t>(v.expected), 100 * v.coverage, v.reason);
  }
  if (!bad) return "";
  return fmt::format(
             "energy: {} of {} VM(s) below [energy] min_coverage = {} (the fraction of expected "
             "scrapes "
             "that gave a power or energy sample); their energy figures would be missing or "
             "wrong:\n",
             bad, verdicts.size(), min_coverage) +
         s +
         "  Check that each exporter runs and answers at its URL (exporter, host_address, "
         "host_port_base, guest_port, path in [energy]) and serves the metrics of "
         "[energy] exporter_kind; the results are kept.";
}

void Scraper::write_rows(const std::string& rows) {
  std::lock_guard lock(mu_);
  if (!file_ || rows.empty()) return;
  std::fwrite(rows.data(), 1, rows.size(), file_);
  std::fflush(file_);
}

bool Scraper::enter_netns(size_t i, const std::string& url) {
  // setns() on this thread only: the rest of the process keeps its network.
  std::string ns = "/run/netns/" + opts_.netns;
  int fd = ::open(ns.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
    spdlog::warn("energy: cannot enter network namespace {} to scrape {}; not scraping it",
                 opts_.netns, url);
    if (fd >= 0) ::close(fd);
    std::lock_guard lock(mu_);
    stats_[i].last_error = "cannot enter network namespace " + opts_.netns;
    return false;
  }
  ::close(fd);
  return true;
}

void Scraper::count_answer(size_t i, const std::string& url, size_t kept, size_t parse_errors,
                           bool energy_sample, bool& down) {
  std::lock_guard lock(mu_);
  auto& st = stats_[i];
  ++st.scrapes_ok;
  st.samples += kept;
  st.parse_errors += parse_errors;
  if (energy_sample)
    ++st.energy_scrapes;
  else
    st.last_error =
        "answered without " + wanted_metrics(kind_spec(targets_[i].kind), targets_[i].vm);
  if (down) spdlog::info("energy: {} answers again", url);
  down = false;
}

void Scraper::count_failure(size_t i, const Target& target, const std::string& err, bool& down) {
  std::lock_guard lock(mu_);
  auto& st = stats_[i];
  ++st.scrapes_failed;
  st.last_error = err;
  if (!down)
    spdlog::warn("energy: scraping {} ({}) failed: {}; retrying every {} s", target.vm, target.url,
                 err, opts_.interval);
  down = true;
}

void Scraper::run_target(size_t i) {
  const Target target = targets_[i];
  const KindSpec& kind = kind_spec(target.kind);
  if (!opts_.netns.empty() && !enter_netns(i, target.url)) return;
  Curl c;
  if (!open_curl(c, target.url, opts_.timeout)) {
    spdlog::warn("energy: libcurl init failed; not scraping {}", target.url);
    return;
  }

  prom::Parser parser;
  std::string rows;
  bool down = false;
  const auto period = std::chrono::duration_cast<SteadyClock::duration>(
      std::chrono::duration<double>(opts_.interval));
  auto next = SteadyClock::now();
  for (;;) {
    // On stop, one last scrape: the sampled range then reaches the stop, so the last phase
    // (e.g. the last repeat, which ends just before) is covered to its end, not to the previous
    // tick; nothing is extrapolated past the last sample.
    bool last = false;
    {
      std::unique_lock lock(mu_);
      last = cv_.wait_until(lock, next, [this] { return stopping_; });
    }
    Exchange x = perform(c);
    const Stamp at = midpoint(x, run_start_);
    if (x.err.empty()) {
      Parsed got = to_rows(parser, target, kind, at, c.body, rows);
      write_rows(rows);
      if (!got.res.ok())
        spdlog::debug("energy: {}: {} malformed line(s): {}", target.url, got.res.errors.size(),
                      got.res.summary(3));
      count_answer(i, target.url, got.kept, got.res.errors.size(), got.energy_sample, down);
    } else {
      rows.clear();
      SampleRow r;
      r.time = at.wall;
      r.t = at.t;
      r.vm = target.vm;
      r.target = target.url;
      append_up(rows, r, false, x.err);
      write_rows(rows);
      count_failure(i, target, x.err, down);
    }
    if (last) break;
    next = next_tick(next, period);
  }
  curl_slist_free_all(c.headers);
  curl_easy_cleanup(c.handle);
}

}  // namespace continuum::energy

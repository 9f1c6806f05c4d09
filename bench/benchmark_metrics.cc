// Prints how long the image_classification metrics take for a large run: 8 endpoints x 300 s x
// 5 frames/s (the original's biggest endpoint-scaling experiment), parsed from text like the
// programs print, then the percentile statistics and tables. Figures, not a test.
#include <fmt/format.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>

#include "continuum/benchmark/metrics.h"

using namespace continuum::benchmark;

namespace {
std::string stamp(int64_t ns) {
  time_t s = static_cast<time_t>(ns / 1000000000);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:09d}Z", buf, ns % 1000000000);
}
}  // namespace

int main() {
  constexpr int kEndpoints = 8, kFrames = 300 * 5;
  std::mt19937 rng(1);
  std::normal_distribution<double> lat(190e6, 25e6), proc(80e6, 10e6);
  std::vector<std::string> worker_logs(1), endpoint_logs(kEndpoints);
  const int64_t base = 1764403200LL * 1000000000;
  for (int e = 0; e < kEndpoints; ++e) {
    std::string& out = endpoint_logs[static_cast<size_t>(e)];
    for (int i = 0; i < kFrames; ++i) {
      const int64_t t = base + i * 200000000LL + e * (200000000LL / kEndpoints);
      out += fmt::format("{} Sending data (bytes): {}\n", stamp(t), 60000 + rng() % 10000);
      out += fmt::format("{} Preparation and preprocessing (ns): {}\n", stamp(t + 1000),
                         400000 + rng() % 100000);
      out += fmt::format("{} Latency (ns): {}\n", stamp(t + 190000000),
                         static_cast<int64_t>(lat(rng)));
      worker_logs[0] += fmt::format(
          "{} [Worker-1] Read image and apply ML\n{} [Worker-1] Latency (ns): {}\n"
          "{} [Worker-1] Processing (ns): {}\n{} [Worker-1] Get item\n",
          stamp(t + 100000000), stamp(t + 100000100), static_cast<int64_t>(lat(rng) / 2),
          stamp(t + 180000000), static_cast<int64_t>(proc(rng)), stamp(t + 180000100));
    }
  }
  size_t bytes = worker_logs[0].size();
  for (const auto& s : endpoint_logs) bytes += s.size();
  const auto t0 = std::chrono::steady_clock::now();
  AppMetrics m;
  m.mode = "cloud";
  m.workers.push_back(worker_metrics(0, "cloud0", parse_worker_log(worker_logs[0])));
  for (int e = 0; e < kEndpoints; ++e)
    m.endpoints.push_back(endpoint_metrics(
        e, 0, "endpoint", parse_endpoint_log(endpoint_logs[static_cast<size_t>(e)])));
  const std::string tables = render_app_tables(m);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("%s", tables.c_str());
  std::printf(
      "parsed %d frames (%.1f MB of log lines) into the tables in %.3f s (%.1f MB/s); peak RSS %ld "
      "MB\n",
      kEndpoints * kFrames, static_cast<double>(bytes) / 1e6, secs,
      static_cast<double>(bytes) / 1e6 / secs, ru.ru_maxrss / 1024);
  return 0;
}

// What scraping costs continuum: its own CPU time while energy::Scraper scrapes N real
// prometheus-node-exporter processes (textfile collector only, on loopback) that serve a
// Scaphandre-sized exposition (host, sockets, RAPL domains, a few hundred processes with long
// cmdline labels, as `scaphandre prometheus` serves on a busy host), at interval 1 s. Prints, per
// N, continuum's CPU % per exporter = CPU seconds of this process / wall seconds / N, next to the
// exporters' own CPU % (context: what each node-exporter spends answering).
//   build/bench/bench_scrape_cost [seconds=20] [N...=1 4 8]
// The exporters are this program's children, stopped by PID.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "continuum/energy/scraper.h"
#include "continuum/util/files.h"
#include "continuum/util/process.h"

extern char** environ;

using namespace continuum;
namespace fs = std::filesystem;
using clk = std::chrono::steady_clock;

namespace {

// A Scaphandre 1.0 exposition: 2 sockets × 3 domains, `procs` processes × 6 per-process metrics
// (every process is listed; only qemu's rows name a VM). Valid for the textfile collector: one
// group per metric, unique label sets.
std::string scaphandre_exposition(int procs) {
  std::mt19937 rng(7);
  std::string s;
  s += "# HELP scaph_host_power_microwatts Power measurement on the whole host, in microwatts\n"
       "# TYPE scaph_host_power_microwatts gauge\n"
       "scaph_host_power_microwatts{value_source=\"powercap_rapl_psys\"} 17560473\n"
       "# HELP scaph_host_energy_microjoules Raw extracted energy consumption, in microjoules\n"
       "# TYPE scaph_host_energy_microjoules counter\n"
       "scaph_host_energy_microjoules{value_source=\"powercap_rapl_psys\"} 93841732112\n"
       "# HELP scaph_domain_power_microwatts Power of a RAPL domain\n"
       "# TYPE scaph_domain_power_microwatts gauge\n";
  for (int sock = 0; sock < 2; ++sock)
    for (const char* d : {"core", "uncore", "dram"})
      s += "scaph_domain_power_microwatts{domain_id=\"0\",domain_name=\"" + std::string(d) +
           "\",socket_id=\"" + std::to_string(sock) + "\"} " + std::to_string(rng() % 20000000) +
           "\n";
  s += "# HELP scaph_self_cpu_usage_percent CPU % consumed by scaphandre\n"
       "# TYPE scaph_self_cpu_usage_percent gauge\nscaph_self_cpu_usage_percent 0.7\n";
  const char* metrics[] = {"scaph_process_power_consumption_microwatts",
                           "scaph_process_cpu_usage_percentage",
                           "scaph_process_memory_bytes",
                           "scaph_process_memory_virtual_bytes",
                           "scaph_process_disk_read_bytes",
                           "scaph_process_disk_write_bytes"};
  const char* exes[] = {"python3", "postgres", "java", "nginx", "containerd", "sshd"};
  for (const char* m : metrics) {
    s += std::string("# HELP ") + m + " Per-process metric as Scaphandre exports it\n# TYPE " + m +
         " gauge\n";
    for (int p = 0; p < procs; ++p) {
      bool vm = p % 25 == 0;
      std::string exe = vm ? "qemu-system-x86_64" : exes[p % 6];
      std::string cmd =
          vm ? "qemu-system-x86_64 -name guest=cloud" + std::to_string(p) +
                   "_u,debug-threads=on -S -machine pc-q35-7.2,usb=off -smp 2 -m 2048"
             : exe + " --worker " + std::to_string(p) + " --config /etc/" + exe + "/main.conf";
      s += std::string(m) + "{cmdline=\"" + cmd + "\",exe=\"" + exe + "\",pid=\"" +
           std::to_string(1000 + p) + "\"" +
           (vm ? ",vmname=\"cloud" + std::to_string(p) + "_u\"" : "") + "} " +
           std::to_string(rng() % 5000000) + "\n";
    }
  }
  return s;
}

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int p = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    p = ntohs(a.sin_port);
  close(fd);
  return p;
}

pid_t spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  // The exporters' log lines would drown the figures.
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

double seconds(const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; }
double cpu_of(int who) {
  rusage u{};
  getrusage(who, &u);
  return seconds(u.ru_utime) + seconds(u.ru_stime);
}

// Waits until `url` answers (polled, with a deadline).
bool answers(const std::string& url) {
  auto deadline = clk::now() + std::chrono::seconds(20);
  while (clk::now() < deadline) {
    energy::Target t{"probe", url, config::ExporterKind::scaphandre};
    // One scrape through the real code path is the probe.
    auto dir = fs::temp_directory_path() / ("continuum-scrape-probe-" + std::to_string(getpid()));
    energy::Scraper s({.interval = 0.05, .timeout = 1.0, .netns = ""});
    if (!s.start({t}, dir, clk::now()).ok()) return false;
    while (clk::now() < deadline && s.stats()[0].scrapes_ok + s.stats()[0].scrapes_failed == 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    s.stop();
    fs::remove_all(dir);
    if (s.stats()[0].scrapes_ok > 0) return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  if (!util::have_program("prometheus-node-exporter")) {
    std::fprintf(stderr,
                 "prometheus-node-exporter not installed (scripts/bootstrap installs it)\n");
    return 1;
  }
  spdlog::set_level(spdlog::level::warn);  // the scraper's per-target lines would drown the table
  double duration = argc > 1 ? std::atof(argv[1]) : 20;
  std::vector<int> ns;
  for (int i = 2; i < argc; ++i) ns.push_back(std::atoi(argv[i]));
  if (ns.empty()) ns = {1, 4, 8};
  const std::string text = scaphandre_exposition(300);
  size_t lines = 0;
  for (char c : text) lines += c == '\n';
  std::printf("exposition: %.0f KB, %zu lines (Scaphandre 1.0 style, 300 processes)\n",
              text.size() / 1024.0, lines);
  std::printf("interval 1 s, %.0f s per N\n\n", duration);
  std::printf("%4s %10s %12s %14s %16s %18s\n", "N", "scrapes", "kept/scrape", "continuum CPU s",
              "continuum %/exp", "node-exporter %/exp");

  auto base = fs::temp_directory_path() / ("continuum-scrape-cost-" + std::to_string(getpid()));
  for (int n : ns) {
    fs::remove_all(base);
    std::vector<pid_t> pids;
    std::vector<energy::Target> targets;
    for (int k = 0; k < n; ++k) {
      auto tdir = base / ("textfile" + std::to_string(k));
      fs::create_directories(tdir);
      if (!util::write_file_atomic(tdir / "scaphandre.prom", text).ok()) return 1;
      int port = free_port();
      pid_t pid = spawn({"prometheus-node-exporter",
                         "--web.listen-address=127.0.0.1:" + std::to_string(port),
                         "--collector.disable-defaults", "--collector.textfile",
                         "--collector.textfile.directory=" + tdir.string()});
      if (pid <= 0) return 1;
      pids.push_back(pid);
      targets.push_back({"vm" + std::to_string(k),
                         "http://127.0.0.1:" + std::to_string(port) + "/metrics",
                         config::ExporterKind::scaphandre});
    }
    bool up = true;
    for (const auto& t : targets) up = up && answers(t.url);
    double children0 = cpu_of(RUSAGE_CHILDREN);
    double cpu0 = cpu_of(RUSAGE_SELF);
    energy::Scraper scraper({.interval = 1.0, .timeout = 2.0, .netns = ""});
    if (up && scraper.start(targets, base / "run", clk::now()).ok()) {
      std::this_thread::sleep_for(std::chrono::duration<double>(duration));  // the measured span
      scraper.stop();
    }
    double cpu = cpu_of(RUSAGE_SELF) - cpu0;
    double wall = scraper.window_seconds();
    size_t scrapes = 0, kept = 0;
    for (const auto& s : scraper.stats()) {
      scrapes += s.scrapes_ok;
      kept += s.samples;
    }
    for (pid_t p : pids) {
      kill(p, SIGTERM);
      waitpid(p, nullptr, 0);
    }
    double exporters = cpu_of(RUSAGE_CHILDREN) - children0;
    if (!up || wall <= 0) {
      std::printf("%4d exporters did not answer\n", n);
      continue;
    }
    std::printf("%4d %10zu %12.0f %14.3f %16.3f %18.3f\n", n, scrapes,
                scrapes ? static_cast<double>(kept) / scrapes : 0.0, cpu, 100 * cpu / wall / n,
                100 * exporters / wall / n);
  }
  fs::remove_all(base);
  return 0;
}

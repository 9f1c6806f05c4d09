// The benchmark phase over REAL SSH: the test makes its own network namespace, starts its own
// /usr/sbin/sshd (own host key, authorized_keys, sshd_config; PID recorded and killed) and its own
// mosquitto on the namespace's loopback port 1883 (as in a guest), then runs SSH workloads and a
// whole image_classification repeat (resource manager none: programs started with setsid/nohup
// over SSH, polled, collected) through util::ssh_connect with a pinned known_hosts.
// The two "nodes" are the namespace's 127.0.0.1; guest work directories live in a temp dir.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "continuum/benchmark/benchmark.h"
#include "continuum/benchmark/image_classification.h"
#include "continuum/util/files.h"
#include "continuum/util/interrupt.h"
#include "continuum/util/process.h"
#include "continuum/util/strings.h"
#include "integration/interrupt_support.h"
#include "integration/status_race_support.h"

extern char** environ;

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace continuum;

namespace {

std::string sh(const std::vector<std::string>& argv) {
  util::ProcessSpec spec;
  spec.argv = argv;
  spec.timeout = 60s;
  auto r = util::run_process(spec);
  if (!r || r->exit_code != 0)
    throw std::runtime_error("command failed: " + util::shell_join(argv) + ": " +
                             (r ? r->err : r.error().message));
  return r->out;
}

pid_t spawn(const std::vector<std::string>& argv) {
  std::vector<char*> c;
  std::vector<std::string> copy = argv;
  for (auto& a : copy) c.push_back(a.data());
  c.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawnp(&pid, c[0], nullptr, nullptr, c.data(), environ) != 0) return -1;
  return pid;
}

void stop(pid_t& pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  int st;
  ::waitpid(pid, &st, 0);
  pid = -1;
}

class BenchmarkOverSsh : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0 || !fs::exists("/usr/sbin/sshd") || !fs::exists("/usr/sbin/mosquitto"))
      return;
    ns_ = "cnt-bench-" + std::to_string(::getpid());
    dir_ = fs::temp_directory_path() / ("continuum-bench-ssh-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    sh({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "host", "-f",
        (dir_ / "host_key").string()});
    sh({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "client", "-f",
        (dir_ / "client_key").string()});
    fs::copy_file(dir_ / "client_key.pub", dir_ / "authorized_keys");
    auto w = util::split(std::string(util::trim(*util::read_file(dir_ / "host_key.pub"))), ' ');
    ASSERT_TRUE(
        util::write_file_atomic(dir_ / "known_hosts", "127.0.0.1 " + w.at(0) + " " + w.at(1) + "\n")
            .ok());
    std::ofstream(dir_ / "sshd_config")
        << "Port 22\nListenAddress 127.0.0.1\nHostKey " << (dir_ / "host_key").string()
        << "\nAuthorizedKeysFile " << (dir_ / "authorized_keys").string()
        << "\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
           "StrictModes no\nPermitRootLogin prohibit-password\nPidFile none\nLogLevel VERBOSE\n";
    std::ofstream(dir_ / "mosquitto.conf")
        << "listener 1883 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest file "
        << (dir_ / "mosquitto.log").string() << "\n";
    fs::create_directories("/run/sshd");
    sh({"ip", "netns", "add", ns_});
    sh({"ip", "-n", ns_, "link", "set", "lo", "up"});
    // A non-root login too, as the guests' users are: sshd signals a session's commands only
    // with post-auth privilege separation, which it skips for root. The user exists only in
    // sshd's private mount namespace (a bind-mounted copy of /etc/passwd), not on the host.
    fs::create_directories(dir_ / "home-user");
    ::chown((dir_ / "home-user").c_str(), kUserUid, kUserUid);
    {
      auto passwd = util::read_file("/etc/passwd");
      ASSERT_TRUE(passwd.ok());
      ASSERT_TRUE(util::write_file_atomic(dir_ / "passwd",
                                          *passwd + kUser + ":x:" + std::to_string(kUserUid) + ":" +
                                              std::to_string(kUserUid) +
                                              "::" + (dir_ / "home-user").string() + ":/bin/sh\n")
                      .ok());
    }
    // `ip netns exec` and `unshare` (without --fork) exec in place: the PIDs are sshd's and
    // mosquitto's own.
    sshd_pid_ = spawn(
        {"ip", "netns", "exec", ns_, "unshare", "--mount", "--propagation", "private", "/bin/sh",
         "-c", "mount --bind \"$1\" /etc/passwd && exec /usr/sbin/sshd -D -e -f \"$2\" -E \"$3\"",
         "sh", (dir_ / "passwd").string(), (dir_ / "sshd_config").string(),
         (dir_ / "sshd.log").string()});
    mosq_pid_ = spawn({"ip", "netns", "exec", ns_, "/usr/sbin/mosquitto", "-c",
                       (dir_ / "mosquitto.conf").string()});
  }

  static void TearDownTestSuite() {
    stop(sshd_pid_);
    stop(mosq_pid_);
    if (!ns_.empty()) {
      util::ProcessSpec spec;
      spec.argv = {"ip", "netns", "del", ns_};
      (void)util::run_process(spec);
    }
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespace, sshd)";
    if (!fs::exists("/usr/sbin/sshd") || !fs::exists("/usr/sbin/mosquitto"))
      GTEST_SKIP() << "sshd/mosquitto missing";
    ASSERT_GT(sshd_pid_, 0);
    ASSERT_GT(mosq_pid_, 0);
    // Wait until sshd accepts (poll, no sleep-as-synchronisation).
    auto d = deployment();
    auto deadline = std::chrono::steady_clock::now() + 20s;
    std::string last;
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = util::ssh_connect(d.ssh_target(d.nodes[0]), 5s);
      if (r.ok()) return;
      last = r.error().message;
      std::this_thread::sleep_for(50ms);
    }
    FAIL() << "sshd never accepted: " << last;
  }

  static infra::Deployment deployment() {
    infra::Deployment d;
    d.private_key = dir_ / "client_key";
    d.known_hosts = dir_ / "known_hosts";
    d.netns = ns_;
    infra::DeployedNode w;
    w.id = "cloud0";
    w.name = "cloud0_root";
    w.tier = "cloud";
    w.ip = "127.0.0.1";
    w.ssh_user = "root";
    infra::DeployedNode e = w;
    e.id = "endpoint0";
    e.name = "endpoint0_root";
    e.tier = "endpoint";
    d.nodes = {w, e};
    return d;
  }

  static constexpr const char* kUser = "cntmbench";
  static constexpr uid_t kUserUid = 4242;
  static inline std::string ns_;
  static inline fs::path dir_;
  static inline pid_t sshd_pid_ = -1;
  static inline pid_t mosq_pid_ = -1;
};

}  // namespace

TEST_F(BenchmarkOverSsh, WorkloadsRunWithQuotedEnvTimeoutsAndFailures) {
  auto d = deployment();
  config::SshWorkload w;
  w.name = "env-check";
  w.command = "printf '%s' \"$V\"; echo err >&2; [ \"$V\" = \"a 'b' \\$c\" ] || exit 9";
  w.nodes = {"all"};
  w.warmup = 1;
  w.repeat = 2;
  w.timeout = 30;
  w.parallel = true;
  w.env = {{"V", "a 'b' $c"}};
  auto runs = benchmark::run_workload(w, 0, d, dir_ / "run", benchmark::ssh_remote_factory(d),
                                      nullptr, nullptr);
  ASSERT_EQ(runs.size(), 6u);
  for (const auto& r : runs) {
    EXPECT_TRUE(r.ok()) << r.node << " " << r.exit_code << " " << r.error;
    EXPECT_EQ(*util::read_file(dir_ / "run" / r.out_file), "a 'b' $c");
    EXPECT_EQ(*util::read_file(dir_ / "run" / r.err_file), "err\n");
  }

  config::SshWorkload slow;
  slow.name = "slow";
  slow.command = "sleep 30";
  slow.nodes = {"cloud0"};
  slow.timeout = 1;
  auto t0 = std::chrono::steady_clock::now();
  auto sr = benchmark::run_workload(slow, 0, d, dir_ / "run", benchmark::ssh_remote_factory(d),
                                    nullptr, nullptr);
  ASSERT_EQ(sr.size(), 1u);
  EXPECT_TRUE(sr[0].timed_out);
  EXPECT_FALSE(sr[0].ok());
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 20.0);
}

TEST_F(BenchmarkOverSsh, ImageClassificationRepeatWithResourceManagerNone) {
  auto d = deployment();
  config::Config cfg;
  cfg.infrastructure.cloud = {1, 2, 2, 1.0, 0, 0};
  cfg.infrastructure.endpoint = {1, 1, 1, 1.0, 0, 0};
  config::Benchmark b;
  b.resource_manager = continuum::config::ResourceManager::none;
  b.direct_offload = true;  // the worker on the cloud node (without it: endpoint-only, no worker)
  b.application = continuum::config::Application::image_classification;
  b.frequency = 5;
  b.duration = 3;
  b.application_worker_cpu = 1;
  b.benchmark_timeout = 120;
  cfg.benchmark = b;
  config::SshWorkload probe;
  probe.name = "probe";
  probe.command = "exit 4";
  probe.nodes = {"endpoint0"};
  cfg.workloads = {probe};
  plan::Plan plan;
  const auto run_dir = dir_ / "run-ic";
  auto log = record::EventLog::open(run_dir / "events.jsonl", std::chrono::steady_clock::now());
  ASSERT_TRUE(log.ok());
  benchmark::Hooks hooks;
  hooks.connect = benchmark::ssh_remote_factory(d);
  hooks.bin_dir = (fs::path(CONTINUUM_BUILD_DIR) / "app").string();
  hooks.guest_dir = (dir_ / "guest").string();
  hooks.poll = 500ms;
  std::atomic<bool> interrupted{false};
  auto r = benchmark::run(cfg, plan, d, run_dir, log->get(), &interrupted, hooks);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->repeats.size(), 1u);
  const auto& rep = r->repeats[0];
  ASSERT_TRUE(rep.app.has_value()) << (rep.app_errors.empty() ? "" : rep.app_errors[0]);
  EXPECT_TRUE(rep.app_errors.empty()) << rep.app_errors[0];
  EXPECT_EQ(rep.app->workers.at(0).frames, 15u);
  EXPECT_EQ(rep.app->endpoints.at(0).frames, 15u);
  EXPECT_GT(rep.app->endpoints[0].latency_avg_ms, 0);
  EXPECT_EQ(r->failures, 1);  // the workload's exit 4
  EXPECT_TRUE(fs::exists(run_dir / "benchmark/repeat-0/image_classification/cloud0.worker.log"));
  EXPECT_TRUE(fs::exists(run_dir / "benchmark/metrics.csv"));
  std::printf("%s", benchmark::render_tables(*r).c_str());
}

TEST_F(BenchmarkOverSsh, CtrlCStopsTheRunningSshWorkloadAndStartsNothingNew) {
  // Three repeats of two workloads; the first sleeps 60 s in the "guest". Ctrl-C (the process-wide
  // flag, as the CLI passes it) while it sleeps: the guest command's process group is signalled
  // over SSH, benchmark::run returns within seconds marked interrupted, and neither the second
  // workload nor another repeat starts.
  using namespace interrupt_test;
  auto d = deployment();
  for (auto& n : d.nodes) n.ssh_user = kUser;
  config::Config cfg;
  config::Benchmark b;
  b.resource_manager = continuum::config::ResourceManager::none;
  b.application = continuum::config::Application::none;
  b.repeat = 3;
  cfg.benchmark = b;
  const std::string sleep_arg =
      "60." + std::to_string(100000 + ::getpid() % 100000);  // unique: found by its argv
  config::SshWorkload sleepy;
  sleepy.name = "sleepy";
  sleepy.command = "sleep " + sleep_arg;
  sleepy.nodes = {"cloud0"};
  sleepy.timeout = 600;  // the default: `timeout --kill-after=5 600` wraps it in the guest
  const fs::path marker = dir_ / "home-user" / "after.mark";
  config::SshWorkload after;
  after.name = "after";
  after.command = "touch " + util::shell_quote(marker.string());
  after.nodes = {"cloud0"};
  cfg.workloads = {sleepy, after};
  plan::Plan plan;
  const auto run_dir = dir_ / "run-int";
  benchmark::Hooks hooks;
  hooks.connect = benchmark::ssh_remote_factory(d);
  util::clear_interrupt();

  pid_t guest_sleep = -1;
  std::chrono::steady_clock::time_point raised;
  std::thread ctrl_c([&] {
    wait_until(
        [&] {
          auto p = pids_where([&](const std::vector<std::string>& a) {
            return a.size() == 2 && a[0] == "sleep" && a[1] == sleep_arg;
          });
          if (!p.empty()) guest_sleep = p.front();
          return !p.empty();
        },
        60s);
    raised = std::chrono::steady_clock::now();
    util::request_interrupt();
  });
  auto r = benchmark::run(cfg, plan, d, run_dir, nullptr, util::interrupt_flag(), hooks);
  auto returned = std::chrono::steady_clock::now();
  ctrl_c.join();
  util::clear_interrupt();
  ASSERT_GT(guest_sleep, 0) << "the workload never started";
  const double ms = ms_between(raised, returned);
  print_measure("benchmark", "interrupt_to_return", ms);

  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->interrupted);
  EXPECT_LT(ms, 3000) << "the workload would otherwise run 60 s";
  ASSERT_EQ(r->repeats.size(), 1u);
  ASSERT_EQ(r->repeats[0].workload_runs.size(), 1u);
  EXPECT_EQ(r->repeats[0].workload_runs[0].workload, "sleepy");
  EXPECT_EQ(r->repeats[0].workload_runs[0].error, "interrupted");
  EXPECT_FALSE(fs::exists(marker)) << "a workload started after Ctrl-C";
  // The guest's sleep got SIGTERM through the session (sshd's killpg), not just a closed channel.
  EXPECT_TRUE(wait_until(
      [&] {
        auto a = interrupt_test::proc_argv(guest_sleep);
        return a.size() != 2 || a[1] != sleep_arg;
      },
      3s))
      << "the workload's command still runs in the guest";
  EXPECT_TRUE(r->interrupted && fs::exists(run_dir / "benchmark/metrics.csv"));
}

TEST_F(BenchmarkOverSsh, StatusRaceOverSshNeverReadsAsGone) {
  // The status command over the real sshd (the guest's /bin/sh, a non-root user) against a program
  // that exits exactly between its rc check and its kill -0
  // (tests/integration/status_race_support.h). Orphaned wrappers of the sshd's sessions come to
  // this process, the subreaper, which reaps them.
  ASSERT_TRUE(status_race::become_subreaper());
  auto d = deployment();
  for (auto& n : d.nodes) n.ssh_user = kUser;
  auto remote = util::ssh_connect(d.ssh_target(d.nodes[0]), 30s);
  ASSERT_TRUE(remote.ok()) << remote.error().message;
  const fs::path home = dir_ / "home-user";
  const std::string racing =
      "PATH=" + util::shell_quote(status_race::make_racing_cat(home).string() + ":/usr/bin:/bin") +
      "; export PATH; ";
  auto race_once = [&](const std::string& dir, const std::string& status) -> std::string {
    (void)(*remote)->exec("rm -f " + util::shell_quote(dir + "/go"), 30s);
    auto launched = (*remote)->exec(
        benchmark::direct_launch_command(dir, "/bin/sh", {"-c", status_race::kProgramScript}, {}),
        30s);
    if (!launched.ok()) return "<" + launched.error().message + ">";
    pid_t pid = static_cast<pid_t>(std::atol(std::string(util::trim(launched->out)).c_str()));
    if (pid <= 0) return "<launch printed '" + launched->out + "': " + launched->err + ">";
    std::thread reaper = status_race::reap(pid);
    auto st = (*remote)->exec(racing + status, 30s);
    reaper.join();
    return st.ok() ? std::string(util::trim(st->out)) : "<" + st.error().message + ">";
  };
  // The forced race is real: the command as it was reads it as "gone".
  EXPECT_EQ(race_once("old", status_race::old_status_command("old")), "gone");
  const int iterations = 100;
  int gone = 0, other = 0;
  std::string first_other;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i) {
    const std::string out = race_once("job", benchmark::direct_status_command("job"));
    if (out == "gone")
      ++gone;
    else if (out != "7" && other++ == 0)
      first_other = out;
  }
  std::printf("[measure] status race: %d iterations over SSH in %.1f s, gone=%d\n", iterations,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), gone);
  EXPECT_EQ(gone, 0) << "read as gone although rc was written";
  EXPECT_EQ(other, 0) << "first unexpected answer: " << first_other;
}

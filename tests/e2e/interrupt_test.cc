// Ctrl-C while a VM boots, through the real binary (issue 10: Ctrl-C is prompt in every phase).
//
// Inside the harness's network namespace with its own libvirtd (tests/e2e/harness.h), the test
// starts `continuum` on a 1-VM infra_only configuration (TCG), waits until the run is in its SSH
// readiness wait (the run log shows a failed login attempt: the guest is still booting, which takes
// tens of seconds under TCG), sends SIGINT to the continuum process, and asserts:
//   - exit status 130 within a few seconds (printed as "[measure] phase=infrastructure
//     sigint_to_exit_ms=N");
//   - the rollback left nothing: no domain, no network, no file the ledger recorded, no QEMU.
// The other phases' latencies are measured in-process: tests/integration/{software_ansible,
// benchmark_ssh,netem_netns,interrupt_latency}_test.cc.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "continuum/infra/hypervisor.h"
#include "e2e/harness.h"
#include "integration/interrupt_support.h"

using namespace continuum;
using namespace continuum::e2e;

namespace {

class Interrupt : public LibvirtNetnsTest {};

TEST_F(Interrupt, SigintWhileTheVmBootsExits130PromptlyAndLeavesNothing) {
  {
    auto r = run({CONTINUUM_BINARY, "image", "build", "--base-path", kWorkRoot.string()}, 3600s,
                 [](const std::string& l, bool) { std::printf("  [image] %s\n", l.c_str()); });
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  fs::path key = work_ / "id_continuum";
  fs::path cfg = work_ / "e2e_interrupt.cfg";
  std::ofstream(cfg) << "[infrastructure]\nprovider = qemu\ninfra_only = True\n"
                        "cloud_nodes = 1\ncloud_cores = 1\ncloud_memory = 1\ncloud_quota = 1.0\n"
                        "base_path = "
                     << kWorkRoot.string()
                     << "\n"
                        "accelerator = tcg\nssh_key = "
                     << key.string() << "\nboot_timeout = 900\n";
  fs::path runs = work_ / "runs";
  fs::create_directories(work_ / "home");
  pid_t pid =
      spawn({"ip", "netns", "exec", ns_, CONTINUUM_BINARY, "--output", runs.string(), cfg.string()},
            {"HOME=" + (work_ / "home").string()});
  ASSERT_GT(pid, 0);
  // `ip netns exec` execs in place: pid is continuum's own.
  int status = 0;
  bool exited = false;
  auto reap = [&](std::chrono::milliseconds limit) {
    return interrupt_test::wait_until(
        [&] {
          if (!exited && ::waitpid(pid, &status, WNOHANG) == pid) exited = true;
          return exited;
        },
        limit);
  };

  // In the SSH readiness wait: the run log shows a failed login to the booting guest.
  bool waiting = interrupt_test::wait_until(
      [&] {
        if (reap(0ms)) return true;
        if (run_dir_.empty() && fs::exists(runs))
          for (const auto& e : fs::directory_iterator(runs)) run_dir_ = e.path();
        if (run_dir_.empty()) return false;
        auto log = util::read_file(run_dir_ / "continuum.log");
        return log.ok() && log->find("not ready yet") != std::string::npos;
      },
      600s);
  ASSERT_FALSE(exited) << "continuum ended before the readiness wait, status " << status;
  ASSERT_TRUE(waiting) << "never reached the readiness wait";

  const auto sent = Clock::now();
  ASSERT_EQ(::kill(pid, SIGINT), 0);
  bool ended = reap(60s);
  const double ms = interrupt_test::ms_between(sent, Clock::now());
  if (!ended) {
    ::kill(pid, SIGKILL);
    reap(10s);
  }
  ASSERT_TRUE(ended) << "continuum did not exit within 60 s of SIGINT";
  interrupt_test::print_measure("infrastructure", "sigint_to_exit", ms);
  timing("sigint_to_exit_infrastructure", ms / 1000.0);
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 130);
  EXPECT_LT(ms, 10000) << "the readiness wait would otherwise last until the guest answers";

  // The rollback: the ledger lists every resource; none of them exists any more.
  auto ledger_text = util::read_file(run_dir_ / "state.json");
  ASSERT_TRUE(ledger_text.ok());
  auto ledger = nlohmann::json::parse(*ledger_text);
  EXPECT_EQ(ledger.value("status", ""), "rolled_back") << ledger.dump(2);
  std::vector<std::string> domains, networks, paths;
  std::string uri = "qemu:///system";
  for (const auto& res : ledger["resources"]) {
    std::string kind = res["kind"];
    if (kind == "domain")
      domains.push_back(res["name"]);
    else if (kind == "network")
      networks.push_back(res["name"]);
    else
      paths.push_back(res["name"]);
    if (!std::string(res.value("uri", "")).empty()) uri = res["uri"];
  }
  EXPECT_EQ(domains.size(), 1u);
  EXPECT_EQ(networks.size(), 1u);
  EXPECT_FALSE(paths.empty());
  auto hv = infra::connect_libvirt(uri);
  ASSERT_TRUE(hv.ok()) << hv.error().message;
  auto all = (*hv)->list_domains();
  ASSERT_TRUE(all.ok());
  for (const auto& dn : domains)
    EXPECT_EQ(std::count(all->begin(), all->end(), dn), 0) << "domain left: " << dn;
  for (const auto& nn : networks) {
    auto ex = (*hv)->network_exists(nn);
    ASSERT_TRUE(ex.ok());
    EXPECT_FALSE(*ex) << "network left: " << nn;
  }
  for (const auto& p : paths) EXPECT_FALSE(fs::exists(p)) << "file left: " << p;
  auto ps = run({"ps", "-eo", "args"});
  for (const auto& dn : domains) EXPECT_EQ(ps.out.find("guest=" + dn), std::string::npos) << ps.out;
  destroyed_ = true;
}

}  // namespace

// End to end, for real: TCG VMs through the `continuum` binary (docs/design.md §5, issue 3).
//
// The test makes its own network namespace, starts virtlogd and libvirtd inside it (after
// re-mounting the cgroup v1 controllers that `ip netns exec`'s fresh /sys hides), builds or reuses
// the offline image, runs `ip netns exec NS continuum CONFIG` with an infra_only config of 1 cloud
// + 1 endpoint VM with virtiofs and the energy host feed, logs in to each VM over SSH with the
// pinned host key (from inside the namespace), checks hostname, address, cores, memory, sudo, the
// pinning (cpu_pin = True: one vCPU each on host CPUs 0 and 1, as libvirt reports it in the run's
// infrastructure/resources.csv),
// virtiofs share in both directions and the host feed's powercap tree in it, runs `continuum
// destroy RUN_DIR`, and asserts that no domain, network, overlay, seed or share of the run is left.
// Daemons are stopped by the PIDs the test recorded; the namespace is deleted.
//
// Timings are printed as "E2E-TIMING name seconds" lines (docs/infrastructure-timings.md).
// The namespace and daemons: tests/e2e/harness.h.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "continuum/infra/hypervisor.h"
#include "continuum/infra/image.h"
#include "continuum/util/ssh.h"
#include "e2e/harness.h"

using namespace continuum;
using namespace continuum::e2e;

namespace {

class VmLifecycle : public LibvirtNetnsTest {};

TEST_F(VmLifecycle, CloudAndEndpointBootAreReachableAndAreDestroyedWithoutATrace) {
  // 1. The image: cached across runs under the e2e base_path (a cold build takes minutes). The same
  // image as quickstart_test's (with the guest programs), so CI builds it once for both.
  auto t_img = Clock::now();
  {
    auto r = run({CONTINUUM_BINARY, "image", "build", "--base-path", kWorkRoot.string()}, 3600s,
                 [](const std::string& l, bool) { std::printf("  [image] %s\n", l.c_str()); });
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  timing("image_build_or_reuse", secs(Clock::now() - t_img));

  // 2. The configuration: 1 cloud + 1 endpoint (1 vCPU, 1 GB each, pinned to this machine's two
  // cores), virtiofs on. (2 vCPUs in one guest: e2e.NetperfTiers' edge.)
  fs::path shares = work_ / "shares";
  fs::path key = work_ / "id_continuum";
  fs::path cfg = work_ / "e2e_infra.cfg";
  std::ofstream(cfg)
      << "[infrastructure]\nprovider = qemu\ninfra_only = True\n"
         "cpu_pin = True\n"
         "cloud_nodes = 1\ncloud_cores = 1\ncloud_memory = 1\ncloud_quota = 1.0\n"
         "endpoint_nodes = 1\nendpoint_cores = 1\nendpoint_memory = 1\nendpoint_quota = 1.0\n"
         "base_path = "
      << kWorkRoot.string()
      << "\n"
         "accelerator = tcg\nvirtiofs = True\nvirtiofs_host_dir = "
      << shares.string()
      << "\n"
         "virtiofs_guest_dir = /var/scaphandre\nssh_key = "
      << key.string()
      << "\n"
         "boot_timeout = 900\n"
         // The host-side energy feed (energy::HostFeed) into each VM's share,
         // from a fake powercap tree: this machine has no RAPL.
         "[energy]\nenabled = True\nhost_feed = True\npowercap_path = "
      << (work_ / "powercap" / "intel-rapl:0").string() << "\n";
  ASSERT_TRUE(
      util::write_file_atomic(work_ / "powercap" / "intel-rapl:0" / "energy_uj", "123456789\n")
          .ok());
  ASSERT_TRUE(util::write_file_atomic(work_ / "powercap" / "intel-rapl:0" / "max_energy_range_uj",
                                      "262143328850\n")
                  .ok());
  ASSERT_TRUE(
      util::write_file_atomic(work_ / "powercap" / "intel-rapl:0" / "name", "package-0\n").ok());
  fs::path runs = work_ / "runs";

  // 3. Deploy through the real binary, inside the namespace.
  auto t_run = Clock::now();
  auto r =
      run({"ip", "netns", "exec", ns_, CONTINUUM_BINARY, "--output", runs.string(), cfg.string()},
          1500s, [](const std::string& l, bool) { std::printf("  [run] %s\n", l.c_str()); });
  double run_seconds = secs(Clock::now() - t_run);
  for (const auto& e : fs::directory_iterator(runs)) run_dir_ = e.path();
  ASSERT_EQ(r.exit_code, 0) << "continuum run failed:\n" << r.err;
  timing("run_infra_only_total", run_seconds);
  ASSERT_FALSE(run_dir_.empty());

  auto dep_text = util::read_file(run_dir_ / "deployment.json");
  ASSERT_TRUE(dep_text.ok()) << dep_text.error().message;
  auto dep = nlohmann::json::parse(*dep_text);
  auto plan = nlohmann::json::parse(*util::read_file(run_dir_ / "plan.json"));
  ASSERT_EQ(dep["nodes"].size(), 2u);
  // The pinning as libvirt reports it after boot: each vCPU only on its core, and running there.
  auto res = util::read_file(run_dir_ / "infrastructure" / "resources.csv");
  ASSERT_TRUE(res.ok()) << res.error().message;
  std::printf("%s", res->c_str());
  EXPECT_NE(res->find("cloud0,pinning,vCPU0 on CPU 0,vCPU0 on CPU 0 (affinity 0),1.000,ok,"),
            std::string::npos)
      << *res;
  EXPECT_NE(res->find("endpoint0,pinning,vCPU0 on CPU 1,vCPU0 on CPU 1 (affinity 1),1.000,ok,"),
            std::string::npos)
      << *res;
  EXPECT_NE(res->find("cloud0,vcpus,1,1,1.000,ok,"), std::string::npos) << *res;
  // known_hosts was written before boot and pins exactly one ed25519 key per VM.
  auto kh = util::read_file(run_dir_ / "known_hosts");
  ASSERT_TRUE(kh.ok());
  EXPECT_EQ(util::split(std::string(util::trim(*kh)), '\n').size(), 2u);

  // 4. Log in to each VM with the pinned host key and check what the plan promised.
  for (const auto& n : dep["nodes"]) {
    std::string name = n["name"], ip = n["ip"], user = n["ssh_user"];
    timing("boot_to_ssh_" + std::string(n["id"]), n.value("boot_seconds", 0.0));
    const nlohmann::json* pn = nullptr;
    for (const auto& x : plan["nodes"])
      if (x["name"] == name) pn = &x;
    ASSERT_NE(pn, nullptr) << name;

    std::string marker = "written on the host for " + name + "\n";
    ASSERT_TRUE(util::write_file_atomic(shares / name / "hello.txt", marker).ok());

    util::SshTarget t;
    t.host = ip;
    t.user = user;
    t.private_key = key;
    t.known_hosts = run_dir_ / "known_hosts";
    t.netns = ns_;
    auto remote = util::ssh_connect(t, 30s);
    ASSERT_TRUE(remote.ok()) << remote.error().message;
    auto ex = [&](const std::string& cmd) {
      auto e = (*remote)->exec(cmd, 60s);
      EXPECT_TRUE(e.ok()) << cmd;
      if (!e.ok()) return std::string();
      EXPECT_EQ(e->exit_code, 0) << cmd << ": " << e->err;
      return std::string(util::trim(e->out));
    };
    std::string hostname = name;
    hostname.erase(std::remove(hostname.begin(), hostname.end(), '_'), hostname.end());
    EXPECT_EQ(ex("hostname"), hostname);
    EXPECT_EQ(ex("id -un"), user);
    EXPECT_NE(ex("ip -4 -o addr show").find(" " + ip + "/16 "), std::string::npos);
    EXPECT_EQ(ex("nproc"), std::to_string(int((*pn)["cores"])));
    long mem_kb = std::stol(ex("awk '/^MemTotal:/ {print $2}' /proc/meminfo"));
    long want_kb = long((*pn)["memory_mib"]) * 1024;
    EXPECT_GT(mem_kb, want_kb * 8 / 10) << "guest sees less memory than planned";
    EXPECT_LE(mem_kb, want_kb);
    EXPECT_EQ(ex("sudo -n id -u"), "0");
    EXPECT_EQ(ex("cat /var/scaphandre/hello.txt") + "\n", marker);
    // The energy feed's tree, as the guest's `scaphandre --vm` reads it (started after the
    // infrastructure phase; its first step writes the 0 baseline).
    EXPECT_EQ(ex("cat /var/scaphandre/intel-rapl:0/energy_uj"), "0");
    EXPECT_EQ(ex("cat /var/scaphandre/intel-rapl:0/name"), "package-0");
    // And the other way round: the guest writes, the host reads.
    ex("echo from-guest | sudo -n tee /var/scaphandre/guest.txt >/dev/null");
    auto back = util::read_file(shares / name / "guest.txt");
    EXPECT_TRUE(back.ok() && *back == "from-guest\n");
  }

  // A wrong pinned key is refused by the same guests (no trust on first use anywhere).
  {
    const auto& n = dep["nodes"][0];
    fs::path wrong = work_ / "wrong_known_hosts";
    auto other =
        run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", (work_ / "other").string()});
    ASSERT_EQ(other.exit_code, 0);
    auto pub = util::read_file(work_ / "other.pub");
    auto w = util::split(std::string(util::trim(*pub)), ' ');
    ASSERT_TRUE(
        util::write_file_atomic(wrong, std::string(n["ip"]) + " " + w[0] + " " + w[1] + "\n").ok());
    util::SshTarget t;
    t.host = n["ip"];
    t.user = n["ssh_user"];
    t.private_key = key;
    t.known_hosts = wrong;
    t.netns = ns_;
    EXPECT_FALSE(util::ssh_connect(t, 30s).ok());
  }

  // 5. What the run created, from its ledger, before destroying it.
  auto ledger = nlohmann::json::parse(*util::read_file(run_dir_ / "state.json"));
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
  EXPECT_EQ(domains.size(), 2u);
  EXPECT_FALSE(paths.empty());
  for (const auto& p : paths) EXPECT_TRUE(fs::exists(p)) << p;

  auto t_destroy = Clock::now();
  auto d = run({"ip", "netns", "exec", ns_, CONTINUUM_BINARY, "destroy", run_dir_.string()}, 300s,
               [](const std::string& l, bool) { std::printf("  [destroy] %s\n", l.c_str()); });
  timing("destroy", secs(Clock::now() - t_destroy));
  ASSERT_EQ(d.exit_code, 0) << d.err;
  destroyed_ = true;

  // 6. Nothing of the run is left: domains, network, overlays, seeds, shares.
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
  // No QEMU or virtiofsd of this run still running.
  auto ps = run({"ps", "-eo", "args"});
  for (const auto& dn : domains) EXPECT_EQ(ps.out.find("guest=" + dn), std::string::npos) << ps.out;

  // 7. destroy is idempotent.
  auto again =
      run({"ip", "netns", "exec", ns_, CONTINUUM_BINARY, "destroy", run_dir_.string()}, 120s);
  EXPECT_EQ(again.exit_code, 0) << again.err;
}

}  // namespace

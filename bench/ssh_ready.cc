// bench_ssh_ready: continuum against the least a shell script must do (bench/minimal_vms.sh:
// virsh, qemu-img, genisoimage, ssh), side by side in one run: time from start to every VM
// accepting an SSH login with its pinned host key, 2 VMs of the offline image (1 vCPU, 1 GiB,
// TCG here), as a ratio. Rounds alternate (continuum, script, continuum, ...) so that a host that
// gets busier or quieter during the run weighs on both alike. Figures only; nothing asserted on
// speed.
//   bench_ssh_ready [ROUNDS (default 3)]
// Needs root and a machine where no other libvirtd runs: like the e2e tests it makes a network
// namespace with its own libvirtd (tests/e2e/harness.h), and every VM and packet stays in it.
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "continuum/util/files.h"
#include "e2e/harness.h"

using namespace continuum;
using namespace continuum::e2e;

namespace {

int g_rounds = 3;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return 0;
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

class SshReady : public LibvirtNetnsTest {};

TEST_F(SshReady, ContinuumAgainstAMinimalScript) {
  ::setenv("HOME", kWorkRoot.c_str(), 1);  // the image cache of the e2e tests
  auto img = run({CONTINUUM_BINARY, "image", "build"}, 3600s);
  ASSERT_EQ(img.exit_code, 0) << img.err;
  // The cached default image's directory ("  disk    DIR/disk.qcow2"): what the script boots,
  // as continuum does.
  fs::path image_dir;
  for (const auto& line : util::split(img.out, '\n'))
    if (util::starts_with(util::trim(line), "disk "))
      image_dir = fs::path(std::string(util::trim(util::trim(line).substr(5)))).parent_path();
  ASSERT_FALSE(image_dir.empty()) << img.out;

  const fs::path cfg = work_ / "ssh_ready.cfg";
  ASSERT_TRUE(util::write_file_atomic(cfg,
                                      "[infrastructure]\nprovider = qemu\ninfra_only = True\n"
                                      "delete = True\nresource_check = False\n"
                                      "cloud_nodes = 1\ncloud_cores = 1\ncloud_memory = 1\n"
                                      "cloud_quota = 1.0\nendpoint_nodes = 1\n"
                                      "endpoint_cores = 1\nendpoint_memory = 1\n"
                                      "endpoint_quota = 1.0\n")
                  .ok());
  std::vector<double> cont, script;
  for (int round = 1; round <= g_rounds; ++round) {
    // continuum: the run's own clock (events.jsonl t, from its start) at the infrastructure
    // phase's end, which comes once every VM took an SSH login.
    const fs::path runs = work_ / ("runs" + std::to_string(round));
    auto r =
        run({"ip", "netns", "exec", ns_, CONTINUUM_BINARY, "--output", runs.string(), cfg.string()},
            900s);
    if (fs::exists(runs))
      for (const auto& e : fs::directory_iterator(runs)) run_dir_ = e.path();
    ASSERT_EQ(r.exit_code, 0) << r.err;
    double t = -1;
    auto ev = util::read_file(run_dir_ / "events.jsonl");
    ASSERT_TRUE(ev.ok());
    for (const auto& line : util::split(*ev, '\n')) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_object() && j.value("phase", "") == "infrastructure" &&
          j.value("event", "") == "end")
        t = j.value("t", -1.0);
    }
    ASSERT_GT(t, 0) << "no infrastructure end event in " << run_dir_;
    cont.push_back(t);

    auto s = run({"ip", "netns", "exec", ns_, "bash",
                  (fs::path(CONTINUUM_SOURCE_DIR) / "bench" / "minimal_vms.sh").string(),
                  image_dir.string(), "2", (work_ / "minimal").string()},
                 900s);
    ASSERT_EQ(s.exit_code, 0) << s.out << s.err;
    auto at = s.out.find("ssh_ready_seconds=");
    ASSERT_NE(at, std::string::npos) << s.out;
    script.push_back(std::stod(s.out.substr(at + 18)));
    std::printf("round %d: continuum %.1f s, minimal script %.1f s (ratio %.3f)\n", round, t,
                script.back(), t / script.back());
    std::fflush(stdout);
  }
  const double c = median(cont), m = median(script);
  std::printf(
      "time to 2 VMs SSH-ready, median of %d rounds: continuum %.1f s, minimal script "
      "%.1f s, ratio %.3f (goal: within 5 %%)\n",
      g_rounds, c, m, c / m);
  destroyed_ = true;  // delete = True and the script's trap removed everything
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc > 1) g_rounds = std::max(1, std::atoi(argv[1]));
  return RUN_ALL_TESTS();
}

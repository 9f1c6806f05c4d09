// bench_quickstart_phases: the README's main job (configuration/quickstart.cfg, unmodified: 2 TCG
// VMs, 4g netem, base/mosquitto/application playbooks, image_classification 60 s at 1 frame/s,
// repeat = 2) run ROUNDS times, with where its time went: every phase and playbook from the
// run's events.jsonl, each repeat split into the application's own run (the endpoint's
// total_time_s, which the guests' speed decides) and continuum's overhead around it (start,
// subscribe wait, end detection, stop, collect, the SSH workloads), and the SSH sessions the run
// opened and reused. Figures only; nothing asserted on speed.
//   bench_quickstart_phases [ROUNDS (default 1)]
// Needs root and a machine where no other libvirtd runs (the e2e harness: a network namespace
// with its own libvirtd, tests/e2e/harness.h).
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "continuum/util/files.h"
#include "e2e/harness.h"

using namespace continuum;
using namespace continuum::e2e;

namespace {

int g_rounds = 1;

class QuickstartPhases : public LibvirtNetnsTest {};

TEST_F(QuickstartPhases, WhereTheTimeGoes) {
  ::setenv("HOME", kWorkRoot.c_str(), 1);  // the image cache and key of the e2e tests
  ::unsetenv("CONTINUUM_GUEST_APP_DIR");
  auto img = build_image();
  ASSERT_EQ(img.exit_code, 0) << img.err;
  const fs::path cfg = fs::path(CONTINUUM_SOURCE_DIR) / "configuration" / "quickstart.cfg";
  for (int round = 1; round <= g_rounds; ++round) {
    const fs::path runs = work_ / ("runs" + std::to_string(round));
    auto t0 = Clock::now();
    auto r =
        run({"ip", "netns", "exec", ns_, CONTINUUM_BINARY, "--output", runs.string(), cfg.string()},
            1800s);
    const double whole = secs(Clock::now() - t0);
    if (fs::exists(runs))
      for (const auto& e : fs::directory_iterator(runs)) run_dir_ = e.path();
    ASSERT_EQ(r.exit_code, 0) << r.err;

    // Phase intervals, in the order they start.
    std::vector<std::string> order;
    std::map<std::string, double> start, end;
    std::vector<std::pair<double, double>> repeats;
    auto ev = util::read_file(run_dir_ / "events.jsonl");
    ASSERT_TRUE(ev.ok());
    for (const auto& line : util::split(*ev, '\n')) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_object()) continue;
      const std::string phase = j.value("phase", ""), what = j.value("event", "");
      const double t = j.value("t", 0.0);
      if (phase == "repeat" && what == "start") repeats.emplace_back(t, -1);
      if (phase == "repeat" && what == "end" && !repeats.empty()) repeats.back().second = t;
      if (phase == "repeat" || phase == "run") continue;
      if (what == "start" && !start.count(phase)) {
        start[phase] = t;
        order.push_back(phase);
      }
      if (what == "end") end[phase] = t;
    }
    std::printf("round %d: whole run %.1f s (the binary, start to exit)\n", round, whole);
    for (const auto& ph : order)
      if (end.count(ph)) std::printf("  %-28s %7.1f s\n", ph.c_str(), end[ph] - start[ph]);

    // Each repeat: the application's own time against the repeat's.
    auto metrics = util::read_file(run_dir_ / "benchmark" / "metrics.json");
    ASSERT_TRUE(metrics.ok());
    auto m = nlohmann::json::parse(*metrics);
    for (const auto& rep : m["repeats"]) {
      const int k = rep["repeat"];
      double app = 0;
      for (const auto& e : rep["app"]["endpoints"])
        app = std::max(app, e.value("total_time_s", 0.0));
      double proc = 0;
      for (const auto& w : rep["app"]["workers"])
        proc = std::max(proc, w.value("proc_time_ms", 0.0));
      const double seconds = k < static_cast<int>(repeats.size()) && repeats[k].second > 0
                                 ? repeats[k].second - repeats[k].first
                                 : rep.value("seconds", 0.0);
      std::printf(
          "  repeat %d: %.1f s = application %.1f s (worker %.0f ms per frame) + overhead %.1f "
          "s\n",
          k, seconds, app, proc, seconds - app);
    }
    // Where each playbook's time went: the runner's "# at S s" line before each play and task.
    for (const auto& ph : order) {
      if (!util::starts_with(ph, "playbook:")) continue;
      const std::string step = ph.substr(9);
      auto text = util::read_file(run_dir_ / "software" / (step + ".log"));
      if (!text.ok()) continue;
      std::printf("  %s.log:\n", step.c_str());
      const auto lines = util::split(*text, '\n');
      for (size_t i = 0; i + 1 < lines.size(); ++i)
        if (util::starts_with(lines[i], "# at ") || util::starts_with(lines[i], "# done") ||
            util::starts_with(lines[i], "# exit"))
          std::printf(
              "    %-12s %s\n", lines[i].substr(2).c_str(),
              util::starts_with(lines[i], "# at ") ? lines[i + 1].substr(0, 70).c_str() : "");
    }
    auto log = util::read_file(run_dir_ / "continuum.log");
    if (log.ok())
      for (const auto& line : util::split(*log, '\n'))
        if (line.find("ssh: ") != std::string::npos) std::printf("  %s\n", line.c_str());
    std::fflush(stdout);
  }
  destroyed_ = true;  // delete = True
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc > 1) g_rounds = std::max(1, std::atoi(argv[1]));
  return RUN_ALL_TESTS();
}

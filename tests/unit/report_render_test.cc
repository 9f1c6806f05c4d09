// Rendering from a saved run directory (tests/data/fixture-run): energy.csv, the power timeline,
// the energy bars and the latency plot come out of real gnuplot, non-trivial; `continuum report`
// exits 2 on a path that is not a run directory and 0 on the fixture.
#include <gtest/gtest.h>

#include <filesystem>

#include "continuum/energy/energy.h"
#include "continuum/report/plots.h"
#include "continuum/report/render.h"
#include "continuum/util/files.h"
#include "continuum/util/process.h"

using namespace continuum;
namespace fs = std::filesystem;

namespace {
fs::path copy_fixture(const std::string& tag) {
  auto dst =
      fs::temp_directory_path() / ("continuum-render-" + tag + "-" + std::to_string(getpid()));
  fs::remove_all(dst);
  fs::copy(fs::path(CONTINUUM_SOURCE_DIR) / "tests/data/fixture-run", dst,
           fs::copy_options::recursive);
  return dst;
}
}  // namespace

TEST(ReportRender, FixtureRunGivesEnergyTableAndPlots) {
  if (!util::have_program("gnuplot")) GTEST_SKIP() << "gnuplot-nox not installed";
  auto dir = copy_fixture("lib");
  auto r = report::render(dir);
  ASSERT_TRUE(r.ok()) << r.error().message;

  auto rows = energy::read_energy_csv(dir / "energy/energy.csv");
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  // 3 VMs × 3 repeats × (repeat, application, workload:queries, total) + benchmark (repeat -1).
  int totals = 0;
  for (const auto& row : *rows) {
    if (row.phase == "total") {
      ++totals;
      EXPECT_NEAR(row.end - row.start, 40, 1e-6);
    }
    if (row.phase == "infrastructure") ADD_FAILURE() << "a phase without samples got a row";
    // The fixture's torn reads (gauge spike of 4.2 kW, counter read as 0) must not show.
    if (row.vm == "cloud0_u" && row.phase == "repeat") {
      EXPECT_LT(row.mean_watts(), 30) << row.repeat;
      EXPECT_NEAR(row.joules_power, row.joules_counter, 0.05 * row.joules_counter) << row.repeat;
    }
  }
  EXPECT_EQ(totals, 9);

  for (const char* name : {"power_timeline", "energy_bars", "latency"}) {
    SCOPED_TRACE(name);
    auto png = dir / "plots" / (std::string(name) + ".png");
    auto svg = dir / "plots" / (std::string(name) + ".svg");
    ASSERT_TRUE(fs::exists(png));
    ASSERT_TRUE(fs::exists(svg));
    EXPECT_GT(fs::file_size(png), 20000u);
    EXPECT_GT(fs::file_size(svg), 5000u);
    auto info = report::png_info(png);
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_GE(info->width, 900);
    EXPECT_GE(info->height, 500);
    EXPECT_GT(info->colours, 20u);  // lines, bands, text: anything but a blank canvas
    auto text = util::read_file(svg);
    ASSERT_TRUE(text.ok());
    EXPECT_TRUE(text->find("(W)") != std::string::npos || text->find("(J)") != std::string::npos ||
                text->find("(ms)") != std::string::npos)
        << "axis label with unit";
    EXPECT_NE(text->find("image_classification"), std::string::npos) << "title names the app";
  }
  auto tl = util::read_file(dir / "plots/power_timeline.svg");
  EXPECT_NE(tl->find("cloud0_u"), std::string::npos);          // legend
  EXPECT_NE(tl->find("workload:queries"), std::string::npos);  // phase band label
  EXPECT_NE(r->summary_md.find("| cloud0_u | total |"), std::string::npos) << r->summary_md;
  fs::remove_all(dir);
}

TEST(ReportRender, TimelineAveragesRepeatsAndBandsPhases) {
  std::vector<energy::VmSeries> vms(1);
  vms[0].vm = "a";
  for (int i = 0; i <= 40; ++i) {
    vms[0].watts.t.push_back(i * 0.5);
    vms[0].watts.v.push_back(i * 0.5 < 10 ? 10 : 30);  // repeat 0 at 10 W, repeat 1 at 30 W
  }
  std::vector<record::PhaseInterval> ph = {{"repeat", "x", "", 0, 0, 10},
                                           {"application", "x", "", 0, 2, 8},
                                           {"repeat", "x", "", 1, 10, 20},
                                           {"application", "x", "", 1, 12, 16}};
  auto tl = report::average_timeline(vms, ph);
  EXPECT_EQ(tl.repeats, 2);
  ASSERT_EQ(tl.bands.size(), 1u);
  EXPECT_EQ(tl.bands[0].phase, "application");
  EXPECT_DOUBLE_EQ(tl.bands[0].start, 2);
  EXPECT_DOUBLE_EQ(tl.bands[0].end, 7);  // mean of 8 and 6
  ASSERT_GT(tl.t.size(), 10u);
  EXPECT_NEAR(tl.watts[0][4], 20, 1e-9);  // t = 2 s: mean of 10 and 30
}

TEST(ReportRender, CliExitCodes) {
  auto not_run = fs::temp_directory_path() / ("continuum-notrun-" + std::to_string(getpid()));
  fs::create_directories(not_run);
  util::ProcessSpec s;
  s.argv = {CONTINUUM_BINARY, "report", not_run.string()};
  auto r = util::run_process(s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 2) << r->err;
  EXPECT_FALSE(fs::exists(not_run / "plots"));  // nothing created
  fs::remove_all(not_run);
  if (!util::have_program("gnuplot")) GTEST_SKIP() << "gnuplot-nox not installed";
  auto dir = copy_fixture("cli");
  s.argv = {CONTINUUM_BINARY, "report", dir.string()};
  r = util::run_process(s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0) << r->err;
  EXPECT_NE(r->out.find("## Energy"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir / "plots/energy_bars.png"));
  // A malformed samples.csv is a failure naming the file and line.
  ASSERT_TRUE(
      util::write_file_atomic(dir / "energy/samples.csv",
                              "time,t,vm,target,metric,labels,value\nbroken\nx,1,a,u,m,,1\n")
          .ok());
  r = util::run_process(s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 1);
  EXPECT_NE(r->err.find("samples.csv:2"), std::string::npos) << r->err;
  fs::remove_all(dir);
}

TEST(ReportRender, MissingSamplesWarnOnlyWhenEnergyWasOn) {
  // A run without [energy] has no samples.csv by design: no warning then; with [energy] on, the
  // missing file is worth one.
  auto dir = fs::temp_directory_path() / ("continuum-render-noenergy-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  ASSERT_TRUE(util::write_file_atomic(dir / "events.jsonl", "").ok());
  auto off = report::render(dir, {.energy_enabled = false});
  ASSERT_TRUE(off.ok()) << off.error().message;
  for (const auto& w : off->warnings) EXPECT_EQ(w.find("samples.csv"), std::string::npos) << w;
  EXPECT_NE(off->summary_md.find("[energy] is off"), std::string::npos) << off->summary_md;
  auto on = report::render(dir, {.energy_enabled = true});
  ASSERT_TRUE(on.ok()) << on.error().message;
  bool warned = false;
  for (const auto& w : on->warnings) warned |= w.find("samples.csv missing") != std::string::npos;
  EXPECT_TRUE(warned);
  fs::remove_all(dir);
}

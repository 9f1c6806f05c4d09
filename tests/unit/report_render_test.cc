// Rendering from a saved run directory (tests/data/fixture-run): energy.csv, the power timeline,
// the energy bars and the latency plot come out of real gnuplot, non-trivial; the numbers behind
// the plots (plots/data/*.dat) are the ones energy.csv and samples.csv call for; an exporter gap
// breaks the timeline and is named in the legend and summary; `continuum report` exits 2 on a
// path that is not a run directory and 0 on the fixture.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "continuum/energy/energy.h"
#include "continuum/record/events.h"
#include "continuum/report/plots.h"
#include "continuum/report/render.h"
#include "continuum/util/files.h"
#include "continuum/util/process.h"
#include "support/plot_data.h"

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

namespace {

std::vector<std::vector<std::string>> dat_rows(const fs::path& p) {
  std::vector<std::vector<std::string>> out;
  auto d = test_support::plot_data_detail::read_dat(p);
  if (d) out = d->rows;
  return out;
}

double num(const std::string& s) { return test_support::plot_data_detail::to_num(s); }

// Linear interpolation of (t, v) at x; NaN outside.
double lerp(const std::vector<double>& t, const std::vector<double>& v, double x) {
  for (size_t i = 1; i < t.size(); ++i)
    if (t[i - 1] <= x && x <= t[i])
      return v[i - 1] + (x - t[i - 1]) / (t[i] - t[i - 1]) * (v[i] - v[i - 1]);
  return NAN;
}

}  // namespace

TEST(ReportRender, EnergyBarsAreMeanAndExtremesOfTheRepeatsInEnergyCsv) {
  if (!util::have_program("gnuplot")) GTEST_SKIP() << "gnuplot-nox not installed";
  auto dir = copy_fixture("bars");
  auto r = report::render(dir);
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto rows = energy::read_energy_csv(dir / "energy/energy.csv");
  ASSERT_TRUE(rows.ok());
  // Per VM, the three repeats' whole-repeat joules, read straight from energy.csv.
  std::map<std::string, std::vector<double>> total, app;
  for (const auto& row : *rows) {
    if (row.repeat < 0) continue;
    if (row.phase == "total") total[row.vm].push_back(row.joules);
    if (row.phase == "application") app[row.vm].push_back(row.joules);
  }
  auto tot = dat_rows(dir / "plots/data/energy_total.dat");
  ASSERT_EQ(tot.size(), 3u);
  for (const auto& row : tot) {
    SCOPED_TRACE(row[0]);
    const auto& j = total[row[0]];
    ASSERT_EQ(j.size(), 3u);
    double mean = (j[0] + j[1] + j[2]) / 3;
    // energy.csv rounds to mJ; the .dat has the unrounded figure.
    EXPECT_NEAR(num(row[1]), mean, 1e-3);
    EXPECT_NEAR(num(row[2]), *std::min_element(j.begin(), j.end()), 1e-3);
    EXPECT_NEAR(num(row[3]), *std::max_element(j.begin(), j.end()), 1e-3);
    EXPECT_EQ(row[4], "3");
    EXPECT_LT(num(row[2]), num(row[3])) << "the repeats differ (k * 0.6 W in generate.py)";
  }
  // The per-phase panel: application, every VM (columns: phase, then mean min max n per VM).
  auto per = dat_rows(dir / "plots/data/energy_phase.dat");
  bool found = false;
  for (const auto& row : per) {
    if (row[0] != "application") continue;
    found = true;
    ASSERT_EQ(row.size(), 1u + 4 * 3);
    const char* order[] = {"cloud_controller_u", "cloud0_u", "endpoint0_u"};
    for (size_t v = 0; v < 3; ++v) {
      const auto& j = app[order[v]];
      ASSERT_EQ(j.size(), 3u) << order[v];
      EXPECT_NEAR(num(row[1 + 4 * v]), (j[0] + j[1] + j[2]) / 3, 1e-3) << order[v];
      EXPECT_NEAR(num(row[2 + 4 * v]), *std::min_element(j.begin(), j.end()), 1e-3) << order[v];
      EXPECT_NEAR(num(row[3 + 4 * v]), *std::max_element(j.begin(), j.end()), 1e-3) << order[v];
    }
  }
  EXPECT_TRUE(found);
  // The reusable checker agrees on every bar.
  auto check = test_support::check_energy_bars(dir);
  EXPECT_TRUE(check.ok()) << check.report();
  EXPECT_EQ(check.bars_checked, 3u + 3u * 2u);  // total + (application, workload:queries)
  fs::remove_all(dir);
}

TEST(ReportRender, PowerTimelineIsTheMeanOfTheRepeatsAtSampledOffsets) {
  if (!util::have_program("gnuplot")) GTEST_SKIP() << "gnuplot-nox not installed";
  auto dir = copy_fixture("timeline");
  auto r = report::render(dir);
  ASSERT_TRUE(r.ok()) << r.error().message;
  // Independently: the gauges of samples.csv (W), the repeat starts of events.jsonl.
  auto samples = energy::read_samples(dir / "energy/samples.csv");
  ASSERT_TRUE(samples.ok());
  std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> gauge;
  for (const auto& s : *samples)
    if (s.metric == "scaph_host_power_microwatts") {
      gauge[s.vm].first.push_back(s.t);
      gauge[s.vm].second.push_back(s.value / 1e6);
    }
  auto events = record::read_events(dir / "events.jsonl");
  ASSERT_TRUE(events.ok());
  std::vector<double> starts;
  for (const auto& e : *events)
    if (e.phase == "repeat" && e.event == "start") starts.push_back(e.t);
  ASSERT_EQ(starts.size(), 3u);

  auto rows = dat_rows(dir / "plots/data/power_timeline.dat");
  ASSERT_GT(rows.size(), 30u);
  // Columns: t, then (mean, n) per VM in first-seen order: cloud_controller_u, cloud0_u,
  // endpoint0_u.
  int checked = 0, gap_points = 0;
  for (const auto& row : rows) {
    double t = num(row[0]);
    if (t < 3 || t > 38) continue;
    // cloud_controller_u: no spike, no gap: the plain mean of the three repeats.
    {
      const auto& [ts, w] = gauge["cloud_controller_u"];
      double want =
          (lerp(ts, w, starts[0] + t) + lerp(ts, w, starts[1] + t) + lerp(ts, w, starts[2] + t)) /
          3;
      EXPECT_NEAR(num(row[1]), want, 1e-6) << "t=" << t;
      EXPECT_EQ(row[2], "3");
      ++checked;
    }
    // endpoint0_u: its exporter was down 12..20 s into repeat 2 (the scrape at 163.006-163.010 s
    // had data, the next at 172.006-172.010 s): there the line is the mean of repeats 0 and 1.
    {
      const auto& [ts, w] = gauge["endpoint0_u"];
      double x2 = starts[2] + t;
      bool down = x2 > 163.05 && x2 < 171.95;
      bool near_end = std::abs(x2 - 163) < 0.05 || std::abs(x2 - 172) < 0.05;
      if (near_end) continue;  // the gap's exact ends: see the checker below
      double sum = lerp(ts, w, starts[0] + t) + lerp(ts, w, starts[1] + t);
      double want = down ? sum / 2 : (sum + lerp(ts, w, x2)) / 3;
      EXPECT_NEAR(num(row[5]), want, 1e-6) << "t=" << t;
      EXPECT_EQ(row[6], down ? "2" : "3") << "t=" << t;
      gap_points += down;
    }
  }
  EXPECT_GT(checked, 30);
  EXPECT_GE(gap_points, 7);
  // Every point of every VM, with the spike rule and the gap's exact ends: the checker.
  auto check = test_support::check_power_timeline(dir);
  EXPECT_TRUE(check.ok()) << check.report();
  EXPECT_TRUE(check.unchecked.empty());
  EXPECT_EQ(check.timeline_points_checked, 3 * rows.size());
  EXPECT_TRUE(test_support::check_plot_data(dir).ok());

  // The legend and the summary say what the line of endpoint0_u is made of.
  auto svg = util::read_file(dir / "plots/power_timeline.svg");
  ASSERT_TRUE(svg.ok());
  EXPECT_NE(svg->find("endpoint0_u (2 of 3 repeats complete, 1 with gaps)"), std::string::npos);
  EXPECT_NE(svg->find("cloud0_u (3 repeats)"), std::string::npos);
  EXPECT_EQ(svg->find("(mean of 3 repeats)"), std::string::npos);
  EXPECT_NE(svg->find("count per VM in the legend"), std::string::npos);
  const auto& md = r->summary_md;
  EXPECT_NE(md.find("### Exporter gaps"), std::string::npos) << md;
  EXPECT_NE(md.find("| endpoint0_u | http://127.0.0.1:8082/metrics | 125 of 133 | 1 | 9.0 |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("**endpoint0_u**: no data from 163.0 s to 172.0 s (9.0 s, 7 % of its"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("8 scrape(s) without data); last error: Failed to connect to 127.0.0.1 port "
                    "8082 after 0 ms: Couldn't connect to server"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("- endpoint0_u (2 of 3 repeats complete, 1 with gaps)"), std::string::npos)
      << md;
  fs::remove_all(dir);
}

TEST(ReportRender, GapBreaksTheTimelineInsteadOfJoiningIt) {
  if (!util::have_program("gnuplot")) GTEST_SKIP() << "gnuplot-nox not installed";
  // Two repeats of 10 s; VM a measured throughout; VM b's exporter down from 3 s to 6 s of both
  // repeats (the power samples around it are 10 W: a joined line would draw 10 W there).
  std::vector<energy::VmSeries> vms(2);
  vms[0].vm = "a";
  vms[1].vm = "b";
  for (int i = 0; i <= 40; ++i) {
    double t = i * 0.5;
    vms[0].watts.t.push_back(t);
    vms[0].watts.v.push_back(20);
    double off = std::fmod(t, 10);
    if (off > 3 && off < 6) continue;
    vms[1].watts.t.push_back(t);
    vms[1].watts.v.push_back(10);
  }
  vms[1].gaps = {{3, 6, 5, "Failed to connect", false}, {13, 16, 5, "Failed to connect", false}};
  std::vector<record::PhaseInterval> ph = {{"repeat", "x", "", 0, 0, 10},
                                           {"repeat", "x", "", 1, 10, 20}};
  auto tl = report::average_timeline(vms, ph);
  ASSERT_EQ(tl.repeats, 2);
  EXPECT_EQ(tl.legend(0), "a (2 repeats)");
  EXPECT_EQ(tl.legend(1), "b (0 of 2 repeats complete, 2 with gaps)");
  EXPECT_FALSE(tl.complete());
  size_t nan = 0;
  for (size_t i = 0; i < tl.t.size(); ++i) {
    bool inside = tl.t[i] > 3 + 1e-9 && tl.t[i] < 6 - 1e-9;
    EXPECT_EQ(std::isnan(tl.watts[1][i]), inside) << tl.t[i];
    EXPECT_EQ(tl.n[1][i], inside ? 0 : 2) << tl.t[i];
    nan += inside;
  }
  EXPECT_GT(nan, 3u);

  auto dir = fs::temp_directory_path() / ("continuum-render-gap-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "data");
  auto f = report::plot_power_timeline(tl, "app", dir);
  ASSERT_TRUE(f.ok()) << f.error().message;
  auto gp = util::read_file(dir / "data/power_timeline.gp");
  ASSERT_TRUE(gp.ok());
  EXPECT_EQ(gp->find("datafile missing"), std::string::npos) << "it would join the line over NaN";
  // In the SVG, b's line is two pieces: its path moves (M) once for the key sample and twice
  // for the line (before and after the gap); a's line is one piece.
  auto svg = util::read_file(f->svg);
  ASSERT_TRUE(svg.ok());
  auto moves_in_plot = [&](const std::string& title) {
    // gnuplot's SVG: per plot, its key text <text>TITLE</text>, then one path for the key sample
    // and the line: d='M.. L.. M.. L..'.
    size_t at = svg->find("<text>" + title + "</text>");
    if (at == std::string::npos) return -1;
    size_t d = svg->find("d='", at);
    if (d == std::string::npos) return -1;
    int m = 0;
    for (size_t i = d + 3; i < svg->size() && (*svg)[i] != '\''; ++i) m += (*svg)[i] == 'M';
    return m;
  };
  EXPECT_EQ(moves_in_plot("a (2 repeats)"), 2);
  EXPECT_EQ(moves_in_plot("b (0 of 2 repeats complete, 2 with gaps)"), 3);
  fs::remove_all(dir);
}

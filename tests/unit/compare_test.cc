// `continuum compare` (report/compare.h): three run directories written here with known energy
// (energy.csv), power (samples.csv), phases (events.jsonl), plans and platforms
// (environment.json); the table's numbers, the error bars in the plot data, the power timelines,
// the platform differences, real gnuplot output, and the command's exit codes.
#include "continuum/report/compare.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "continuum/energy/energy.h"
#include "continuum/record/environment.h"
#include "continuum/util/files.h"
#include "continuum/util/process.h"
#include "continuum/util/strings.h"
#include "support/temp_dir.h"

using namespace continuum;
namespace fs = std::filesystem;

namespace {

using test_support::TempDir;

/// Repeat k runs from 10 + 30k: application for 10 s, then workload:q for 10 s.
double repeat_start(int k) { return 10.0 + 30.0 * k; }

struct RunSpec {
  std::string user;        ///< VM cloud0_<user>
  std::string experiment;  ///< in events.jsonl; "" = none (older logs)
  std::string config_name;
  double app_joules[2];    ///< application phase, repeats 0 and 1 (10 s each)
  double total_joules[2];  ///< whole repeat (20 s)
  double watts;            ///< constant power in samples.csv
  std::string accelerator, guest_kernel;
};

void write_events(const fs::path& dir, const std::string& experiment) {
  std::string text;
  auto ev = [&](double t, const std::string& phase, const std::string& event, int repeat) {
    nlohmann::json j = {{"time", "2026-12-01T10:00:00.000000000Z"},
                        {"t", t},
                        {"app", "app"},
                        {"repeat", repeat},
                        {"phase", phase},
                        {"event", event},
                        {"node", ""},
                        {"details", nlohmann::json::object()}};
    if (!experiment.empty()) j["experiment"] = experiment;
    text += j.dump() + "\n";
  };
  for (int k = 0; k < 2; ++k) {
    double s = repeat_start(k);
    ev(s, "application", "start", k);
    ev(s + 10, "application", "end", k);
    ev(s + 10, "workload:q", "start", k);
    ev(s + 20, "workload:q", "end", k);
  }
  ASSERT_TRUE(util::write_file_atomic(dir / "events.jsonl", text).ok());
}

fs::path make_run(const fs::path& parent, const std::string& name, const RunSpec& r) {
  fs::path dir = parent / name;
  const std::string vm = "cloud0_" + r.user;
  nlohmann::json plan = {{"config_name", r.config_name},
                         {"nodes", {{{"id", "cloud0"}, {"name", vm}}}}};
  EXPECT_TRUE(util::write_file_atomic(dir / "plan.json", plan.dump()).ok());
  write_events(dir, r.experiment);

  std::vector<energy::EnergyRow> rows;
  for (int k = 0; k < 2; ++k) {
    for (auto [phase, len, joules] : {std::tuple{"application", 10.0, r.app_joules[k]},
                                      std::tuple{"total", 20.0, r.total_joules[k]}}) {
      energy::EnergyRow row;
      row.app = "app";
      row.repeat = k;
      row.phase = phase;
      row.vm = vm;
      row.start = repeat_start(k);
      row.end = row.start + len;
      row.joules = joules;
      row.source = "counter";
      row.joules_counter = joules;
      row.coverage = 1.0;
      row.samples = static_cast<size_t>(len);
      rows.push_back(row);
    }
  }
  EXPECT_TRUE(
      util::write_file_atomic(dir / "energy" / "energy.csv", energy::energy_csv(rows)).ok());

  std::string samples = energy::samples_csv_header() + "\n";
  for (int i = 5; i <= 70; ++i) {
    energy::SampleRow s;
    s.time = "2026-12-01T10:00:00.000000000Z";
    s.t = i;
    s.vm = vm;
    s.target = "http://127.0.0.1:8080/metrics";
    s.metric = energy::kPowerMetric;
    s.value = r.watts * 1e6;
    samples += energy::samples_csv_line(s);
  }
  EXPECT_TRUE(util::write_file_atomic(dir / "energy" / "samples.csv", samples).ok());

  record::Environment env;
  env.collected = "2026-12-01T10:00:0" + std::to_string(name.size() % 10) + ".0Z";
  env.continuum = {"0.1.0", std::string(40, 'c'), true, false};
  env.host = {"lab", "Test CPU 9000", 2, "Linux", "6.1.0-27-amd64", "#1 SMP", "x86_64"};
  record::HypervisorFacts hv;
  hv.uri = "qemu:///system";
  hv.type = "QEMU";
  hv.hypervisor_version = "7.2.0";
  hv.libvirt_version = "9.0.0";
  hv.accelerator = r.accelerator;
  env.hypervisors.push_back(hv);
  record::GuestFacts g;
  g.node = "cloud0";
  g.domain = vm;
  g.accelerator = r.accelerator;
  g.kernel = r.guest_kernel;
  g.vcpus = 1;
  env.guests.push_back(g);
  EXPECT_TRUE(record::write_environment(dir, env).ok());
  return dir;
}

struct Fixture {
  TempDir tmp{"runs"};
  fs::path a, b, c;
  Fixture() {
    a = make_run(
        tmp.path, "2026-12-01T10-00-00_expA",
        {"alice", "expA", "configA", {100, 120}, {150, 190}, 10.0, "kvm", "6.1.0-27-amd64"});
    // An older log without "experiment": plan.json's config name is the experiment.
    b = make_run(tmp.path, "2026-12-01T11-00-00_b",
                 {"bob", "", "expB", {200, 260}, {300, 380}, 20.0, "tcg", "6.1.0-28-amd64"});
    // Only an event log: no plan, no energy, no platform.
    c = tmp.path / "runC";
    write_events(c, "");
  }
};

std::string line_starting(const std::string& text, const std::string& prefix) {
  for (const auto& l : util::split(text, '\n'))
    if (l.rfind(prefix, 0) == 0) return l;
  return "";
}

struct Ran {
  int code = -1;
  std::string out, err;
};
Ran run_binary(std::vector<std::string> args) {
  util::ProcessSpec spec;
  spec.argv = {CONTINUUM_BINARY};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.timeout = std::chrono::seconds(120);
  auto r = util::run_process(spec);
  EXPECT_TRUE(r.ok());
  if (!r) return {};
  return {r->exit_code, r->out, r->err};
}

}  // namespace

TEST(Compare, LoadsARunWithItsExperimentVmsAndPlatform) {
  Fixture f;
  auto a = report::load_compared_run(f.a);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->experiment, "expA");  // events.jsonl's field wins over plan.json's config name
  EXPECT_EQ(a->repeats, 2);
  ASSERT_TRUE(a->environment.has_value());
  // VMs by plan node id: cloud0_alice and cloud0_bob are the same VM of the experiment.
  ASSERT_FALSE(a->energy.empty());
  for (const auto& s : a->energy) EXPECT_EQ(s.vm, "cloud0");
  ASSERT_EQ(a->timeline.vms, std::vector<std::string>{"cloud0"});
  EXPECT_EQ(a->timeline.repeats, 2);

  auto b = report::load_compared_run(f.b);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->experiment, "expB");

  auto c = report::load_compared_run(f.c);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->experiment, "runC");  // no plan.json, no field: the directory's name
  EXPECT_TRUE(c->energy.empty());
  EXPECT_FALSE(c->environment.has_value());
}

TEST(Compare, TablePlotDataAndPlatforms) {
  if (!util::have_program("gnuplot")) GTEST_SKIP() << "gnuplot-nox not installed";
  Fixture f;
  auto out = f.tmp.path / "cmp";
  auto r = report::compare_runs({f.a, f.b, f.c}, out);
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto md = util::read_file(out / "compare.md");
  ASSERT_TRUE(md.ok());
  EXPECT_EQ(*md, r->markdown);

  // Energy over the two repeats (J), mean power = mean over repeats of joules / seconds (W), and
  // the difference from the first experiment.
  EXPECT_NE(md->find("| cloud0 | total | expA | 170.0 | 150.0 | 190.0 | 8.50 | 2 | - |"),
            std::string::npos)
      << *md;
  EXPECT_NE(md->find("| cloud0 | total | expB | 340.0 | 300.0 | 380.0 | 17.00 | 2 | +100.0 % |"),
            std::string::npos)
      << *md;
  EXPECT_NE(md->find("| cloud0 | application | expA | 110.0 | 100.0 | 120.0 | 11.00 | 2 | - |"),
            std::string::npos)
      << *md;
  EXPECT_NE(
      md->find("| cloud0 | application | expB | 230.0 | 200.0 | 260.0 | 23.00 | 2 | +109.1 % |"),
      std::string::npos)
      << *md;
  EXPECT_NE(md->find("| cloud0 | total | runC | - | - | - | - | 0 | - |"), std::string::npos);
  // "total" (the whole repeat) comes before the phases.
  EXPECT_LT(md->find("| cloud0 | total | expA"), md->find("| cloud0 | application | expA"));

  // The error bars: mean, min, max per experiment (runC has no energy: no bars, no column).
  auto dat = util::read_file(out / "plots/data/compare_energy.dat");
  ASSERT_TRUE(dat.ok());
  EXPECT_EQ(line_starting(*dat, "\"cloud0 / total\""),
            "\"cloud0 / total\" 170 150 190 340 300 380");
  EXPECT_EQ(line_starting(*dat, "\"cloud0 / application\""),
            "\"cloud0 / application\" 110 100 120 230 200 260");
  EXPECT_NE(line_starting(*dat, "#").find("\"expB mean\""), std::string::npos);
  auto gp = util::read_file(out / "plots/data/compare_energy.gp");
  ASSERT_TRUE(gp.ok());
  EXPECT_NE(gp->find("errorbars"), std::string::npos);

  // Power timelines: repeat-averaged, one data file per experiment with samples.
  for (auto [file, watts] :
       {std::pair{"compare_power_1.dat", 10.0}, {"compare_power_2.dat", 20.0}}) {
    SCOPED_TRACE(file);
    auto p = util::read_file(out / "plots/data" / file);
    ASSERT_TRUE(p.ok());
    auto lines = util::split(*p, '\n');
    ASSERT_GT(lines.size(), 15u);
    EXPECT_EQ(lines[0], "# t_s \"cloud0\"");
    int points = 0;
    for (size_t i = 1; i < lines.size(); ++i) {
      auto cols = util::split(lines[i], ' ');
      if (cols.size() != 2) continue;
      EXPECT_NEAR(std::stod(cols[1]), watts, 1e-6) << lines[i];
      ++points;
    }
    EXPECT_GE(points, 20);  // 0..20 s of the repeat, every second
  }
  EXPECT_FALSE(fs::exists(out / "plots/data/compare_power_3.dat"));

  for (const char* name : {"compare_energy", "compare_power"}) {
    SCOPED_TRACE(name);
    auto info = report::png_info(out / "plots" / (std::string(name) + ".png"));
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_GT(info->colours, 20u);
    auto svg = util::read_file(out / "plots" / (std::string(name) + ".svg"));
    ASSERT_TRUE(svg.ok());
    EXPECT_NE(svg->find("expA"), std::string::npos);  // legend names the experiments
    EXPECT_NE(svg->find("expB"), std::string::npos);
    EXPECT_NE(md->find("](plots/" + std::string(name) + ".png)"), std::string::npos);
  }

  // Platforms: the fields that differ, and the run that has no environment.json.
  EXPECT_NE(md->find("| `accelerator` | kvm | tcg | — |"), std::string::npos) << *md;
  EXPECT_NE(md->find("| `guests.cloud0.kernel` | 6.1.0-27-amd64 | 6.1.0-28-amd64 | — |"),
            std::string::npos);
  EXPECT_NE(md->find("| `hypervisors.qemu:///system.accelerator` | kvm | tcg | — |"),
            std::string::npos);
  EXPECT_EQ(md->find("`collected`"), std::string::npos) << "collection time always differs";
  EXPECT_EQ(md->find("`host.cpu_model`"), std::string::npos) << "equal fields are not listed";
  EXPECT_NE(md->find("**runC has no environment.json**"), std::string::npos);
  // The run directories are inputs only.
  EXPECT_FALSE(fs::exists(f.a / "compare.md"));
  EXPECT_FALSE(fs::exists(f.a / "plots"));
}

TEST(Compare, PlatformDifferencesAndTwoRunsOfOneExperiment) {
  report::ComparedRun x, y, z;
  x.environment = nlohmann::json{{"collected", "1"}, {"a", {{"b", 1}, {"c", "x"}}}, {"n", nullptr}};
  y.environment = nlohmann::json{{"collected", "2"}, {"a", {{"b", 1}, {"c", "y"}}}, {"n", "v"}};
  z.environment = nlohmann::json{{"collected", "3"}, {"a", {{"b", 1}, {"c", "x"}}}};
  auto d = report::platform_differences({x, y, z});
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].field, "a.c");
  EXPECT_EQ(d[0].values, (std::vector<std::string>{"x", "y", "x"}));
  EXPECT_EQ(d[1].field, "n");
  EXPECT_EQ(d[1].values, (std::vector<std::string>{"(unknown)", "v", "(absent)"}));
  EXPECT_TRUE(report::platform_differences({x, x}).empty());

  // Two runs of the same configuration: labelled by their directories.
  if (!util::have_program("gnuplot")) GTEST_SKIP() << "gnuplot-nox not installed";
  TempDir t("same");
  RunSpec s{"u", "same", "same", {1, 2}, {3, 4}, 5.0, "tcg", "k"};
  auto a = make_run(t.path, "2026-12-01T10-00-00_same", s);
  auto b = make_run(t.path, "2026-12-01T12-00-00_same", s);
  auto r = report::compare_runs({a, b}, t.path / "out");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_NE(r->markdown.find("| 2026-12-01T12-00-00_same |"), std::string::npos) << r->markdown;
  EXPECT_NE(r->markdown.find("report the same platform"), std::string::npos) << r->markdown;
}

TEST(Compare, DefaultOutputDirectoryIsNextToTheFirstRun) {
  auto now = std::chrono::system_clock::from_time_t(1764583200);  // 2025-12-01T10:00:00Z
  TempDir t("default");
  auto first = t.path / "runs" / "2026-12-01T10-00-00_a";
  fs::create_directories(first);
  EXPECT_EQ(report::default_compare_dir(first, now),
            t.path / "runs" / "compare_2025-12-01T10-00-00");
  fs::create_directories(t.path / "runs" / "compare_2025-12-01T10-00-00");
  EXPECT_EQ(report::default_compare_dir(first.string() + "/", now),
            t.path / "runs" / "compare_2025-12-01T10-00-00-2");
}

TEST(Compare, CommandExitCodes) {
  if (!util::have_program("gnuplot")) GTEST_SKIP() << "gnuplot-nox not installed";
  Fixture f;
  // Usage: one directory, or one that is not a run directory.
  EXPECT_EQ(run_binary({"compare", f.a.string()}).code, 2);
  auto not_run = f.tmp.path / "plain";
  fs::create_directories(not_run);
  auto r = run_binary({"compare", f.a.string(), not_run.string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("plain: not a run directory"), std::string::npos) << r.err;
  EXPECT_EQ(run_binary({"compare"}).code, 2);

  // Fine, with -o.
  auto out = f.tmp.path / "o";
  r = run_binary({"compare", f.a.string(), f.b.string(), "-o", out.string()});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(out / "compare.md"));
  EXPECT_NE(r.out.find("| cloud0 | total | expB | 340.0 |"), std::string::npos) << r.out;

  // Without -o: compare_<time> next to the first run.
  r = run_binary({"compare", f.a.string(), f.b.string()});
  EXPECT_EQ(r.code, 0) << r.err;
  int made = 0;
  for (const auto& e : fs::directory_iterator(f.tmp.path))
    if (e.path().filename().string().rfind("compare_", 0) == 0) {
      ++made;
      EXPECT_TRUE(fs::exists(e.path() / "compare.md"));
      EXPECT_TRUE(fs::exists(e.path() / "plots/compare_energy.png"));
    }
  EXPECT_EQ(made, 1);

  // Malformed input: exit 1, naming file and line.
  {
    std::ofstream bad(f.b / "energy/energy.csv", std::ios::app);
    bad << "app,1,total,,cloud0_bob,not-a-number\n";
  }
  r = run_binary({"compare", f.a.string(), f.b.string(), "-o", out.string()});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("energy.csv:6"), std::string::npos) << r.err;
  ASSERT_TRUE(util::write_file_atomic(f.b / "energy/energy.csv",
                                      energy::energy_csv({}))  // header only: no energy, fine
                  .ok());
  ASSERT_TRUE(util::write_file_atomic(f.a / "environment.json", "{\n  \"host\": ,\n}\n").ok());
  r = run_binary({"compare", f.a.string(), f.b.string(), "-o", out.string()});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("environment.json"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("line 2"), std::string::npos) << r.err;

  // Output into a run directory would mix a comparison into a run's record.
  EXPECT_EQ(run_binary({"compare", f.a.string(), f.b.string(), "-o", f.c.string()}).code, 2);
}

#include "continuum/report/compare.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <fstream>
#include <set>

#include "continuum/energy/energy.h"
#include "continuum/record/environment.h"
#include "continuum/record/events.h"
#include "continuum/record/run_dir.h"
#include "continuum/util/files.h"
#include "continuum/util/strings.h"
#include "gnuplot.h"

namespace continuum::report {
namespace {

namespace fs = std::filesystem;
using gnuplot::color;
using gnuplot::dq;
using gnuplot::gq;
using gnuplot::num;

std::string fixed(double v, int prec) { return util::format_fixed(v, prec, "-"); }

/// A JSON file, or an Error naming it (nlohmann's message gives line and column).
Expected<nlohmann::json> read_json(const fs::path& file) {
  auto text = TRY(util::read_file(file));
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return make_error(file.string() + ": malformed JSON: " + e.what());
  }
}

/// The first event line that carries an "experiment" (top level, or in details). read_events has
/// already checked every line, so a line that does not parse here is a truncated last one.
std::string experiment_from_events(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("\"experiment\"") == std::string::npos) continue;
    try {
      auto j = nlohmann::json::parse(line);
      for (const auto* o : {&j, j.contains("details") ? &j["details"] : nullptr}) {
        if (!o || !o->is_object()) continue;
        auto it = o->find("experiment");
        if (it != o->end() && it->is_string() && !it->get<std::string>().empty())
          return it->get<std::string>();
      }
    } catch (const nlohmann::json::exception&) {
    }
  }
  return "";
}

std::string dir_name(const fs::path& dir) {
  auto name = dir.filename().string();
  return name.empty() ? dir.parent_path().filename().string() : name;
}

/// The energy rows of a run: energy.csv, or computed from samples.csv as `report` would.
Expected<std::vector<energy::EnergyRow>> energy_rows(const fs::path& dir,
                                                     const std::vector<record::PhaseInterval>& ph,
                                                     const std::vector<energy::VmSeries>* series,
                                                     std::vector<std::string>& notes) {
  std::error_code ec;
  auto csv = dir / "energy" / "energy.csv";
  if (fs::exists(csv, ec)) return energy::read_energy_csv(csv);
  if (series) {
    notes.push_back("no energy/energy.csv: energy computed from energy/samples.csv");
    return energy::attribute(*series, ph);
  }
  notes.push_back("no energy/energy.csv or energy/samples.csv: no energy figures");
  return std::vector<energy::EnergyRow>{};
}

/// Phase "total" first (the whole repeat), then the order phases were first seen in.
std::vector<std::pair<std::string, std::string>> stat_keys(const std::vector<ComparedRun>& runs) {
  std::vector<std::string> vms, phases;
  auto add = [](std::vector<std::string>& v, const std::string& s) {
    if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
  };
  for (const auto& r : runs)
    for (const auto& s : r.energy) {
      add(vms, s.vm);
      add(phases, s.phase);
    }
  auto total = std::find(phases.begin(), phases.end(), "total");
  if (total != phases.end()) std::rotate(phases.begin(), total, total + 1);
  std::vector<std::pair<std::string, std::string>> keys;
  for (const auto& vm : vms)
    for (const auto& ph : phases) {
      bool any = false;
      for (const auto& r : runs)
        for (const auto& s : r.energy) any = any || (s.vm == vm && s.phase == ph);
      if (any) keys.emplace_back(vm, ph);
    }
  return keys;
}

const EnergyStat* find_stat(const std::vector<EnergyStat>& v, const std::string& vm,
                            const std::string& phase) {
  for (const auto& s : v)
    if (s.vm == vm && s.phase == phase) return &s;
  return nullptr;
}

std::string md_cell(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::string out;
  for (char c : s) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

std::string utc_stamp(std::chrono::system_clock::time_point now) {
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H-%M-%S", &tm);
  return buf;
}

/// Energy per (VM, phase), one bar per experiment with min–max error bars.
Expected<PlotFiles> plot_compare_energy(const std::vector<ComparedRun>& runs,
                                        const fs::path& plots_dir) {
  auto keys = stat_keys(runs);
  // A run without energy figures gets no bars (a column of NaN only would stop gnuplot); the
  // others keep their colour index, the one they have in the power plot.
  std::vector<size_t> shown;
  for (size_t k = 0; k < runs.size(); ++k)
    if (!runs[k].energy.empty()) shown.push_back(k);
  if (keys.empty() || shown.empty()) return make_error("no energy figures to compare");
  std::string data = "# vm/phase";
  for (size_t k : shown) data += " " + dq(runs[k].label + " mean") + " min max";
  data += "\n";
  for (const auto& [vm, ph] : keys) {
    data += dq(vm + " / " + ph);
    for (size_t k : shown) {
      const EnergyStat* s = find_stat(runs[k].energy, vm, ph);
      data += s ? " " + num(s->mean) + " " + num(s->min) + " " + num(s->max) : " NaN NaN NaN";
    }
    data += "\n";
  }
  TRY_STATUS(util::write_file_atomic(plots_dir / "data" / "compare_energy.dat", data));
  std::string b;
  b += "set title " + gq("Energy per VM and phase (mean, error bars min-max over repeats)") +
       " font ',13'\n";
  b += "set datafile missing 'NaN'\nset style data histograms\n";
  b += "set style histogram errorbars gap 1.5 lw 1.5\nset style fill solid 0.85 border -1\n";
  b += "set boxwidth 0.9\nset grid ytics lc rgb '#d0d0d0'\nset yrange [0:*]\n";
  b += "set ylabel 'Energy (J)'\nset xlabel 'VM / phase'\n";
  b += "set xtics nomirror rotate by -30\nset ytics nomirror\nset border 3\nset bars front\n";
  b += "set key outside right top title 'Experiment'\n";
  b += "plot ";
  for (size_t i = 0; i < shown.size(); ++i) {
    if (i) b += ", \\\n     ";
    b += "'data/compare_energy.dat' using " + std::to_string(2 + 3 * i) + ":" +
         std::to_string(3 + 3 * i) + ":" + std::to_string(4 + 3 * i) + (i == 0 ? ":xtic(1)" : "") +
         " lc rgb '" + color(shown[i]) + "' title " + gq(runs[shown[i]].label);
  }
  b += "\n";
  int width = std::clamp(400 + static_cast<int>(keys.size() * shown.size()) * 45, 1000, 2400);
  return gnuplot::draw(plots_dir, "compare_energy", b, width, 640);
}

/// Power over time per VM (one panel each), the experiments' repeat-averaged lines overlaid.
Expected<PlotFiles> plot_compare_power(const std::vector<ComparedRun>& runs,
                                       const fs::path& plots_dir) {
  std::vector<std::string> vms;
  double tmax = 0;
  for (size_t k = 0; k < runs.size(); ++k) {
    const Timeline& tl = runs[k].timeline;
    if (tl.t.empty()) continue;
    for (const auto& vm : tl.vms)
      if (std::find(vms.begin(), vms.end(), vm) == vms.end()) vms.push_back(vm);
    tmax = std::max(tmax, tl.t.back());
    std::string data = "# t_s";
    for (const auto& vm : tl.vms) data += " " + dq(vm);
    data += "\n";
    for (size_t i = 0; i < tl.t.size(); ++i) {
      data += num(tl.t[i]);
      for (size_t v = 0; v < tl.vms.size(); ++v) data += " " + num(tl.watts[v][i]);
      data += "\n";
    }
    TRY_STATUS(util::write_file_atomic(
        plots_dir / "data" / ("compare_power_" + std::to_string(k + 1) + ".dat"), data));
  }
  if (vms.empty()) return make_error("no power samples to compare");
  std::string b;
  b += "set datafile missing 'NaN'\nset grid ytics lc rgb '#d0d0d0'\n";
  b += "set border 3\nset xtics nomirror\nset ytics nomirror\nset yrange [0:*]\n";
  b += "set xrange [0:" + num(tmax > 0 ? tmax : 1) + "]\nset ylabel 'Power (W)'\n";
  b += "set key outside right top title 'Experiment'\n";
  b += "set multiplot layout " + std::to_string(vms.size()) + ",1 title " +
       gq("Power over time, mean over repeats: experiments overlaid") + " font ',13'\n";
  for (size_t v = 0; v < vms.size(); ++v) {
    b += "set title " + gq(vms[v]) + "\n";
    b += v + 1 == vms.size() ? "set xlabel 'Time since repeat start (s)'\n" : "unset xlabel\n";
    b += "plot ";
    bool first = true;
    for (size_t k = 0; k < runs.size(); ++k) {
      const auto& tl = runs[k].timeline;
      auto it = std::find(tl.vms.begin(), tl.vms.end(), vms[v]);
      if (tl.t.empty() || it == tl.vms.end()) continue;
      if (!first) b += ", \\\n     ";
      first = false;
      b += "'data/compare_power_" + std::to_string(k + 1) +
           ".dat' using 1:" + std::to_string(2 + (it - tl.vms.begin())) +
           " with lines lw 2 lc rgb '" + color(k) + "' title " + gq(runs[k].label);
    }
    b += "\n";
  }
  int height = std::clamp(120 + 280 * static_cast<int>(vms.size()), 500, 3000);
  return gnuplot::draw(plots_dir, "compare_power", b, 1200, height);
}

}  // namespace

Expected<ComparedRun> load_compared_run(const fs::path& dir) {
  ComparedRun run;
  run.dir = dir;
  std::error_code ec;

  // VM domain name -> plan node id, so that runs of different users line up.
  std::map<std::string, std::string> node_of;
  std::string config_name;
  auto plan_file = dir / "plan.json";
  if (fs::exists(plan_file, ec)) {
    auto plan = TRY(read_json(plan_file));
    if (plan.is_object()) {
      if (auto it = plan.find("config_name"); it != plan.end() && it->is_string())
        config_name = it->get<std::string>();
      if (auto nodes = plan.find("nodes"); nodes != plan.end() && nodes->is_array())
        for (const auto& n : *nodes)
          if (n.is_object() && n.contains("id") && n.contains("name") && n["id"].is_string() &&
              n["name"].is_string())
            node_of[n["name"].get<std::string>()] = n["id"].get<std::string>();
    }
  }

  std::vector<record::PhaseInterval> phases;
  auto events_file = dir / "events.jsonl";
  std::string experiment;
  if (fs::exists(events_file, ec)) {
    phases = record::phase_intervals(TRY(record::read_events(events_file)));
    experiment = experiment_from_events(events_file);
  } else {
    run.notes.push_back("no events.jsonl: energy is not split into phases");
  }
  run.experiment = !experiment.empty()    ? experiment
                   : !config_name.empty() ? config_name
                                          : dir_name(dir);

  std::optional<std::vector<energy::VmSeries>> series;
  auto samples_file = dir / "energy" / "samples.csv";
  if (fs::exists(samples_file, ec))
    series = energy::build_series(TRY(energy::read_samples(samples_file)));
  auto rows = TRY(energy_rows(dir, phases, series ? &*series : nullptr, run.notes));

  auto key = [&](const std::string& vm) {
    auto it = node_of.find(vm);
    return it == node_of.end() ? vm : it->second;
  };
  run.energy = energy_stats(rows);
  // Mean power through the same selection of rows (coverage, repeats, duplicates of "total"):
  // each row's joules replaced by its mean power.
  std::vector<energy::EnergyRow> watts = rows;
  for (auto& r : watts) r.joules = r.mean_watts();
  run.power = energy_stats(watts);
  for (auto* v : {&run.energy, &run.power})
    for (auto& s : *v) s.vm = key(s.vm);
  std::set<int> repeats;
  for (const auto& r : rows)
    if (r.repeat >= 0) repeats.insert(r.repeat);
  run.repeats = static_cast<int>(repeats.size());

  if (series && !series->empty()) {
    run.timeline = average_timeline(*series, phases);
    for (auto& vm : run.timeline.vms) vm = key(vm);
    if (run.repeats == 0) run.repeats = run.timeline.repeats;
  } else {
    run.notes.push_back("no power samples: not in the power timeline");
  }

  auto env_file = dir / record::kEnvironmentFile;
  if (fs::exists(env_file, ec)) {
    auto env = TRY(read_json(env_file));
    if (!env.is_object()) return make_error(env_file.string() + ":1: not a JSON object");
    run.environment = std::move(env);
  } else {
    run.notes.push_back(
        "no environment.json: its platform is unknown, so its numbers may not be comparable");
  }
  return run;
}

std::map<std::string, std::string> flatten_environment(const nlohmann::json& env) {
  std::map<std::string, std::string> out;
  auto walk = [&](auto&& self, const nlohmann::json& j, const std::string& prefix) -> void {
    if (j.is_object()) {
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (prefix.empty() && (it.key() == "collected" || it.key() == "errors")) continue;
        self(self, it.value(), prefix.empty() ? it.key() : prefix + "." + it.key());
      }
      return;
    }
    if (j.is_null())
      out[prefix] = "(unknown)";
    else if (j.is_string())
      out[prefix] = j.get<std::string>();
    else
      out[prefix] = j.dump();
  };
  walk(walk, env, "");
  return out;
}

std::vector<PlatformDifference> platform_differences(const std::vector<ComparedRun>& runs) {
  std::vector<std::map<std::string, std::string>> flat(runs.size());
  std::set<std::string> fields;
  size_t with_env = 0;
  for (size_t k = 0; k < runs.size(); ++k) {
    if (!runs[k].environment) continue;
    ++with_env;
    flat[k] = flatten_environment(*runs[k].environment);
    for (const auto& [f, v] : flat[k]) fields.insert(f);
  }
  std::vector<PlatformDifference> out;
  if (with_env < 2) return out;
  for (const auto& f : fields) {
    PlatformDifference d{f, {}};
    std::set<std::string> distinct;
    for (size_t k = 0; k < runs.size(); ++k) {
      if (!runs[k].environment) {
        d.values.emplace_back();
        continue;
      }
      auto it = flat[k].find(f);
      d.values.push_back(it == flat[k].end() ? "(absent)" : it->second);
      distinct.insert(d.values.back());
    }
    if (distinct.size() > 1) out.push_back(std::move(d));
  }
  return out;
}

std::string compare_markdown(const std::vector<ComparedRun>& runs,
                             const std::vector<fs::path>& plots) {
  std::string md = "# continuum compare: " + std::to_string(runs.size()) + " experiments\n\n";
  md += "| # | experiment | run directory | repeats | environment.json |\n";
  md += "|---:|---|---|---:|---|\n";
  for (size_t k = 0; k < runs.size(); ++k)
    md += "| " + std::to_string(k + 1) + " | " + md_cell(runs[k].label) + " | `" +
          md_cell(runs[k].dir.string()) + "` | " + std::to_string(runs[k].repeats) + " | " +
          (runs[k].environment ? "yes" : "**missing**") + " |\n";
  bool any_note = false;
  for (const auto& r : runs)
    for (const auto& n : r.notes) {
      if (!any_note) md += "\n";
      any_note = true;
      md += "- " + md_cell(r.label) + ": " + n + "\n";
    }

  md += "\n## Energy per VM and phase\n\n";
  auto keys = stat_keys(runs);
  if (keys.empty()) {
    md += "No run has energy figures.\n";
  } else {
    md +=
        "Over repeats, from each run's `energy/energy.csv`: energy mean, min and max (J), mean "
        "power (W). Phase `total` is a whole repeat. Δ: the mean's difference from experiment 1 "
        "(" +
        md_cell(runs.front().label) + ").\n\n";
    md +=
        "| VM | phase | experiment | mean (J) | min (J) | max (J) | mean power (W) | repeats | Δ "
        "|\n";
    md += "|---|---|---|---:|---:|---:|---:|---:|---:|\n";
    for (const auto& [vm, ph] : keys) {
      const EnergyStat* base = find_stat(runs.front().energy, vm, ph);
      for (const auto& r : runs) {
        const EnergyStat* s = find_stat(r.energy, vm, ph);
        const EnergyStat* w = find_stat(r.power, vm, ph);
        md += "| " + md_cell(vm) + " | " + md_cell(ph) + " | " + md_cell(r.label) + " | ";
        if (!s) {
          md += "- | - | - | - | 0 | - |\n";
          continue;
        }
        std::string delta = "-";
        if (&r != &runs.front() && base && base->mean != 0)
          delta = (s->mean >= base->mean ? "+" : "") +
                  fixed(100.0 * (s->mean - base->mean) / base->mean, 1) + " %";
        md += fixed(s->mean, 1) + " | " + fixed(s->min, 1) + " | " + fixed(s->max, 1) + " | " +
              (w ? fixed(w->mean, 2) : std::string("-")) + " | " + std::to_string(s->n) + " | " +
              delta + " |\n";
      }
    }
  }

  if (!plots.empty()) {
    md += "\n## Plots\n\n";
    for (const auto& p : plots) md += "![" + p.stem().string() + "](" + p.generic_string() + ")\n";
  }

  md += "\n## Platforms\n\n";
  size_t with_env = 0;
  for (const auto& r : runs) with_env += r.environment ? 1 : 0;
  for (size_t k = 0; k < runs.size(); ++k)
    if (!runs[k].environment)
      md += "- **" + md_cell(runs[k].label) +
            " has no environment.json**: the platform its numbers came from is unknown, so they "
            "may not be comparable with the others.\n";
  for (const auto& r : runs) {
    if (!r.environment) continue;
    auto it = r.environment->find("errors");
    if (it == r.environment->end() || !it->is_array()) continue;
    for (const auto& e : *it)
      if (e.is_string())
        md += "- " + md_cell(r.label) + ", not recorded: " + md_cell(e.get<std::string>()) + "\n";
  }
  if (with_env < 2) {
    md += "\nFewer than two runs have an environment.json: their platforms cannot be compared.\n";
    return md;
  }
  auto diffs = platform_differences(runs);
  if (diffs.empty()) {
    md +=
        "\nThe runs with an environment.json report the same platform (every field equal, "
        "apart from when it was collected).\n";
    return md;
  }
  md +=
      "\nThese platform fields differ: numbers from different platforms (accelerator, CPU, "
      "kernel, QEMU, image) are not directly comparable.\n\n| field |";
  for (const auto& r : runs) md += " " + md_cell(r.label) + " |";
  md += "\n|---|";
  for (size_t k = 0; k < runs.size(); ++k) md += "---|";
  md += "\n";
  for (const auto& d : diffs) {
    md += "| `" + d.field + "` |";
    for (size_t k = 0; k < runs.size(); ++k)
      md += " " + (runs[k].environment ? md_cell(d.values[k]) : std::string("—")) + " |";
    md += "\n";
  }
  return md;
}

Expected<CompareResult> compare_runs(const std::vector<fs::path>& run_dirs, const fs::path& out) {
  if (run_dirs.size() < 2)
    return make_error(
        "compare needs at least two run directories, got " + std::to_string(run_dirs.size()),
        ExitCode::usage);
  for (const auto& d : run_dirs)
    if (!record::is_run_dir(d))
      return make_error(
          d.string() + ": not a run directory (none of plan.json, events.jsonl, " + "state.json)",
          ExitCode::usage);
  if (record::is_run_dir(out))
    return make_error(out.string() + ": is a run directory; compare writes elsewhere (-o DIR)",
                      ExitCode::usage);

  std::vector<ComparedRun> runs;
  for (const auto& d : run_dirs) runs.push_back(TRY(load_compared_run(d)));
  // Labels: the experiment; the directory name where two runs share one; a number beyond that.
  std::map<std::string, int> count;
  for (const auto& r : runs) ++count[r.experiment];
  std::set<std::string> used;
  for (size_t k = 0; k < runs.size(); ++k) {
    auto& r = runs[k];
    r.label = count[r.experiment] > 1 ? dir_name(r.dir) : r.experiment;
    if (used.count(r.label)) r.label += " #" + std::to_string(k + 1);
    used.insert(r.label);
  }

  CompareResult res;
  res.out_dir = out;
  auto plots_dir = out / "plots";
  std::vector<fs::path> pngs;
  auto keep = [&](const PlotFiles& f) {
    res.files.push_back(f.png);
    res.files.push_back(f.svg);
    pngs.push_back(fs::path("plots") / f.png.filename());
  };
  if (!stat_keys(runs).empty())
    keep(TRY(plot_compare_energy(runs, plots_dir)));
  else
    res.warnings.push_back("no run has energy figures: no energy plot");
  if (std::any_of(runs.begin(), runs.end(),
                  [](const ComparedRun& r) { return !r.timeline.t.empty(); }))
    keep(TRY(plot_compare_power(runs, plots_dir)));
  else
    res.warnings.push_back("no run has power samples: no power timeline");
  res.markdown = compare_markdown(runs, pngs);
  auto md_file = out / "compare.md";
  TRY_STATUS(util::write_file_atomic(md_file, res.markdown));
  res.files.insert(res.files.begin(), md_file);
  return res;
}

fs::path default_compare_dir(const fs::path& first_run, std::chrono::system_clock::time_point now) {
  fs::path abs = fs::absolute(first_run).lexically_normal();
  if (abs.filename().empty()) abs = abs.parent_path();
  fs::path base = abs.parent_path() / ("compare_" + utc_stamp(now));
  fs::path p = base;
  std::error_code ec;
  for (int i = 2; fs::exists(p, ec); ++i) p = base.string() + "-" + std::to_string(i);
  return p;
}

}  // namespace continuum::report

#include "continuum/record/events.h"

#include <ctime>
#include <map>
#include <tuple>

#include "continuum/util/files.h"
#include "continuum/util/strings.h"

namespace continuum::record {

std::string rfc3339_ns(std::chrono::system_clock::time_point tp) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(tp.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ns / 1000000000);
  long frac = static_cast<long>(ns % 1000000000);
  if (frac < 0) {
    frac += 1000000000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[96];
  std::snprintf(out, sizeof out, "%s.%09ldZ", buf, frac);
  return out;
}

nlohmann::json to_json(const Event& e) {
  return nlohmann::json{{"time", e.time},   {"t", e.t},           {"experiment", e.experiment},
                        {"app", e.app},     {"repeat", e.repeat}, {"phase", e.phase},
                        {"event", e.event}, {"node", e.node},     {"details", e.details}};
}

Expected<Event> event_from_json(const nlohmann::json& j) {
  if (!j.is_object()) return make_error("event is not a JSON object");
  Event e;
  try {
    e.time = j.at("time").get<std::string>();
    e.t = j.at("t").get<double>();
    e.experiment = j.value("experiment", "");
    e.app = j.value("app", "");
    e.repeat = j.value("repeat", -1);
    e.phase = j.at("phase").get<std::string>();
    e.event = j.at("event").get<std::string>();
    e.node = j.value("node", "");
    e.details = j.value("details", nlohmann::json::object());
  } catch (const nlohmann::json::exception& ex) {
    return make_error(std::string("bad event: ") + ex.what());
  }
  return e;
}

Expected<std::unique_ptr<EventLog>> EventLog::open(const std::filesystem::path& path,
                                                   std::chrono::steady_clock::time_point start,
                                                   std::string experiment) {
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  std::FILE* f = std::fopen(path.c_str(), "ae");
  if (!f) return make_error(path.string() + ": cannot open event log");
  return std::unique_ptr<EventLog>(new EventLog(f, start, std::move(experiment)));
}

EventLog::~EventLog() {
  if (f_) std::fclose(f_);
}

void EventLog::emit(Event e) {
  auto now_sys = std::chrono::system_clock::now();
  auto now_mono = std::chrono::steady_clock::now();
  e.time = rfc3339_ns(now_sys);
  e.t = std::chrono::duration<double>(now_mono - start_).count();
  if (e.experiment.empty()) e.experiment = experiment_;
  std::string line = to_json(e).dump() + "\n";
  std::lock_guard lock(mu_);
  std::fwrite(line.data(), 1, line.size(), f_);
  std::fflush(f_);
}

void EventLog::emit(const std::string& phase, const std::string& event, const std::string& app,
                    int repeat, const std::string& node, nlohmann::json details) {
  Event e;
  e.phase = phase;
  e.event = event;
  e.app = app;
  e.repeat = repeat;
  e.node = node;
  e.details = std::move(details);
  emit(std::move(e));
}

Expected<std::vector<Event>> read_events(const std::filesystem::path& path) {
  auto text = TRY(util::read_file(path));
  std::vector<Event> out;
  auto lines = util::split(text, '\n');
  for (size_t i = 0; i < lines.size(); ++i) {
    auto line = util::trim(lines[i]);
    if (line.empty()) continue;
    bool last = i + 1 == lines.size();  // no trailing newline: written when the run died
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) {
      if (last) break;
      return make_error(path.string() + ":" + std::to_string(i + 1) + ": not valid JSON");
    }
    auto e = event_from_json(j);
    if (!e)
      return make_error(path.string() + ":" + std::to_string(i + 1) + ": " + e.error().message);
    out.push_back(std::move(*e));
  }
  return out;
}

std::vector<PhaseInterval> phase_intervals(const std::vector<Event>& events) {
  using Key = std::tuple<std::string, std::string, int, std::string>;
  std::map<Key, double> open;
  std::vector<PhaseInterval> out;
  double last_t = 0;
  for (const auto& e : events) {
    last_t = std::max(last_t, e.t);
    Key k{e.phase, e.app, e.repeat, e.node};
    if (e.event == "start") {
      open[k] = e.t;
    } else if (e.event == "end") {
      auto it = open.find(k);
      if (it == open.end()) continue;
      out.push_back({e.phase, e.app, e.node, e.repeat, it->second, e.t});
      open.erase(it);
    }
  }
  for (const auto& [k, start] : open)
    out.push_back({std::get<0>(k), std::get<1>(k), std::get<3>(k), std::get<2>(k), start, last_t});
  std::stable_sort(out.begin(), out.end(), [](const PhaseInterval& a, const PhaseInterval& b) {
    return a.start < b.start;
  });
  return out;
}

}  // namespace continuum::record

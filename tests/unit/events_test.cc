#include "continuum/record/events.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

using namespace continuum::record;
namespace fs = std::filesystem;

namespace {
fs::path temp_file(const std::string& name) {
  auto d = fs::temp_directory_path() / ("continuum_events_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d / name;
}
}  // namespace

TEST(EventLog, WritesOneFlushedJsonLinePerEventWithSchema) {
  auto p = temp_file("a.jsonl");
  fs::remove(p);
  auto start = std::chrono::steady_clock::now();
  {
    auto log = EventLog::open(p, start, "queries no kube");
    ASSERT_TRUE(log.ok());
    (*log)->emit("benchmark", "start", "image_classification", 0);
    // Flushed before emit returns: readable while the log is still open.
    auto mid = read_events(p);
    ASSERT_TRUE(mid.ok());
    ASSERT_EQ(mid->size(), 1u);
    (*log)->emit("benchmark", "end", "image_classification", 0, "cloud0", {{"frames", 50}});
  }
  std::ifstream in(p);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    for (const char* k :
         {"time", "t", "experiment", "app", "repeat", "phase", "event", "node", "details"})
      EXPECT_TRUE(j.contains(k)) << k;
    EXPECT_EQ(j["experiment"], "queries no kube");  // every event carries it
    EXPECT_TRUE(j["time"].get<std::string>().ends_with("Z"));
    EXPECT_EQ(j["time"].get<std::string>().size(),
              std::string("2026-11-29T10:00:00.123456789Z").size());
    ++n;
  }
  EXPECT_EQ(n, 2);
  auto ev = read_events(p);
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ((*ev)[1].node, "cloud0");
  EXPECT_EQ((*ev)[1].experiment, "queries no kube");
  EXPECT_EQ((*ev)[1].details["frames"], 50);
  EXPECT_LE((*ev)[0].t, (*ev)[1].t);
}

TEST(EventLog, TruncatedLastLineIsSkippedButCorruptMiddleLineIsAnError) {
  auto p = temp_file("b.jsonl");
  {
    std::ofstream o(p);
    o << R"({"time":"x","t":1,"phase":"benchmark","event":"start"})"
      << "\n"
      << R"({"time":"x","t":2,"phase":"bench)";
  }
  auto ev = read_events(p);
  ASSERT_TRUE(ev.ok()) << ev.error().message;
  EXPECT_EQ(ev->size(), 1u);
  {
    std::ofstream o(p);
    o << "garbage\n"
      << R"({"time":"x","t":1,"phase":"benchmark","event":"start"})"
      << "\n";
  }
  auto bad = read_events(p);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find(":1:"), std::string::npos);
}

TEST(PhaseIntervals, PairsStartAndEndPerRepeat) {
  std::vector<Event> ev = {
      {"", 0, "app", 0, "benchmark", "start", "", {}, ""},
      {"", 5, "app", 0, "benchmark", "end", "", {}, ""},
      {"", 6, "app", 1, "benchmark", "start", "", {}, ""},
      {"", 9, "app", 1, "benchmark", "end", "", {}, ""},
      {"", 10, "", -1, "report", "start", "", {}, ""},
  };
  auto iv = phase_intervals(ev);
  ASSERT_EQ(iv.size(), 3u);
  EXPECT_EQ(iv[0].repeat, 0);
  EXPECT_DOUBLE_EQ(iv[0].end, 5);
  EXPECT_DOUBLE_EQ(iv[1].start, 6);
  EXPECT_EQ(iv[2].phase, "report");
  EXPECT_DOUBLE_EQ(iv[2].end, 10);  // unmatched start ends at the last event
}

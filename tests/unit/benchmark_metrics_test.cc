// Metrics as the original computes them (docs/original.md §7.4, §7.5), against hand-computed
// values.
#include <gtest/gtest.h>

#include <cmath>

#include "continuum/benchmark/metrics.h"

using namespace continuum::benchmark;

TEST(PercentileSlice, TwentyValuesKeepIndices1To17) {
  std::vector<double> v;
  for (int i = 20; i >= 1; --i) v.push_back(i);  // unsorted on purpose
  auto s = percentile_slice(v);
  // floor(20*0.05) = 1, floor(20*0.90) = 18: elements [1, 18) of 1..20 = 2..18
  ASSERT_EQ(s.size(), 17u);
  EXPECT_EQ(s.front(), 2);
  EXPECT_EQ(s.back(), 18);
  auto st = slice_stats(v);
  EXPECT_EQ(st.n, 20u);
  EXPECT_EQ(st.kept, 17u);
  EXPECT_DOUBLE_EQ(st.mean, 10.0);
  // population variance of 2..18 = 2*(1+4+...+64)/17 = 408/17 = 24
  EXPECT_NEAR(st.stdev, std::sqrt(24.0), 1e-12);
}

TEST(PercentileSlice, TenValuesDropOnlyTheTop) {
  std::vector<double> v{100, 10, 90, 20, 80, 30, 70, 40, 60, 50};
  // floor(10*0.05) = 0, floor(10*0.9) = 9: 10..90
  auto st = slice_stats(v);
  EXPECT_EQ(st.kept, 9u);
  EXPECT_DOUBLE_EQ(st.mean, 50.0);
  EXPECT_NEAR(st.stdev, std::sqrt(6000.0 / 9.0), 1e-9);  // 25.8199
  EXPECT_DOUBLE_EQ(round_to(st.stdev, 2), 25.82);
}

TEST(PercentileSlice, TooFewValuesGiveNaN) {
  EXPECT_TRUE(std::isnan(slice_stats({}).mean));
  EXPECT_TRUE(std::isnan(slice_stats({5.0}).mean));  // floor(0.9) = 0: empty slice
  auto two = slice_stats({4.0, 1.0, 3.0});           // floor(2.7) = 2: {1, 3}
  EXPECT_EQ(two.kept, 2u);
  EXPECT_DOUBLE_EQ(two.mean, 2.0);
  EXPECT_DOUBLE_EQ(two.stdev, 1.0);
}

TEST(RoundTo, HalfToEvenLikeNumpy) {
  EXPECT_DOUBLE_EQ(round_to(1.005, 2), 1.0);   // 1.005 is 1.00499999... in binary
  EXPECT_DOUBLE_EQ(round_to(0.125, 2), 0.12);  // exact half: to even
  EXPECT_DOUBLE_EQ(round_to(0.135, 2), 0.14);
  EXPECT_DOUBLE_EQ(round_to(123.456789, 4), 123.4568);
}

TEST(Rfc3339, ParsesDockerAndOffsetsTruncatingToMicroseconds) {
  auto a = parse_rfc3339("2021-10-14T08:55:55.912611917Z");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, 1634201755912611000LL);
  auto b = parse_rfc3339("2021-10-14T10:55:55.912611917+02:00");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, *a);
  auto c = parse_rfc3339("2021-10-14T08:55:55Z");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, 1634201755000000000LL);
  EXPECT_FALSE(parse_rfc3339("Start connecting").ok());
  EXPECT_FALSE(parse_rfc3339("2021-10-14T08:55:55.1").ok());  // no zone
}

TEST(ValueLine, UnitAndNumberAfterLastColon) {
  auto v = parse_value_line("2026-11-29T12:00:00.000000000Z [Worker-1] Latency (ns): 3312318");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->unit, "ns");
  EXPECT_EQ(v->value, 3312318);
  EXPECT_FALSE(parse_value_line("Latency (ns): abc").has_value());
  EXPECT_FALSE(parse_value_line("no unit: 5").has_value());
}

namespace {
const char* kWorker =
    "2026-11-29T12:00:00.500000000Z Start connecting to the local MQTT broker\n"
    "2026-11-29T12:00:00.600000000Z [Worker-1] Get item\n"
    "2026-11-29T12:00:01.000000000Z [Worker-1] Read image and apply ML\n"
    "2026-11-29T12:00:01.000100000Z [Worker-1] Latency (ns): 2000000\n"
    "2026-11-29T12:00:01.040000000Z \t0.003399 - class_0765\n"
    "2026-11-29T12:00:01.050000000Z [Worker-1] Processing (ns): 50000000\n"
    "2026-11-29T12:00:01.050100000Z [Worker-1] Get item\n"
    "2026-11-29T12:00:02.000000000Z [Worker-1] Read image and apply ML\n"
    "2026-11-29T12:00:02.000100000Z [Worker-1] Latency (ns): -5\n"
    "2026-11-29T12:00:02.000200000Z [Worker-1] Latency (us): 7\n"
    "2026-11-29T12:00:02.000300000Z [Worker-1] Latency (ns): 4000000\n"
    "2026-11-29T12:00:02.070000000Z [Worker-1] Processing (ns): 70123456\n"
    "2026-11-29T12:00:11.500000000Z [Worker-1] Get item\n"
    "2026-11-29T12:00:11.600000000Z Finished, processed images: 2\n";
const char* kEndpoint =
    "2026-11-29T12:00:00.000000000Z Start connecting to the local MQTT broker\n"
    "2026-11-29T12:00:00.900000000Z Sending data (bytes): 65035\n"
    "2026-11-29T12:00:00.901000000Z Preparation and preprocessing (ns): 1000000\n"
    "2026-11-29T12:00:01.100000000Z Latency (ns): 200000000\n"
    "2026-11-29T12:00:01.900000000Z Sending data (bytes): 64965\n"
    "2026-11-29T12:00:01.901000000Z Preparation and preprocessing (ns): 3000000\n"
    "2026-11-29T12:00:02.200000000Z Latency (ns): 300000000\n"
    "2026-11-29T12:00:12.250000000Z All 2 images have been received back\n";
}  // namespace

TEST(WorkerLog, ParsesTheOriginalsLines) {
  auto w = parse_worker_log(kWorker);
  EXPECT_EQ(w.delays_ms, (std::vector<double>{2.0, 4.0}));
  EXPECT_EQ(w.processing_ms, (std::vector<double>{50.0, 70.1235}));  // ms rounded to 4 dp
  EXPECT_EQ(w.negatives, 1u);
  EXPECT_EQ(w.warnings.size(), 2u);  // the (us) line and the negatives summary
  auto m = worker_metrics(0, "cloud0", w);
  EXPECT_DOUBLE_EQ(m.total_time_s,
                   10.5);  // first "Read image" 12:00:01 -> last "Get item" 12:00:11.5
  // 2 values: slice [floor(0.1), floor(1.8)) = first only
  EXPECT_DOUBLE_EQ(m.delay_avg_ms, 2.0);
  EXPECT_DOUBLE_EQ(m.delay_stdev_ms, 0.0);
  EXPECT_DOUBLE_EQ(m.proc_avg_ms, 50.0);
  EXPECT_EQ(m.frames, 2u);
}

TEST(EndpointLog, ParsesTheOriginalsLines) {
  auto e = parse_endpoint_log(kEndpoint);
  EXPECT_EQ(e.processing_ms, (std::vector<double>{1.0, 3.0}));
  EXPECT_EQ(e.latency_ms, (std::vector<double>{200.0, 300.0}));
  EXPECT_EQ(e.data_kb, (std::vector<double>{65.035, 64.965}));
  auto m = endpoint_metrics(0, 0, "endpoint0", e);
  EXPECT_DOUBLE_EQ(m.total_time_s, 12.25);
  EXPECT_DOUBLE_EQ(m.data_avg_kb, 65.0);  // all sizes, not sliced
  EXPECT_DOUBLE_EQ(m.latency_avg_ms, 200.0);
  EXPECT_DOUBLE_EQ(m.proc_avg_ms, 1.0);
  EXPECT_EQ(m.frames, 2u);
}

TEST(EndpointLog, CombinedModeProcessingLine) {
  auto e = parse_endpoint_log(
      "2026-11-29T12:00:00.000000Z Get item\n"
      "2026-11-29T12:00:00.300000Z Preparation, preprocessing and processing (ns): 263210000\n"
      "2026-11-29T12:00:00.300001Z Latency (ns): 263300000\n");
  EXPECT_EQ(e.processing_ms, (std::vector<double>{263.21}));
  EXPECT_EQ(e.latency_ms, (std::vector<double>{263.3}));
}

TEST(Tables, OriginalHeadersAndAlignment) {
  AppMetrics m;
  m.mode = "cloud";
  WorkerMetrics w;
  w.total_time_s = 302.06;
  w.delay_avg_ms = 107.49;
  w.delay_stdev_ms = 23.92;
  w.proc_avg_ms = 81.46;
  m.workers.push_back(w);
  EndpointMetrics e;
  e.connected_to = 0;
  e.total_time_s = 302.45;
  e.proc_avg_ms = 0.45;
  e.data_avg_kb = 65.28;
  e.latency_avg_ms = 191.23;
  e.latency_stdev_ms = 24.44;
  m.endpoints.push_back(e);
  // The CCGRID README's output, character for character.
  EXPECT_EQ(render_app_tables(m),
            "------------------------------------\n"
            "CLOUD OUTPUT\n"
            "------------------------------------\n"
            " worker_id  total_time (s)  delay_avg (ms)  delay_stdev (ms)  proc_time/data (ms)\n"
            "         0          302.06          107.49             23.92                81.46\n"
            "------------------------------------\n"
            "ENDPOINT OUTPUT\n"
            "------------------------------------\n"
            " connected_to  total_time (s)  preproc_time/data (ms)  data_size_avg (kb)  "
            "latency_avg (ms)  latency_stdev (ms)\n"
            "            0          302.45                    0.45               65.28            "
            "191.23               24.44\n");
}

TEST(Tables, EndpointOnlyModeAndNaN) {
  AppMetrics m;
  m.mode = "endpoint";
  EndpointMetrics e;
  e.endpoint_id = 0;
  e.total_time_s = 472.41;
  e.proc_avg_ms = 263.21;
  e.latency_avg_ms = 62203.0;
  e.latency_stdev_ms = std::nan("");
  m.endpoints.push_back(e);
  std::string t = render_app_tables(m);
  EXPECT_EQ(t.find("CLOUD OUTPUT"), std::string::npos);
  EXPECT_NE(t.find(" endpoint_id  total_time (s)  proc_time/data (ms)  latency_avg (ms)  "
                   "latency_stdev (ms)\n"),
            std::string::npos);
  EXPECT_NE(t.find("62203.0"), std::string::npos);
  EXPECT_NE(t.find("NaN\n"), std::string::npos);
}

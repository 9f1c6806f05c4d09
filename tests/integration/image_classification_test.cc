// The real guest programs against a real mosquitto on loopback (no VMs): one worker, one endpoint,
// 10 s at 5 frames/s. Every frame must come back, latencies must be plausible, and the metrics
// code must turn the programs' real output into the original's tables.
#include <gtest/gtest.h>

#include "bench_support.h"
#include "continuum/benchmark/metrics.h"
#include "continuum/util/files.h"

using namespace continuum;
using namespace continuum::benchmark;

namespace {
const std::filesystem::path kApp = std::filesystem::path(CONTINUUM_BUILD_DIR) / "app";

std::filesystem::path temp_dir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() /
           ("continuum-ic-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}
}  // namespace

TEST(ImageClassification, TenSecondsAtFiveFramesPerSecond) {
  ASSERT_TRUE(std::filesystem::exists(kApp / "continuum-worker")) << "build the app targets first";
  auto dir = temp_dir("run");
  bench_test::Broker broker(dir / "broker", bench_test::free_port());
  ASSERT_TRUE(broker.ready()) << *util::read_file(dir / "broker/mosquitto.log");
  const std::string port = std::to_string(broker.port());

  bench_test::Child worker({(kApp / "continuum-worker").string()}, dir / "worker.log",
                           {{"MQTT_LOCAL_IP", "127.0.0.1"},
                            {"MQTT_PORT", port},
                            {"MQTT_LOGS", "False"},
                            {"CPU_THREADS", "1"},
                            {"ENDPOINT_CONNECTED", "1"},
                            {"TIMEOUT", "120"},
                            // A smaller input (~1/5 of the default cost) keeps the worker ahead of
                            // 5 frames/s even on a loaded 2-core CI machine.
                            {"INPUT_SIZE", "48"}});
  // The worker must be subscribed before frames are published (QoS 0 is not queued).
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (util::read_file(dir / "worker.log")->find("Subscribed to topic") == std::string::npos) {
    ASSERT_LT(std::chrono::steady_clock::now(), until) << *util::read_file(dir / "worker.log");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  bench_test::Child endpoint({(kApp / "continuum-endpoint").string()}, dir / "endpoint.log",
                             {{"FREQUENCY", "5"},
                              {"DURATION", "10"},
                              {"MQTT_LOCAL_IP", "127.0.0.1"},
                              {"MQTT_REMOTE_IP", "127.0.0.1"},
                              {"MQTT_PORT", port},
                              {"MQTT_LOGS", "False"},
                              {"REPLY_TIMEOUT", "60"}});
  EXPECT_EQ(endpoint.wait(std::chrono::seconds(90)), 0) << *util::read_file(dir / "endpoint.log");
  EXPECT_EQ(worker.wait(std::chrono::seconds(30)), 0) << *util::read_file(dir / "worker.log");

  const std::string wout = *util::read_file(dir / "worker.log");
  const std::string eout = *util::read_file(dir / "endpoint.log");
  auto wl = parse_worker_log(wout);
  auto el = parse_endpoint_log(eout);
  EXPECT_TRUE(wl.warnings.empty());
  EXPECT_TRUE(el.warnings.empty());
  // Every frame answered.
  EXPECT_EQ(wl.processing_ms.size(), 50u);
  EXPECT_EQ(wl.delays_ms.size(), 50u);
  EXPECT_EQ(el.latency_ms.size(), 50u);
  EXPECT_EQ(el.data_kb.size(), 50u);
  EXPECT_NE(eout.find("All 50 images have been received back"), std::string::npos);
  EXPECT_NE(wout.find("Finished, processed images: 50"), std::string::npos);
  // Plausible: frames of the original's size, positive latencies, end to end >= processing.
  for (double kb : el.data_kb) {
    EXPECT_GE(kb, 60.0);
    EXPECT_LE(kb, 70.1);
  }
  for (double ms : wl.delays_ms) {
    EXPECT_GT(ms, 0.0);
    EXPECT_LT(ms, 5000.0);
  }
  for (double ms : el.latency_ms) {
    EXPECT_GT(ms, 0.0);
    EXPECT_LT(ms, 10000.0);
  }
  auto wm = worker_metrics(0, "worker", wl);
  auto em = endpoint_metrics(0, 0, "endpoint", el);
  EXPECT_GT(wm.proc_avg_ms, 0.5);                // real CPU work, not a no-op
  EXPECT_GT(em.latency_avg_ms, wm.proc_avg_ms);  // reply latency includes the processing
  EXPECT_GT(em.total_time_s, 9.5);               // 10 s of frames (first line to last reply)
  EXPECT_LT(em.total_time_s, 40.0);
  EXPECT_GT(wm.total_time_s, 8.0);  // first frame processed -> last "Get item"
  EXPECT_NEAR(em.data_avg_kb, 65.0, 3.0);

  AppMetrics m;
  m.mode = "cloud";
  m.workers.push_back(wm);
  m.endpoints.push_back(em);
  const std::string tables = render_app_tables(m);
  std::printf("%s", tables.c_str());
  EXPECT_NE(tables.find("CLOUD OUTPUT"), std::string::npos);
  EXPECT_NE(
      tables.find(
          " worker_id  total_time (s)  delay_avg (ms)  delay_stdev (ms)  proc_time/data (ms)"),
      std::string::npos);
  EXPECT_EQ(tables.find("NaN"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(ImageClassification, CombinedModeProcessesLocally) {
  auto dir = temp_dir("combined");
  bench_test::Child endpoint({(kApp / "continuum-endpoint").string(), "--combined"},
                             dir / "endpoint.log",
                             {{"FREQUENCY", "5"}, {"DURATION", "2"}, {"CPU_THREADS", "1"}});
  ASSERT_EQ(endpoint.wait(std::chrono::seconds(60)), 0) << *util::read_file(dir / "endpoint.log");
  auto el = parse_endpoint_log(*util::read_file(dir / "endpoint.log"));
  EXPECT_EQ(el.processing_ms.size(), 10u);
  EXPECT_EQ(el.latency_ms.size(), 10u);
  for (size_t i = 0; i < el.latency_ms.size(); ++i)
    EXPECT_GE(el.latency_ms[i], el.processing_ms[i]);
  AppMetrics m;
  m.mode = "endpoint";
  m.endpoints.push_back(endpoint_metrics(0, -1, "endpoint0", el));
  EXPECT_NE(render_app_tables(m).find("endpoint_id"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(ImageClassification, MissingSettingIsAClearError) {
  auto dir = temp_dir("missing");
  bench_test::Child worker({(kApp / "continuum-worker").string()}, dir / "w.log",
                           {{"MQTT_LOCAL_IP", ""}});
  EXPECT_EQ(worker.wait(std::chrono::seconds(20)), 2);
  EXPECT_NE(util::read_file(dir / "w.log")->find("MQTT_LOCAL_IP"), std::string::npos);
  std::filesystem::remove_all(dir);
}

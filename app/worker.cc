// continuum-worker: the cloud/edge side of image_classification (docs/original.md §7.3). Subscribes
// to its local broker, runs the inference-like CNN on every frame with CPU_THREADS threads, prints
// the original's log lines, replies to each endpoint's broker with the frame's timestamp, and exits
// once ENDPOINT_CONNECTED end markers arrived and every frame is processed.
//
// Settings (environment as the original's container, or --flag): MQTT_LOCAL_IP, MQTT_LOGS,
// CPU_THREADS, ENDPOINT_CONNECTED; new: MQTT_PORT (1883), INPUT_SIZE (112), COST (1, repeats the
// forward pass), TIMEOUT (s, 0 = none: exit 3 if the end markers never come).
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "cnn.h"
#include "common.h"

namespace {

struct Item {
  int64_t received_ns;
  std::string payload;
};

struct Shared {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Item> queue;
  int endpoints_left = 0;
  int busy = 0;
  long processed = 0;
  bool stop = false;
};

void work(int id, Shared& s, const capp::Cnn& cnn, int port, bool logs) {
  const std::string name = "Worker-" + std::to_string(id);
  capp::say("[%s] Start thread", name.c_str());
  capp::say("[%s] Preparations finished", name.c_str());
  std::map<std::string, std::unique_ptr<capp::Mqtt>> remotes;
  for (;;) {
    capp::say("[%s] Get item", name.c_str());
    Item item;
    {
      std::unique_lock lock(s.mu);
      s.cv.wait(lock, [&] { return s.stop || !s.queue.empty(); });
      if (s.queue.empty()) return;
      item = std::move(s.queue.front());
      s.queue.pop_front();
      ++s.busy;
    }
    const int64_t start = capp::now_ns();
    if (item.payload == "1") {
      int left;
      {
        std::lock_guard lock(s.mu);
        left = --s.endpoints_left;
        --s.busy;
      }
      s.cv.notify_all();
      capp::say("[%s] A client disconnected, %d clients left", name.c_str(), left);
      continue;
    }
    capp::say("[%s] Read image and apply ML", name.c_str());
    int64_t sent_ns = 0;
    std::string ip;
    if (!capp::parse_trailer(item.payload, &sent_ns, &ip)) {
      capp::say("[%s] Error: malformed frame of %zu bytes", name.c_str(), item.payload.size());
      std::lock_guard lock(s.mu);
      --s.busy;
      continue;
    }
    capp::say("[%s] Latency (ns): %lld", name.c_str(),
              static_cast<long long>(item.received_ns - sent_ns));
    const size_t image_len = item.payload.size() - capp::kTimestampChars - capp::kIpChars;
    auto input = capp::image_from_bytes(item.payload, image_len, cnn.input_size());
    auto scores = cnn.forward(input);
    for (auto [cls, score] : capp::top_k(scores, 5)) capp::say("\t%08.6f - class_%04d", score, cls);
    capp::say("[%s] Processing (ns): %lld", name.c_str(),
              static_cast<long long>(capp::now_ns() - start));

    capp::say("[%s] Send result to source: %s", name.c_str(), ip.c_str());
    auto& remote = remotes[ip];
    if (!remote) {
      capp::say("[%s] Connect to remote broker on endpoint %s", name.c_str(), ip.c_str());
      remote = std::make_unique<capp::Mqtt>(ip, port, logs);
      if (remote->ok()) capp::say("[%s] Connected with the remote broker", name.c_str());
    }
    if (remote->ok())
      remote->publish(capp::kTopicPub, item.payload.substr(image_len, capp::kTimestampChars), 0);
    {
      std::lock_guard lock(s.mu);
      --s.busy;
      ++s.processed;
    }
    s.cv.notify_all();
  }
}

}  // namespace

int main(int argc, char** argv) {
  capp::Settings cfg(argc, argv);
  const std::string local_ip = cfg.str("mqtt-local-ip");
  const bool logs = cfg.flag("mqtt-logs");
  const int threads = static_cast<int>(std::max(1L, cfg.integer("cpu-threads", "1")));
  const int endpoints = static_cast<int>(cfg.integer("endpoint-connected"));
  const int port = static_cast<int>(cfg.integer("mqtt-port", "1883"));
  const capp::Cnn cnn(static_cast<int>(cfg.integer("input-size", "112")),
                      static_cast<int>(cfg.integer("cost", "1")));
  const double timeout_s = cfg.real("timeout", "0");

  capp::say("Start connecting to the local MQTT broker");
  capp::say("Broker ip: %s", local_ip.c_str());
  capp::say("Topic: %s", capp::kTopicSub);

  Shared s;
  s.endpoints_left = endpoints;
  std::vector<std::thread> pool;
  for (int i = 1; i <= threads; ++i)
    pool.emplace_back(work, i, std::ref(s), std::cref(cnn), port, logs);

  capp::Mqtt local(local_ip, port, logs, capp::kTopicSub,
                   [&](const std::string&, std::string payload) {
                     const int64_t now = capp::now_ns();
                     {
                       std::lock_guard lock(s.mu);
                       s.queue.push_back(Item{now, std::move(payload)});
                     }
                     // notify_all: the main thread waits on the same condition variable, and a
                     // notify_one that woke it instead of an idle worker thread would leave the
                     // frame (or end marker) unhandled.
                     s.cv.notify_all();
                   });
  int rc = 0;
  if (!local.ok()) {
    rc = 1;
  } else {
    const int64_t deadline =
        timeout_s > 0 ? capp::now_ns() + static_cast<int64_t>(timeout_s * 1e9) : 0;
    std::unique_lock lock(s.mu);
    while (!(s.endpoints_left <= 0 && s.queue.empty() && s.busy == 0)) {
      s.cv.wait_for(lock, std::chrono::milliseconds(200));
      if (deadline && capp::now_ns() > deadline) {
        capp::say("Error: timeout after %.0f s with %d endpoints still connected", timeout_s,
                  s.endpoints_left);
        rc = 3;
        break;
      }
    }
  }
  {
    std::lock_guard lock(s.mu);
    s.stop = true;
    s.queue.clear();
  }
  s.cv.notify_all();
  for (auto& t : pool) t.join();
  capp::say("Finished, processed images: %ld", s.processed);
  return rc;
}

// continuum-endpoint: the endpoint side of image_classification (docs/original.md §7.3).
//
// Publish mode (default; the original's publisher): sends FREQUENCY frames per second for DURATION
// seconds to the worker's broker (MQTT_REMOTE_IP, topic image-classification-sub, QoS 0), each
// frame = JPEG-like image + 20-char ns timestamp + own IP padded to 15 chars; then the end marker
// "1" (QoS 2); then waits until every reply arrived on the local broker (MQTT_LOCAL_IP, topic
// image-classification-pub) and prints the end-to-end latency of each.
//
// Combined mode (--combined or COMBINED=True; the original's endpoint-only image): generates the
// frames locally and processes them with the worker's CNN on CPU_THREADS threads.
//
// Settings (environment or --flag): FREQUENCY, DURATION (300), MQTT_LOCAL_IP, MQTT_REMOTE_IP,
// MQTT_LOGS, CPU_THREADS; new: MQTT_PORT (1883), SEED, INPUT_SIZE, COST (combined mode),
// REPLY_TIMEOUT (s to wait for the last replies; default 60 + DURATION; exit 3 when it expires).
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "cnn.h"
#include "common.h"

namespace {

constexpr int kImages = 60;  // the original cycled over 60 bundled ImageNet JPEGs

// The frame schedule: frame i is due at start + i / frequency. A frame that is late is sent at
// once (the original's "Can't keep up" case) without shifting the later frames.
void pace(int64_t frame_start, int64_t due_next, double sec_per_frame) {
  const int64_t now = capp::now_ns();
  if (now > due_next) {
    capp::say("Can't keep up with %f seconds per frame: Took %f", sec_per_frame,
              static_cast<double>(now - frame_start) / 1e9);
    return;
  }
  capp::sleep_until_ns(due_next);
}

int publish_mode(const capp::Settings& cfg, int frequency, int duration) {
  const std::string local_ip = cfg.str("mqtt-local-ip");
  const std::string remote_ip = cfg.str("mqtt-remote-ip");
  const bool logs = cfg.flag("mqtt-logs");
  const int port = static_cast<int>(cfg.integer("mqtt-port", "1883"));
  const long max_imgs = static_cast<long>(frequency) * duration;
  const double reply_timeout = cfg.real("reply-timeout", std::to_string(60 + duration).c_str());
  const auto images = capp::make_images(kImages, static_cast<uint32_t>(cfg.integer("seed", "1")));

  std::atomic<long> received{0};
  capp::say("Start connecting to the local MQTT broker");
  capp::say("Broker ip: %s", local_ip.c_str());
  capp::say("Topic: %s", capp::kTopicPub);
  capp::Mqtt local(
      local_ip, port, logs, capp::kTopicPub, [&](const std::string&, const std::string& payload) {
        const int64_t now = capp::now_ns();
        if (payload.size() < capp::kTimestampChars) return;
        const int64_t sent = std::stoll(payload.substr(payload.size() - capp::kTimestampChars));
        capp::say("Latency (ns): %lld", static_cast<long long>(now - sent));
        ++received;
      });
  if (!local.ok()) return 1;
  // Replies to frames sent before the subscription is active would be lost.
  for (int i = 0; i < 100 && !local.subscribed(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));

  capp::say("Start connecting to the remote MQTT broker");
  capp::say("Broker ip: %s", remote_ip.c_str());
  capp::say("Topic: %s", capp::kTopicSub);
  capp::Mqtt remote(remote_ip, port, logs);
  if (!remote.ok()) return 1;
  capp::say("Connected with the broker");

  const double sec_per_frame = 1.0 / frequency;
  const int64_t t0 = capp::now_ns();
  const std::string ip_field = capp::pad_ip(local_ip);
  for (long i = 0; i < max_imgs; ++i) {
    const int64_t start = capp::now_ns();
    // Preparation: copy the image (the original read it from disk) and append the trailer.
    const std::string& img = images[static_cast<size_t>(i % kImages)];
    std::string frame;
    frame.reserve(img.size() + capp::kTimestampChars + capp::kIpChars);
    frame.append(img);
    frame.append(capp::encode_timestamp(capp::now_ns()));
    frame.append(ip_field);
    capp::say("Sending data (bytes): %zu", frame.size());
    remote.publish(capp::kTopicSub, frame, 0);
    capp::say("Preparation and preprocessing (ns): %lld",
              static_cast<long long>(capp::now_ns() - start));
    pace(start, t0 + static_cast<int64_t>((i + 1) * 1e9 / frequency), sec_per_frame);
  }
  // The end marker goes with QoS 2 and is waited for, so it arrives after every frame.
  const int mid = remote.publish(capp::kTopicSub, "1", 2);
  for (int i = 0; i < 300 && mid >= 0 && !remote.published(mid); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  capp::say("Finished, sent %ld images", max_imgs);

  capp::say("Wait for all images to be received back");
  const int64_t deadline = capp::now_ns() + static_cast<int64_t>(reply_timeout * 1e9);
  int64_t next_progress = 0;
  while (received.load() < max_imgs) {
    const int64_t now = capp::now_ns();
    if (now >= next_progress) {
      capp::say("Waiting progress: %ld / %ld", received.load(), max_imgs);
      next_progress = now + 10'000'000'000LL;
    }
    if (now > deadline) {
      capp::say("Error: only %ld / %ld images received back after %.0f s", received.load(),
                max_imgs, reply_timeout);
      return 3;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  capp::say("All %ld images have been received back", max_imgs);
  return 0;
}

int combined_mode(const capp::Settings& cfg, int frequency, int duration) {
  const int threads = static_cast<int>(std::max(1L, cfg.integer("cpu-threads", "1")));
  const capp::Cnn cnn(static_cast<int>(cfg.integer("input-size", "112")),
                      static_cast<int>(cfg.integer("cost", "1")));
  const auto images = capp::make_images(kImages, static_cast<uint32_t>(cfg.integer("seed", "1")));
  const long max_imgs = static_cast<long>(frequency) * duration;

  struct Item {
    int64_t generated_ns;
    const std::string* image;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Item> queue;
  bool done = false;
  long processed = 0;

  auto process = [&] {
    for (;;) {
      capp::say("Get item");
      Item item;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return done || !queue.empty(); });
        if (queue.empty()) return;
        item = queue.front();
        queue.pop_front();
      }
      const int64_t start = capp::now_ns();
      auto input = capp::image_from_bytes(*item.image, item.image->size(), cnn.input_size());
      auto scores = cnn.forward(input);
      for (auto [cls, score] : capp::top_k(scores, 5))
        capp::say("\t%08.6f - class_%04d", score, cls);
      const int64_t now = capp::now_ns();
      capp::say("Preparation, preprocessing and processing (ns): %lld",
                static_cast<long long>(now - start));
      capp::say("Latency (ns): %lld", static_cast<long long>(now - item.generated_ns));
      std::lock_guard lock(mu);
      ++processed;
    }
  };
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) pool.emplace_back(process);

  capp::say("Start generating");
  const double sec_per_frame = 1.0 / frequency;
  const int64_t t0 = capp::now_ns();
  for (long i = 0; i < max_imgs; ++i) {
    const int64_t start = capp::now_ns();
    {
      std::lock_guard lock(mu);
      queue.push_back(Item{start, &images[static_cast<size_t>(i % kImages)]});
    }
    cv.notify_one();
    pace(start, t0 + static_cast<int64_t>((i + 1) * 1e9 / frequency), sec_per_frame);
  }
  {
    std::lock_guard lock(mu);
    done = true;
  }
  cv.notify_all();
  for (auto& t : pool) t.join();
  capp::say("Finished, processed %ld images", processed);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  capp::Settings cfg(argc, argv);
  const int frequency = static_cast<int>(cfg.integer("frequency"));
  const int duration = static_cast<int>(cfg.integer("duration", "300"));
  if (frequency < 1 || duration < 1) {
    capp::say("Error: FREQUENCY and DURATION must be >= 1 (got %d, %d)", frequency, duration);
    return 2;
  }
  return cfg.flag("combined") ? combined_mode(cfg, frequency, duration)
                              : publish_mode(cfg, frequency, duration);
}

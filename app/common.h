#pragma once
// Shared pieces of the guest programs: timestamped output, settings from the environment (as the
// original containers) or flags, the frame format on the wire, and a thin libmosquitto wrapper.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

struct mosquitto;
struct mosquitto_message;

namespace capp {

/// Wall clock in ns since the epoch (the original's time.time_ns()).
int64_t now_ns();

/// Prints one line prefixed with an RFC 3339 UTC timestamp with ns, like `docker logs -t`, and
/// flushes it, so the host can parse it even if the program is killed (thread-safe).
void say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

/// Settings: `--key value` flags override environment variables KEY (dashes become underscores,
/// upper case), which override the default. A missing setting without a default is fatal.
class Settings {
 public:
  Settings(int argc, char** argv);
  std::string str(const std::string& key, const char* def = nullptr) const;
  long integer(const std::string& key, const char* def = nullptr) const;
  double real(const std::string& key, const char* def = nullptr) const;
  bool flag(const std::string& key) const;  ///< --key without value, or KEY=True/1/yes
 private:
  std::map<std::string, std::string> flags_;
};

/// Frame trailer: 20-char zero-padded ns timestamp + sender IP left-padded with '-' to 15 chars.
constexpr size_t kTimestampChars = 20;
constexpr size_t kIpChars = 15;
std::string encode_timestamp(int64_t ns);
std::string pad_ip(const std::string& ip);
/// Parses the trailer of a frame; false if it is malformed.
bool parse_trailer(const std::string& payload, int64_t* sent_ns, std::string* ip);

/// `count` JPEG-like payloads (SOI/APP0 header, pseudo-random body, EOI) of 60-70 kB, the size
/// range of the original's bundled ImageNet JPEGs; deterministic for a seed.
std::vector<std::string> make_images(int count, uint32_t seed);

constexpr const char* kTopicSub = "image-classification-sub";  ///< endpoint -> worker
constexpr const char* kTopicPub = "image-classification-pub";  ///< worker -> endpoint

/// One MQTT client with its network loop on a background thread.
class Mqtt {
 public:
  using OnMessage = std::function<void(const std::string& topic, std::string payload)>;
  /// Connects (retrying up to `connect_timeout_s`, as a broker may still be starting) and, if
  /// `subscribe_topic` is not empty, subscribes to it on every (re)connect, as the original's
  /// on_connect did.
  Mqtt(const std::string& host, int port, bool logs, std::string subscribe_topic = "",
       OnMessage on_message = nullptr, double connect_timeout_s = 30);
  ~Mqtt();
  Mqtt(const Mqtt&) = delete;
  Mqtt& operator=(const Mqtt&) = delete;
  bool ok() const { return ok_; }
  bool subscribed() const { return subscribed_; }
  /// Returns the message id, or -1.
  int publish(const std::string& topic, const std::string& payload, int qos);
  /// True once the broker acknowledged message `mid` (QoS > 0) or it left the client (QoS 0).
  bool published(int mid) const;

 private:
  static void on_connect_cb(mosquitto*, void*, int);
  static void on_subscribe_cb(mosquitto*, void*, int, int, const int*);
  static void on_message_cb(mosquitto*, void*, const mosquitto_message*);
  static void on_publish_cb(mosquitto*, void*, int);
  static void on_log_cb(mosquitto*, void*, int, const char*);
  mosquitto* m_ = nullptr;
  bool ok_ = false;
  std::atomic<bool> subscribed_{false};
  std::atomic<int> last_published_{0};
  std::string topic_;
  OnMessage on_message_;
};

/// Sleeps until `deadline_ns` (wall clock).
void sleep_until_ns(int64_t deadline_ns);

}  // namespace capp

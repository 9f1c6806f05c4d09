#include "common.h"

#include <mosquitto.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <random>
#include <thread>

namespace capp {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {
std::mutex g_out_mu;

std::string env_key(const std::string& key) {
  std::string k;
  for (char c : key)
    k += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return k;
}

[[noreturn]] void die_missing(const std::string& key) {
  say("Error: setting %s is required (environment variable %s or flag --%s)", key.c_str(),
      env_key(key).c_str(), key.c_str());
  std::exit(2);
}
}  // namespace

void say(const char* fmt, ...) {
  int64_t ns = now_ns();
  std::time_t secs = static_cast<std::time_t>(ns / 1000000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[64];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  char body[4096];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(body, sizeof body, fmt, ap);
  va_end(ap);
  std::lock_guard lock(g_out_mu);
  std::printf("%s.%09lldZ %s\n", stamp, static_cast<long long>(ns % 1000000000), body);
  std::fflush(stdout);
}

Settings::Settings(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) {
      say("Error: unexpected argument '%s' (settings are --key value or environment variables)",
          a.c_str());
      std::exit(2);
    }
    a = a.substr(2);
    auto eq = a.find('=');
    if (eq != std::string::npos) {
      flags_[a.substr(0, eq)] = a.substr(eq + 1);
    } else if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {
      flags_[a] = argv[++i];
    } else {
      flags_[a] = "True";
    }
  }
}

std::string Settings::str(const std::string& key, const char* def) const {
  if (auto it = flags_.find(key); it != flags_.end()) return it->second;
  if (const char* v = std::getenv(env_key(key).c_str()); v && *v) return v;
  if (def) return def;
  die_missing(key);
}

long Settings::integer(const std::string& key, const char* def) const {
  std::string v = str(key, def);
  char* end = nullptr;
  long r = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end) {
    say("Error: setting %s must be an integer, got '%s'", key.c_str(), v.c_str());
    std::exit(2);
  }
  return r;
}

double Settings::real(const std::string& key, const char* def) const {
  std::string v = str(key, def);
  char* end = nullptr;
  double r = std::strtod(v.c_str(), &end);
  if (v.empty() || *end) {
    say("Error: setting %s must be a number, got '%s'", key.c_str(), v.c_str());
    std::exit(2);
  }
  return r;
}

bool Settings::flag(const std::string& key) const {
  std::string v = str(key, "False");
  return v == "True" || v == "true" || v == "1" || v == "yes";
}

std::string encode_timestamp(int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020lld", static_cast<long long>(ns));
  return buf;
}

std::string pad_ip(const std::string& ip) {
  if (ip.size() >= kIpChars) return ip.substr(0, kIpChars);
  return std::string(kIpChars - ip.size(), '-') + ip;
}

bool parse_trailer(const std::string& payload, int64_t* sent_ns, std::string* ip) {
  if (payload.size() < kTimestampChars + kIpChars) return false;
  std::string ts = payload.substr(payload.size() - kTimestampChars - kIpChars, kTimestampChars);
  for (char c : ts)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  *sent_ns = std::stoll(ts);
  std::string raw = payload.substr(payload.size() - kIpChars);
  size_t i = raw.find_first_not_of('-');
  if (i == std::string::npos) return false;
  *ip = raw.substr(i);
  return true;
}

std::vector<std::string> make_images(int count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> size(60000, 70000);
  std::vector<std::string> images;
  for (int i = 0; i < count; ++i) {
    std::string img(static_cast<size_t>(size(rng)), '\0');
    // JFIF header so that the payload looks like what the original sent.
    static const unsigned char head[] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10,
                                         'J',  'F',  'I',  'F',  0x00};
    for (size_t k = 0; k < sizeof head; ++k) img[k] = static_cast<char>(head[k]);
    // Smooth-ish content (a random walk) rather than white noise, so the "decoded" image has
    // structure for the convolutions, as a photo would.
    int v = static_cast<int>(rng() & 0xFF);
    for (size_t k = sizeof head; k + 2 < img.size(); ++k) {
      v = (v + static_cast<int>(rng() % 31) - 15) & 0xFF;
      img[k] = static_cast<char>(v);
    }
    img[img.size() - 2] = static_cast<char>(0xFF);
    img[img.size() - 1] = static_cast<char>(0xD9);
    images.push_back(std::move(img));
  }
  return images;
}

void sleep_until_ns(int64_t deadline_ns) {
  int64_t now = now_ns();
  if (deadline_ns > now) std::this_thread::sleep_for(std::chrono::nanoseconds(deadline_ns - now));
}

// ---- MQTT -----------------------------------------------------------------------------------

namespace {
struct LibInit {
  LibInit() { mosquitto_lib_init(); }
  ~LibInit() { mosquitto_lib_cleanup(); }
};
}  // namespace

Mqtt::Mqtt(const std::string& host, int port, bool logs, std::string subscribe_topic,
           OnMessage on_message, double connect_timeout_s)
    : topic_(std::move(subscribe_topic)), on_message_(std::move(on_message)) {
  static LibInit init;
  m_ = mosquitto_new(nullptr, true, this);
  if (!m_) {
    say("Error: mosquitto_new failed");
    return;
  }
  mosquitto_connect_callback_set(m_, &Mqtt::on_connect_cb);
  mosquitto_subscribe_callback_set(m_, &Mqtt::on_subscribe_cb);
  mosquitto_message_callback_set(m_, &Mqtt::on_message_cb);
  mosquitto_publish_callback_set(m_, &Mqtt::on_publish_cb);
  if (logs) mosquitto_log_callback_set(m_, &Mqtt::on_log_cb);
  int64_t deadline = now_ns() + static_cast<int64_t>(connect_timeout_s * 1e9);
  int rc;
  while ((rc = mosquitto_connect(m_, host.c_str(), port, 300)) != MOSQ_ERR_SUCCESS) {
    if (now_ns() > deadline) {
      say("Error: cannot connect to MQTT broker %s:%d: %s", host.c_str(), port,
          rc == MOSQ_ERR_ERRNO ? std::strerror(errno) : mosquitto_strerror(rc));
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  if (mosquitto_loop_start(m_) != MOSQ_ERR_SUCCESS) {
    say("Error: cannot start the MQTT network loop");
    return;
  }
  ok_ = true;
}

Mqtt::~Mqtt() {
  if (!m_) return;
  if (ok_) {
    mosquitto_disconnect(m_);
    mosquitto_loop_stop(m_, false);
  }
  mosquitto_destroy(m_);
}

int Mqtt::publish(const std::string& topic, const std::string& payload, int qos) {
  int mid = -1;
  int rc = mosquitto_publish(m_, &mid, topic.c_str(), static_cast<int>(payload.size()),
                             payload.data(), qos, false);
  if (rc != MOSQ_ERR_SUCCESS) {
    say("Error: publish failed: %s", mosquitto_strerror(rc));
    return -1;
  }
  return mid;
}

bool Mqtt::published(int mid) const { return last_published_.load() >= mid; }

void Mqtt::on_connect_cb(mosquitto* m, void* self, int rc) {
  auto* me = static_cast<Mqtt*>(self);
  say("Connected with result code %d", rc);
  if (!me->topic_.empty()) mosquitto_subscribe(m, nullptr, me->topic_.c_str(), 0);
}

void Mqtt::on_subscribe_cb(mosquitto*, void* self, int, int, const int*) {
  static_cast<Mqtt*>(self)->subscribed_ = true;
  say("Subscribed to topic");
}

void Mqtt::on_message_cb(mosquitto*, void* self, const mosquitto_message* msg) {
  auto* me = static_cast<Mqtt*>(self);
  if (!me->on_message_) return;
  me->on_message_(msg->topic ? msg->topic : "", std::string(static_cast<const char*>(msg->payload),
                                                            static_cast<size_t>(msg->payloadlen)));
}

void Mqtt::on_publish_cb(mosquitto*, void* self, int mid) {
  auto* me = static_cast<Mqtt*>(self);
  int prev = me->last_published_.load();
  while (mid > prev && !me->last_published_.compare_exchange_weak(prev, mid)) {
  }
}

void Mqtt::on_log_cb(mosquitto*, void*, int level, const char* str) {
  say("[ %d ] %s", level, str);
}

}  // namespace capp

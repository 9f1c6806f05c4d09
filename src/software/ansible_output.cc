#include "continuum/software/ansible_output.h"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

#include "continuum/util/strings.h"

namespace continuum::software {
namespace {

// "TASK [name] ****" -> "name". Names may contain brackets, so take the text up to the last ']'.
std::optional<std::string> header_name(std::string_view line, std::string_view keyword) {
  if (!util::starts_with(line, keyword)) return std::nullopt;
  std::string_view rest = line.substr(keyword.size());
  if (rest.empty() || rest.front() != '[') return std::nullopt;
  size_t close = rest.rfind(']');
  if (close == std::string_view::npos) return std::nullopt;
  return std::string(rest.substr(1, close - 1));
}

// "fatal: [host]: FAILED! => {...}" / "failed: [host] (item=x) => {...}" /
// "fatal: [host]: UNREACHABLE! => {...}". Returns host, unreachable flag and the JSON text.
struct FailureLine {
  std::string host;
  bool unreachable = false;
  std::string json;
};

std::optional<FailureLine> parse_failure(std::string_view line) {
  std::string_view rest;
  if (util::starts_with(line, "fatal: ["))
    rest = line.substr(8);
  else if (util::starts_with(line, "failed: ["))
    rest = line.substr(9);
  else
    return std::nullopt;
  size_t close = rest.find(']');
  if (close == std::string_view::npos) return std::nullopt;
  FailureLine f;
  f.host = std::string(rest.substr(0, close));
  // Delegated results print "[host -> other]"; the failing host is the first.
  if (auto arrow = f.host.find(" -> "); arrow != std::string::npos) f.host.resize(arrow);
  std::string_view tail = rest.substr(close + 1);
  f.unreachable = tail.find("UNREACHABLE!") != std::string_view::npos;
  size_t arrow = tail.find("=> ");
  if (arrow != std::string_view::npos) f.json = std::string(util::trim(tail.substr(arrow + 3)));
  return f;
}

// "ok: [host]", "changed: [host] => ...", "skipping: [host]": the host that reported.
std::optional<std::string> result_host(std::string_view line) {
  for (std::string_view p : {"ok: [", "changed: [", "skipping: [", "fatal: [", "failed: [",
                             "rescued: [", "ignored: ["}) {
    if (util::starts_with(line, p)) {
      std::string_view rest = line.substr(p.size());
      size_t close = rest.find(']');
      if (close == std::string_view::npos) return std::nullopt;
      std::string h(rest.substr(0, close));
      if (auto arrow = h.find(" -> "); arrow != std::string::npos) h.resize(arrow);
      return h;
    }
  }
  return std::nullopt;
}

std::string tail_lines(const std::string& s, size_t max_lines) {
  std::string t(util::trim(s));
  size_t pos = t.size();
  for (size_t n = 0; n < max_lines && pos != std::string::npos && pos > 0; ++n)
    pos = t.rfind('\n', pos - 1);
  if (pos == std::string::npos || pos == 0) return t;
  return "..." + t.substr(pos);
}

}  // namespace

std::optional<std::pair<std::string, HostStats>> parse_recap_line(std::string_view line) {
  size_t colon = line.find(" : ");
  if (colon == std::string_view::npos) return std::nullopt;
  std::string host(util::trim(line.substr(0, colon)));
  if (host.empty()) return std::nullopt;
  HostStats s;
  int seen = 0;
  std::string_view rest = line.substr(colon + 3);
  for (const std::string& field : util::split(rest, ' ')) {
    std::string_view f = util::trim(field);
    if (f.empty()) continue;
    size_t eq = f.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    std::string_view key = f.substr(0, eq), val = f.substr(eq + 1);
    int v = 0;
    auto [p, ec] = std::from_chars(val.data(), val.data() + val.size(), v);
    if (ec != std::errc() || p != val.data() + val.size()) return std::nullopt;
    if (key == "ok")
      s.ok = v;
    else if (key == "changed")
      s.changed = v;
    else if (key == "unreachable")
      s.unreachable = v;
    else if (key == "failed")
      s.failed = v;
    else if (key == "skipped")
      s.skipped = v;
    else if (key == "rescued")
      s.rescued = v;
    else if (key == "ignored")
      s.ignored = v;
    else
      continue;  // a future counter: ignore rather than reject the line
    ++seen;
  }
  if (seen < 4) return std::nullopt;  // ok, changed, unreachable, failed at least
  return std::make_pair(host, s);
}

std::string result_message(std::string_view json_text) {
  auto j = nlohmann::json::parse(json_text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::string(util::trim(json_text));
  std::string msg;
  auto str = [&](const char* key) -> std::string {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return "";
    return it->is_string() ? it->get<std::string>() : it->dump();
  };
  msg = str("msg");
  if (msg.empty()) msg = str("reason");
  // Loops put each item's result under "results"; the first failed one is the interesting one.
  if (msg.empty() || msg == "One or more items failed") {
    if (auto it = j.find("results"); it != j.end() && it->is_array()) {
      for (const auto& r : *it) {
        if (r.is_object() && r.value("failed", false)) {
          std::string inner = result_message(r.dump());
          if (!inner.empty()) return (msg.empty() ? "" : msg + ": ") + inner;
        }
      }
    }
  }
  std::string err = str("stderr"), out = str("stdout");
  std::string cmd = str("cmd");
  if (!err.empty())
    msg += (msg.empty() ? "" : "; ") + std::string("stderr: ") + tail_lines(err, 5);
  else if (!out.empty() && j.contains("rc"))
    msg += (msg.empty() ? "" : "; ") + std::string("stdout: ") + tail_lines(out, 5);
  if (msg.empty()) msg = j.dump();
  return msg;
}

void OutputParser::flush_pending() {
  if (!pending_) return;
  pending_->message = result_message(pending_json_);
  out_.failures.push_back(std::move(*pending_));
  pending_.reset();
  pending_json_.clear();
  pending_lines_ = 0;
}

void OutputParser::finish() { flush_pending(); }

void OutputParser::feed(std::string_view raw) {
  std::string_view line = raw;
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);

  // A result printed over several lines (indented JSON): collect until it parses.
  if (pending_ && !pending_json_.empty() && !nlohmann::json::accept(pending_json_)) {
    bool header = util::starts_with(line, "TASK [") || util::starts_with(line, "PLAY ") ||
                  util::starts_with(line, "RUNNING HANDLER [");
    if (!header && ++pending_lines_ < 2000) {
      pending_json_ += "\n";
      pending_json_ += line;
      return;
    }
  }

  if (util::trim(line) == "...ignoring") {
    // The failure just printed was ignore_errors: it does not fail the run (nor do earlier
    // failed loop items of the same task on that host).
    if (pending_) {
      std::erase_if(out_.failures, [&](const TaskFailure& f) {
        return f.host == pending_->host && f.task == pending_->task && f.play == pending_->play;
      });
    }
    pending_.reset();
    pending_json_.clear();
    return;
  }
  if (util::starts_with(line, "PLAY RECAP")) {
    flush_pending();
    in_recap_ = true;
    out_.saw_recap = true;
    return;
  }
  if (auto n = header_name(line, "PLAY "); n) {
    flush_pending();
    play_ = *n;
    task_.clear();
    task_hosts_.clear();
    in_recap_ = false;
    return;
  }
  if (auto n = header_name(line, "TASK "); n) {
    flush_pending();
    task_ = *n;
    task_hosts_.clear();
    return;
  }
  if (auto n = header_name(line, "RUNNING HANDLER "); n) {
    flush_pending();
    task_ = *n;
    task_hosts_.clear();
    return;
  }
  if (util::starts_with(line, "ERROR! ")) {
    flush_pending();
    out_.errors.emplace_back(line.substr(7));
    return;
  }
  if (util::starts_with(line, "[WARNING]: ")) {
    out_.warnings.emplace_back(line.substr(11));
    return;
  }
  if (in_recap_) {
    if (auto r = parse_recap_line(line); r) out_.recap[r->first] = r->second;
    return;
  }
  if (auto f = parse_failure(line); f) {
    flush_pending();
    pending_ = TaskFailure{f->host, play_, task_, "", f->unreachable};
    pending_json_ = f->json;
    pending_lines_ = 0;
  }
  if (auto h = result_host(line); h) {
    if (std::find(task_hosts_.begin(), task_hosts_.end(), *h) == task_hosts_.end())
      task_hosts_.push_back(*h);
  }
}

}  // namespace continuum::software

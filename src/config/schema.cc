#include "schema.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>

#include "continuum/util/strings.h"

namespace continuum::config::detail {
namespace {

std::string int_range(long lo, long hi) {
  if (hi == LONG_MAX) return "an integer >= " + std::to_string(lo);
  return "an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
}

std::string double_range(double lo, double hi, bool lo_open) {
  std::string l = util::format_number(lo);
  if (std::isinf(hi)) return std::string("a number ") + (lo_open ? "> " : ">= ") + l;
  return "a number from " + l + " to " + util::format_number(hi);
}

std::string quote_list(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += i + 1 == v.size() ? " or " : ", ";
    s += v[i];
  }
  return s;
}

}  // namespace

bool parse_int(std::string_view s, long& out) {
  s = util::trim(s);
  if (s.empty()) return false;
  size_t i = (s[0] == '+' || s[0] == '-') ? 1 : 0;
  if (i == s.size()) return false;
  for (size_t j = i; j < s.size(); ++j)
    if (s[j] < '0' || s[j] > '9') return false;
  std::string str(s);
  errno = 0;
  long v = std::strtol(str.c_str(), nullptr, 10);
  if (errno == ERANGE) return false;
  out = v;
  return true;
}

bool parse_double(std::string_view s, double& out) {
  s = util::trim(s);
  if (s.empty()) return false;
  bool digit = false;
  for (char c : s) {
    if (c >= '0' && c <= '9')
      digit = true;
    else if (c != '.' && c != 'e' && c != 'E' && c != '+' && c != '-')
      return false;
  }
  if (!digit) return false;
  std::string str(s);
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(str.c_str(), &end);
  if (end != str.c_str() + str.size() || errno == ERANGE || !std::isfinite(v)) return false;
  out = v;
  return true;
}

bool parse_bool(std::string_view s, bool& out) {
  std::string v = util::to_lower(util::trim(s));
  if (v == "1" || v == "yes" || v == "true" || v == "on") {
    out = true;
    return true;
  }
  if (v == "0" || v == "no" || v == "false" || v == "off") {
    out = false;
    return true;
  }
  return false;
}

Sec::Sec(Ctx& ctx, const IniSection* ini, std::string header)
    : ctx_(ctx), ini_(ini), header_(std::move(header)) {}

const IniEntry* Sec::find(std::string_view key) {
  if (!ini_) return nullptr;
  for (const auto& e : ini_->entries) {
    if (e.key == key) {
      used_.insert(e.key);
      return &e;
    }
  }
  return nullptr;
}

bool Sec::has(std::string_view key) const {
  if (!ini_) return false;
  for (const auto& e : ini_->entries)
    if (e.key == key) return true;
  return false;
}

std::string Sec::head(const IniEntry& e) const {
  return "[" + header_ + "] " + e.key_as_written + " = " + e.value;
}

void Sec::fail(std::string_view key, const std::string& problem) {
  if (ini_) {
    for (const auto& e : ini_->entries) {
      if (e.key == key) {
        ctx_.error(e.line, head(e) + ": " + problem);
        return;
      }
    }
  }
  ctx_.error(line(), "[" + header_ + "] " + std::string(key) + ": " + problem);
}

const IniEntry* Sec::value_entry(std::string_view key, const Need& need) {
  const IniEntry* e = find(key);
  if (!e) {
    if (need.mandatory)
      ctx_.error(line(), "[" + header_ + "] " + std::string(key) + ": missing; " + need.why);
    return nullptr;
  }
  if (e->value.empty()) {
    // Upstream: an empty value means "not set" (default), or "missing" when mandatory.
    if (need.mandatory) ctx_.error(e->line, head(*e) + ": empty; " + need.why);
    return nullptr;
  }
  return e;
}

bool Sec::get_int(std::string_view key, int& out, long lo, long hi, const Need& need) {
  const IniEntry* e = value_entry(key, need);
  if (!e) return false;
  long v = 0;
  std::string text = typed_value(*e);
  if (!parse_int(text, v)) {
    ctx_.error(e->line, head(*e) + ": expected an integer; allowed: " + int_range(lo, hi));
    return false;
  }
  if (v < lo || v > hi || v > INT_MAX || v < INT_MIN) {
    ctx_.error(e->line, head(*e) + ": out of range; allowed: " + int_range(lo, hi));
    return false;
  }
  out = static_cast<int>(v);
  return true;
}

bool Sec::get_double(std::string_view key, double& out, double lo, double hi, const Need& need,
                     bool lo_open) {
  const IniEntry* e = value_entry(key, need);
  if (!e) return false;
  double v = 0;
  if (!parse_double(typed_value(*e), v)) {
    ctx_.error(e->line,
               head(*e) + ": expected a number; allowed: " + double_range(lo, hi, lo_open));
    return false;
  }
  if (v < lo || v > hi || (lo_open && v == lo)) {
    ctx_.error(e->line, head(*e) + ": out of range; allowed: " + double_range(lo, hi, lo_open));
    return false;
  }
  out = v;
  return true;
}

bool Sec::get_bool(std::string_view key, bool& out) {
  const IniEntry* e = value_entry(key, {});
  if (!e) return false;
  bool v = false;
  if (!parse_bool(typed_value(*e), v)) {
    ctx_.error(e->line, head(*e) +
                            ": expected a boolean; allowed: True or False (also yes/no, on/off, "
                            "1/0, any case)");
    return false;
  }
  out = v;
  return true;
}

bool Sec::get_string(std::string_view key, std::string& out, const Need& need) {
  const IniEntry* e = value_entry(key, need);
  if (!e) return false;
  out = e->value;
  return true;
}

bool Sec::get_choice(std::string_view key, std::string& out,
                     const std::vector<std::string>& allowed, const Need& need) {
  const IniEntry* e = value_entry(key, need);
  if (!e) return false;
  for (const auto& a : allowed) {
    if (e->value == a) {
      out = a;
      return true;
    }
  }
  // Names the CCGRID artifact branch used for the same things.
  static const std::map<std::string, std::string> kRenamed = {
      {"terraform", "gcp"}, {"kubernetes-control", "kubecontrol"}, {"openFaas", "openfaas"}};
  if (auto r = kRenamed.find(e->value); r != kRenamed.end()) {
    ctx_.error(e->line, head(*e) + ": the CCGRID artifact's name; this version calls it `" +
                            r->second + "`; allowed: " + quote_list(allowed));
    return false;
  }
  std::string msg = "not a valid " + std::string(key);
  std::string close = util::closest_match(e->value, allowed);
  if (close.empty()) close = util::closest_match(util::to_lower(e->value), allowed);
  if (!close.empty()) msg += " (did you mean `" + close + "`?)";
  ctx_.error(e->line, head(*e) + ": " + msg + "; allowed: " + quote_list(allowed));
  return false;
}

bool Sec::get_list(std::string_view key, std::vector<std::string>& out, const Need& need) {
  const IniEntry* e = value_entry(key, need);
  if (!e) return false;
  std::vector<std::string> items;
  for (const auto& part : util::split(e->value, ','))
    if (!util::trim(part).empty()) items.emplace_back(util::trim(part));
  if (items.empty()) {
    if (need.mandatory) ctx_.error(e->line, head(*e) + ": empty list; " + need.why);
    return false;
  }
  out = std::move(items);
  return true;
}

void Sec::finish() {
  if (!ini_ || ini_->duplicate) return;
  for (const auto& e : ini_->entries) {
    (*ctx_.where)[header_ + "." + e.key] = Location{ctx_.file, e.line, e.key_as_written, e.value};
    if (used_.count(e.key)) continue;
    if (universe_) {
      auto it = universe_->find(e.key);
      if (it != universe_->end()) {
        ctx_.warn(e.line, head(e) + ": ignored; only used when " + it->second);
        continue;
      }
    }
    std::string msg = head(e) + ": unknown key";
    if (universe_) {
      std::vector<std::string> keys;
      for (const auto& [k, _] : *universe_) keys.push_back(k);
      std::string close = util::closest_match(e.key, keys);
      if (!close.empty()) msg += " (did you mean `" + close + "`?)";
    }
    msg += "; the keys of [" + header_ + "] are listed in docs/configuration.md";
    ctx_.error(e.line, msg);
  }
}

}  // namespace continuum::config::detail

#include "continuum/util/strings.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

namespace continuum::util {

std::string_view trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::string to_lower(std::string_view s) {
  std::string r(s);
  for (auto& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      out.emplace_back(s.substr(start));
      return out;
    }
    out.emplace_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

bool starts_with(std::string_view s, std::string_view p) { return s.starts_with(p); }
bool ends_with(std::string_view s, std::string_view p) { return s.ends_with(p); }

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string r;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) r += sep;
    r += parts[i];
  }
  return r;
}

std::string shell_quote(std::string_view w) {
  if (!w.empty() && std::all_of(w.begin(), w.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) ||
               std::string_view("@%+=:,./_-").find(c) != std::string_view::npos;
      }))
    return std::string(w);
  std::string r = "'";
  for (char c : w) {
    if (c == '\'')
      r += "'\\''";
    else
      r += c;
  }
  r += "'";
  return r;
}

std::string shell_join(const std::vector<std::string>& argv) {
  std::string r;
  for (size_t i = 0; i < argv.size(); ++i) {
    if (i) r += ' ';
    r += shell_quote(argv[i]);
  }
  return r;
}

std::optional<std::vector<std::string>> split_command(std::string_view s, std::string* error) {
  std::vector<std::string> words;
  std::string cur;
  bool in_word = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else if (c == '\'') {
      const size_t end = s.find('\'', i + 1);
      if (end == std::string_view::npos) {
        if (error) *error = "unclosed ' quote";
        return std::nullopt;
      }
      cur.append(s.substr(i + 1, end - i - 1));
      i = end;
      in_word = true;
    } else if (c == '"') {
      size_t j = i + 1;
      for (; j < s.size() && s[j] != '"'; ++j) {
        if (s[j] == '\\' && j + 1 < s.size() &&
            std::string_view("\"\\$`").find(s[j + 1]) != std::string_view::npos)
          ++j;
        cur += s[j];
      }
      if (j >= s.size()) {
        if (error) *error = "unclosed \" quote";
        return std::nullopt;
      }
      i = j;
      in_word = true;
    } else if (c == '\\') {
      if (i + 1 >= s.size()) {
        if (error) *error = "trailing backslash";
        return std::nullopt;
      }
      cur += s[++i];
      in_word = true;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(cur));
  return words;
}

std::optional<std::string> expand_placeholders(std::string_view word,
                                               const std::map<std::string, std::string>& vars,
                                               std::string* error) {
  std::string out;
  for (size_t i = 0; i < word.size(); ++i) {
    const char c = word[i];
    if ((c == '{' || c == '}') && i + 1 < word.size() && word[i + 1] == c) {
      out += c;
      ++i;
    } else if (c == '{') {
      const size_t end = word.find('}', i + 1);
      if (end == std::string_view::npos) {
        if (error) *error = "unmatched { in \"" + std::string(word) + "\"";
        return std::nullopt;
      }
      const std::string name(word.substr(i + 1, end - i - 1));
      auto it = vars.find(name);
      if (it == vars.end()) {
        if (error) {
          std::string known;
          for (const auto& [k, _] : vars) known += (known.empty() ? "{" : ", {") + k + "}";
          *error = "unknown placeholder {" + name + "}; allowed: " + known;
        }
        return std::nullopt;
      }
      out += it->second;
      i = end;
    } else if (c == '}') {
      if (error) *error = "unmatched } in \"" + std::string(word) + "\"";
      return std::nullopt;
    } else {
      out += c;
    }
  }
  return out;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (std::tolower(a[i - 1]) == std::tolower(b[j - 1]) ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string closest_match(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const auto& c : candidates) {
    size_t d = edit_distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  // A third of the word's length (at least 2 edits) is a typo; further away is a different word.
  size_t limit = std::max<size_t>(2, word.size() / 3);
  return best_d <= limit ? best : std::string();
}

std::string format_number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6f", v);
  std::string s(buf);
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  if (s == "-0") s = "0";
  return s;
}

std::string format_fixed(double v, int decimals, std::string_view missing) {
  if (std::isnan(v)) return std::string(missing);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string csv_field(std::string_view s) {
  if (s.find_first_of(",\"\n\r") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"')
      out += "\"\"";
    else
      out += c;
  }
  out += '"';
  return out;
}

bool csv_split(std::string_view line, std::vector<std::string>& fields) {
  fields.clear();
  std::string cur;
  size_t i = 0;
  bool quoted = false;
  bool field_started_quoted = false;
  while (i <= line.size()) {
    if (i == line.size()) {
      if (quoted) return false;
      fields.push_back(std::move(cur));
      return true;
    }
    char c = line[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < line.size() && line[i + 1] == '"') {
          cur += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        cur += c;
      }
    } else if (c == '"' && cur.empty() && !field_started_quoted) {
      quoted = true;
      field_started_quoted = true;
    } else if (c == ',') {
      fields.push_back(std::move(cur));
      cur.clear();
      field_started_quoted = false;
    } else {
      cur += c;
    }
    ++i;
  }
  return true;
}

}  // namespace continuum::util

// Line level of the configuration loader, on top of inih's ini_parse_stream.
//
// Debian's libinih (r55) is built with the header defaults: the handler gets no line number, a
// line longer than 199 bytes is cut and its rest parsed as a new line, names are cut at 49 bytes,
// only `;` starts an inline comment, and an indented line continues the previous value. So inih
// reads through our own reader, which hands it one line per call and therefore knows which line
// the handler is talking about. The reader classifies the line first (blank, comment, section
// header, indented continuation) and gives inih only candidate `name = value` lines, shortened to
// `name=` when they are too long. inih decides whether such a line is a key/value pair (it calls
// the handler) or malformed (it does not); the name and the value are then re-read from the full
// raw line, so nothing is ever truncated.
#include "ini_file.h"

#include <ini.h>

#include <cctype>
#include <cstring>
#include <map>
#include <string>

#include "continuum/util/strings.h"

namespace continuum::config::detail {
namespace {

// inih calls the reader with num = INI_MAX_LINE (200) and cannot take more than num - 1 bytes.
constexpr size_t kInihSafe = 180;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\f' || c == '\v'; }

std::string collapse_spaces(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : util::trim(s)) {
    if (is_space(c)) {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

// Position of the first `#` or `;` that starts an inline comment in an unquoted string value:
// at the start of the value or after whitespace.
size_t comment_start(std::string_view v) {
  for (size_t i = 0; i < v.size(); ++i)
    if ((v[i] == '#' || v[i] == ';') && (i == 0 || is_space(v[i - 1]))) return i;
  return std::string_view::npos;
}

enum class Kind { blank, comment, section, continuation, candidate };

struct State {
  std::vector<std::string> lines;  // raw lines, without the line break
  size_t next = 0;                 // index of the next line to hand to inih
  int current = 0;                 // 1-based number of the line inih is looking at
  Kind kind = Kind::blank;
  bool handled = false;  // inih called the handler for the current line
  std::string buffer;    // what inih got for the current line
  IniFile out;
  long section_index = -1;  // index into out.sections of the current section, or -1
  IniSection* section() {
    return section_index < 0 ? nullptr : &out.sections[static_cast<size_t>(section_index)];
  }
  int last_key_line = 0;  // last key line in the current section (0 after a header)
  std::string last_key;
  std::map<std::string, int> section_lines;  // header -> first line

  void problem(int line, std::string text) { out.problems.push_back({line, std::move(text)}); }
  void finish_line();
  void classify(std::string_view raw);
  void on_pair();
};

void State::finish_line() {
  if (current == 0 || kind != Kind::candidate || handled) return;
  std::string_view raw = util::trim(lines[static_cast<size_t>(current - 1)]);
  std::string shown(raw.substr(0, 60));
  if (raw.size() > 60) shown += "...";
  problem(current, "`" + shown +
                       "`: not a `key = value` line, a `[section]` header or a comment; "
                       "write `key = value` (a comment line starts with # or ;)");
}

void State::classify(std::string_view raw) {
  std::string_view text = util::trim(raw);
  handled = false;
  if (text.empty()) {
    kind = Kind::blank;
    buffer = "\n";
    return;
  }
  if (text[0] == '#' || text[0] == ';') {
    kind = Kind::comment;
    buffer = "\n";
    return;
  }
  bool indented = is_space(raw[0]);
  if (indented && last_key_line > 0) {
    // configparser and inih both take this as a continuation of the previous value, which then
    // fails as a garbled value; multi-line values have no use in this format, so say so.
    kind = Kind::continuation;
    buffer = "\n";
    problem(current, "indented line after `" + last_key + "` (line " +
                         std::to_string(last_key_line) +
                         "): an indented line would continue that value (configparser, inih); "
                         "multi-line values are not supported, remove the indentation");
    return;
  }
  if (text[0] == '[') {
    kind = Kind::section;
    buffer = "\n";
    size_t close = text.find(']');
    if (close == std::string_view::npos) {
      problem(current, "section header `" + std::string(text) + "` has no closing `]`");
      section_index = -1;
      last_key_line = 0;
      return;
    }
    std::string_view after = util::trim(text.substr(close + 1));
    if (!after.empty() && after[0] != '#' && after[0] != ';')
      problem(current, "text after the section header `" + std::string(text.substr(0, close + 1)) +
                           "`: only a comment (# or ;) may follow `]`");
    std::string header = collapse_spaces(text.substr(1, close - 1));
    last_key_line = 0;
    last_key.clear();
    if (header.empty()) {
      problem(current, "empty section header `[]`");
      section_index = -1;
      return;
    }
    IniSection s;
    s.header = header;
    s.line = current;
    auto [it, inserted] = section_lines.emplace(header, current);
    if (!inserted) {
      s.duplicate = true;
      problem(current, "[" + header + "]: duplicate section (first at line " +
                           std::to_string(it->second) +
                           "); each section may appear once, merge the two");
    }
    out.sections.push_back(std::move(s));
    section_index = static_cast<long>(out.sections.size()) - 1;
    return;
  }
  kind = Kind::candidate;
  // inih only sees lines it can hold; a long pair is shortened to `name=` (the value is re-read
  // from the raw line), a long line without a separator stays malformed.
  size_t sep = text.find_first_of("=:");
  if (text.size() <= kInihSafe) {
    buffer = std::string(text) + "\n";
  } else if (sep != std::string_view::npos && sep < kInihSafe) {
    buffer = std::string(text.substr(0, sep + 1)) + "\n";
  } else if (sep != std::string_view::npos &&
             comment_start(text.substr(0, sep)) == std::string_view::npos) {
    buffer = "k=\n";  // a pair whose name alone is too long for inih: the name is re-read below
  } else {
    buffer = std::string(text.substr(0, kInihSafe)) + "\n";
    // Remove separators so that inih cannot see a pair in the shortened text.
    for (char& c : buffer)
      if (c == '=' || c == ':') c = ' ';
  }
}

void State::on_pair() {
  handled = true;
  std::string_view text = util::trim(lines[static_cast<size_t>(current - 1)]);
  size_t sep = text.find_first_of("=:");
  if (sep == std::string_view::npos) return;  // cannot happen: inih found one
  std::string name(util::trim(text.substr(0, sep)));
  std::string_view rest = util::trim(text.substr(sep + 1));

  if (name.empty()) {
    problem(current, "`" + std::string(text.substr(0, 60)) +
                         "`: a value without a key name; write `key = value`");
    handled = true;
    return;
  }
  IniEntry e;
  e.key_as_written = name;
  e.key = util::to_lower(name);
  e.line = current;
  if (!rest.empty() && (rest[0] == '"' || rest[0] == '\'')) {
    char q = rest[0];
    size_t close = rest.find(q, 1);
    if (close == std::string_view::npos) {
      problem(current, "key `" + name + "`: the value starts with " + std::string(1, q) +
                           " but has no closing " + std::string(1, q) +
                           "; wrap the whole value in matching quotes or remove the quote");
      e.value = std::string(rest.substr(1));
    } else {
      std::string_view after = util::trim(rest.substr(close + 1));
      if (after.empty() || after[0] == '#' || after[0] == ';') {
        e.value = std::string(rest.substr(1, close - 1));
        e.quoted = true;
      }
    }
  }
  if (!e.quoted && e.value.empty()) {
    std::string_view v = rest;
    size_t c = comment_start(v);
    if (c != std::string_view::npos) v = v.substr(0, c);
    e.value = std::string(util::trim(v));
  }

  IniSection* section = this->section();
  if (section == nullptr) {
    problem(current, "key `" + name +
                         "` outside any section; put it under a header such as [infrastructure]");
    return;
  }
  last_key_line = current;
  last_key = name;
  if (section->duplicate) return;  // already reported; do not report its keys twice
  for (const auto& prev : section->entries) {
    if (prev.key == e.key) {
      problem(current, "[" + section->header + "] " + name + " = " + e.value +
                           ": duplicate key (first set at line " + std::to_string(prev.line) +
                           "); each key may appear once per section");
      return;
    }
  }
  section->entries.push_back(std::move(e));
}

char* reader(char* str, int num, void* stream) {
  auto* st = static_cast<State*>(stream);
  st->finish_line();
  if (st->next >= st->lines.size()) return nullptr;
  st->current = static_cast<int>(++st->next);
  st->classify(st->lines[st->next - 1]);
  size_t n = std::min(st->buffer.size(), static_cast<size_t>(num - 1));
  std::memcpy(str, st->buffer.data(), n);
  str[n] = '\0';
  return str;
}

int handler(void* user, const char*, const char*, const char*) {
  static_cast<State*>(user)->on_pair();
  return 1;  // problems are collected by us, with line numbers; inih's first-error line is unused
}

}  // namespace

IniFile parse_ini(std::string_view text) {
  State st;
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // UTF-8 byte order mark
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    std::string_view line =
        text.substr(start, nl == std::string_view::npos ? text.npos : nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (nl == std::string_view::npos) {
      if (!line.empty()) st.lines.emplace_back(line);
      break;
    }
    st.lines.emplace_back(line);
    start = nl + 1;
  }
  ini_parse_stream(reader, &st, handler, &st);
  st.finish_line();
  return std::move(st.out);
}

std::string typed_value(const IniEntry& e) {
  if (e.quoted) return e.value;
  size_t c = e.value.find_first_of("#;");
  if (c == std::string::npos) return e.value;
  return std::string(util::trim(std::string_view(e.value).substr(0, c)));
}

}  // namespace continuum::config::detail

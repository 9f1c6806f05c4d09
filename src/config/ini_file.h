#pragma once
// Line level of the configuration loader: turns the text of an INI file into sections and
// key/value entries that each know their line, or into line-numbered problems. Internal to
// src/config (config.cc applies the schema on top).
#include <string>
#include <string_view>
#include <vector>

namespace continuum::config::detail {

/// One `key = value` line.
struct IniEntry {
  std::string key;  ///< lower case (keys are case-insensitive, as configparser)
  std::string key_as_written;
  std::string value;    ///< quotes removed, inline comment removed, trimmed
  bool quoted = false;  ///< the value was wrapped in matching quotes (taken literally)
  int line = 0;
};

/// One `[header]` and the entries under it.
struct IniSection {
  std::string header;  ///< text between the brackets, trimmed, inner whitespace collapsed
  int line = 0;
  bool duplicate = false;  ///< a second section with the same header (already reported)
  std::vector<IniEntry> entries;
};

/// A problem found while reading lines: reported as FILE:LINE: text.
struct IniProblem {
  int line = 0;
  std::string text;
};

struct IniFile {
  std::vector<IniSection> sections;
  std::vector<IniProblem> problems;
};

/// Splits `text` (already checked to be UTF-8 without NUL bytes) into sections and entries.
/// Structure (which lines are `name = value` pairs) is decided by inih's ini_parse_stream; names
/// and values are re-read from the full raw line because Debian's inih truncates lines at 199
/// bytes and names at 49 (see docs/configuration.md, "File syntax").
IniFile parse_ini(std::string_view text);

/// The value rules for typed keys (int, float, bool): besides the string rules applied by
/// parse_ini, a `#` or `;` anywhere ends the value, since neither can be part of a number or a
/// boolean (the original's template.cfg has `7.21# Options ...`).
std::string typed_value(const IniEntry& e);

}  // namespace continuum::config::detail

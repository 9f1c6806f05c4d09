#pragma once
// Schema helpers of the configuration loader: a section read key by key with typed getters that
// collect every problem (FILE:LINE: [section] key = value: what is wrong; what is allowed)
// instead of stopping at the first. Internal to src/config.
#include <climits>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "continuum/config/config.h"
#include "ini_file.h"

namespace continuum::config::detail {

/// A message with the line it is about (0: the file as a whole).
struct Msg {
  int line = 0;
  std::string text;
};

/// Problems and remarks of one load, plus the `where` map being filled.
struct Ctx {
  std::string file;
  std::vector<Msg> errors;
  std::vector<Msg> warnings;
  std::map<std::string, Location>* where = nullptr;

  void error(int line, std::string text) { errors.push_back({line, std::move(text)}); }
  void warn(int line, std::string text) { warnings.push_back({line, std::move(text)}); }
};

/// Whether a key must be present, and the reason shown when it is not.
struct Need {
  bool mandatory = false;
  std::string why;  ///< e.g. "mandatory when cloud_nodes > 0"
  static Need yes(std::string why = "mandatory") { return {true, std::move(why)}; }
  static Need when(bool cond, std::string why) { return {cond, std::move(why)}; }
};

/// One section of the file read through the schema. Every key looked up is marked used; finish()
/// then reports keys that are known but not used by this configuration (warning) and keys that
/// are not known at all (error, with a "did you mean").
class Sec {
 public:
  /// `ini` may be null (section absent): getters then apply defaults and report mandatory keys.
  Sec(Ctx& ctx, const IniSection* ini, std::string header);

  bool present() const { return ini_ != nullptr; }
  int line() const { return ini_ ? ini_->line : 0; }
  const std::string& header() const { return header_; }

  /// The entry for `key` (lower case) if present; marks it used.
  const IniEntry* find(std::string_view key);
  bool has(std::string_view key) const;
  /// "[section] key = value" for messages.
  std::string head(const IniEntry& e) const;

  bool get_int(std::string_view key, int& out, long lo, long hi = LONG_MAX, const Need& need = {});
  bool get_double(std::string_view key, double& out, double lo, double hi, const Need& need = {},
                  bool lo_open = false);
  bool get_bool(std::string_view key, bool& out);
  bool get_string(std::string_view key, std::string& out, const Need& need = {});
  bool get_choice(std::string_view key, std::string& out, const std::vector<std::string>& allowed,
                  const Need& need = {});
  /// Comma list as upstream: items blank after trimming are dropped; items are trimmed (upstream
  /// kept the spaces around items, which no host name or node id can contain).
  bool get_list(std::string_view key, std::vector<std::string>& out, const Need& need = {});

  /// Reports an error about `key` at its line (or the section line when absent).
  void fail(std::string_view key, const std::string& problem);

  /// Known keys of this section kind, each with the condition under which it is used.
  void set_universe(const std::map<std::string, std::string>* universe) { universe_ = universe; }
  /// Records every present key in `where`; warns about known-but-unused keys, errors on unknown.
  void finish();

 private:
  const IniEntry* value_entry(std::string_view key, const Need& need);

  Ctx& ctx_;
  const IniSection* ini_;
  std::string header_;
  std::set<std::string> used_;
  const std::map<std::string, std::string>* universe_ = nullptr;
};

/// Python-compatible conversions (configparser getint/getfloat/getboolean), minus the oddities
/// documented in docs/configuration.md (no "1_000", no inf/nan).
bool parse_int(std::string_view s, long& out);
bool parse_double(std::string_view s, double& out);
bool parse_bool(std::string_view s, bool& out);

}  // namespace continuum::config::detail

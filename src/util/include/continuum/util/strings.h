#pragma once
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace continuum::util {

std::string_view trim(std::string_view s);
std::string to_lower(std::string_view s);
/// Splits on `sep`; keeps empty fields (callers decide what blank means).
std::vector<std::string> split(std::string_view s, char sep);
bool starts_with(std::string_view s, std::string_view prefix);
bool ends_with(std::string_view s, std::string_view suffix);
std::string join(const std::vector<std::string>& parts, std::string_view sep);

/// Quotes one word for a POSIX shell (single quotes, embedded ' as '\''). Every value that comes
/// from a config and ends up in a remote command goes through this: never paste values raw.
std::string shell_quote(std::string_view word);
/// Joins argv into one shell command line with every word quoted (only where needed).
std::string shell_join(const std::vector<std::string>& argv);

/// Splits a command line into words as a POSIX shell would for quoting only: blanks separate
/// words; '...' keeps everything literally, "..." keeps everything but \" \\ \$ \`, a backslash
/// outside quotes keeps the next character. Nothing is expanded ($, ~, globs, backquotes stay
/// literal): the words go to execve, never to a shell. nullopt (with *error) for an unclosed quote
/// or a trailing backslash.
std::optional<std::vector<std::string>> split_command(std::string_view s, std::string* error);

/// Replaces every {name} in `word` by vars[name]; {{ and }} are a literal brace. nullopt (with
/// *error naming the placeholder) for a name not in `vars` or an unmatched brace.
std::optional<std::string> expand_placeholders(std::string_view word,
                                               const std::map<std::string, std::string>& vars,
                                               std::string* error);

/// Levenshtein distance, for "did you mean" suggestions.
size_t edit_distance(std::string_view a, std::string_view b);
/// The candidate closest to `word` if it is close enough to be a plausible typo, else "".
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);

/// Formats a double without trailing zeros ("7.21", "1000", "0.5"): configured values, messages.
std::string format_number(double v);
/// Exactly `decimals` digits after the point ("7.210"), `missing` for NaN: table cells and CSV
/// columns whose width should not depend on the value.
std::string format_fixed(double v, int decimals, std::string_view missing = "");

/// One CSV field (RFC 4180): quoted, with quotes doubled, when it holds a comma, quote, CR or LF.
std::string csv_field(std::string_view s);
/// Splits one CSV line (RFC 4180 quoting, no embedded line breaks) into `fields`; false when a
/// quote is not closed or a quoted field has text after its closing quote.
bool csv_split(std::string_view line, std::vector<std::string>& fields);

}  // namespace continuum::util

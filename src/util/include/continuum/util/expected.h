#pragma once
// Expected<T>: a value or an Error, for failures that are likely and must be reported (bad input,
// I/O, a daemon that says no). std::expected is C++23 and Debian 12 has no tl::expected package,
// so this is the small subset we use. "Cannot happen" conditions throw or abort instead.
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace continuum {

/// The program's exit status (docs/design.md §1): what a script reading it can tell apart.
enum class ExitCode : int {
  ok = 0,
  failure = 1,        ///< a runtime failure: a daemon said no, a guest failed, data missing
  usage = 2,          ///< bad configuration or command line, or what this build cannot run
  interrupted = 130,  ///< Ctrl-C or SIGTERM (128 + SIGINT, as a shell reports it)
};

/// The number main() returns for `c`.
constexpr int exit_status(ExitCode c) { return static_cast<int>(c); }

/// A failure with a human-readable message (already naming file/line/key or resource).
struct Error {
  std::string message;
  /// How the program ends if this error ends it.
  ExitCode exit_code = ExitCode::failure;
};

inline Error make_error(std::string message, ExitCode exit_code = ExitCode::failure) {
  return Error{std::move(message), exit_code};
}

template <typename T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Expected(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

/// Expected<void>: success or an Error.
template <>
class [[nodiscard]] Expected<void> {
 public:
  Expected() = default;
  Expected(Error error) : e_(std::move(error)) {}  // NOLINT
  bool ok() const { return !e_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const& { return *e_; }
  Error&& error() && { return std::move(*e_); }

 private:
  std::optional<Error> e_;
};

using Status = Expected<void>;

}  // namespace continuum

/// Propagates an error: `auto v = TRY(f());` (GNU statement expression, GCC and Clang).
#define TRY(expr)                                                 \
  ({                                                              \
    auto&& try_result_ = (expr);                                  \
    if (!try_result_.ok()) return std::move(try_result_).error(); \
    std::move(try_result_).value();                               \
  })

/// Propagates an error from an Expected<void>/Status.
#define TRY_STATUS(expr)                                          \
  do {                                                            \
    auto&& try_status_ = (expr);                                  \
    if (!try_status_.ok()) return std::move(try_status_).error(); \
  } while (0)

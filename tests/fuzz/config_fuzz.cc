// libFuzzer target for the configuration loader (INI lines through inih, values, schema,
// cross-checks): any input must give a Config or an Error with exit code 2, never a crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "continuum/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto c = continuum::config::load_text(text, "fuzz.cfg");
  if (!c.ok() && c.error().exit_code != continuum::ExitCode::usage) std::abort();
  return 0;
}

#include <spdlog/spdlog.h>

#include "commands.h"

namespace continuum::cli {

int cmd_report(const Options&) {
  spdlog::error("'continuum report' is not implemented yet in this version");
  return 1;
}

}  // namespace continuum::cli

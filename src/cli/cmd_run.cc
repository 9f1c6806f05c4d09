#include <spdlog/spdlog.h>

#include "commands.h"

namespace continuum::cli {

int cmd_run(const Options&) {
  spdlog::error("'continuum run' is not implemented yet in this version");
  return 1;
}

}  // namespace continuum::cli

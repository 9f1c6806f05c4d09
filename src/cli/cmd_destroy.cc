#include <spdlog/spdlog.h>

#include "commands.h"

namespace continuum::cli {

int cmd_destroy(const Options&) {
  spdlog::error("'continuum destroy' is not implemented yet in this version");
  return 1;
}

}  // namespace continuum::cli

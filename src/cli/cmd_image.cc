#include <spdlog/spdlog.h>

#include "commands.h"

namespace continuum::cli {

int cmd_image(const Options&) {
  spdlog::error("'continuum image' is not implemented yet in this version");
  return 1;
}

}  // namespace continuum::cli

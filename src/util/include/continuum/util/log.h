#pragma once
// Logging through spdlog: the console at INFO (DEBUG with -v, WARN with --quiet) and, once a run
// directory exists, a full DEBUG log file `<run>/continuum.log`.
#include <spdlog/spdlog.h>

#include <filesystem>

namespace continuum::util {

enum class Verbosity { quiet, normal, verbose };

/// Console logger on stderr. Safe to call more than once.
void init_console_logging(Verbosity v);
/// Adds a DEBUG file sink; everything logged from now on also goes there.
void add_log_file(const std::filesystem::path& file);

}  // namespace continuum::util

#include "continuum/util/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace continuum::util {

void init_console_logging(Verbosity v) {
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  console->set_pattern("%^%l%$: %v");
  console->set_level(v == Verbosity::verbose ? spdlog::level::debug
                     : v == Verbosity::quiet ? spdlog::level::warn
                                             : spdlog::level::info);
  auto logger = std::make_shared<spdlog::logger>("continuum", console);
  logger->set_level(spdlog::level::debug);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

void add_log_file(const std::filesystem::path& file) {
  auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file.string(), false);
  sink->set_pattern("[%Y-%m-%dT%H:%M:%S.%e] [%l] %v");
  sink->set_level(spdlog::level::debug);
  spdlog::default_logger()->sinks().push_back(sink);
  spdlog::default_logger()->flush_on(spdlog::level::debug);
}

}  // namespace continuum::util

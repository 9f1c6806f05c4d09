#include "continuum/containers/registry.h"

#include <thread>

#include "continuum/util/files.h"
#include "continuum/util/strings.h"

namespace continuum::containers {
namespace fs = std::filesystem;

std::string registry_config(const RegistryOptions& o) {
  // YAML strings in double quotes: a path with a colon or a leading '*' stays a string.
  auto quoted = [](const std::string& s) {
    std::string q = "\"";
    for (char c : s) q += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
    return q + "\"";
  };
  return "version: 0.1\n"
         "log:\n"
         "  level: info\n"
         "  accesslog:\n"
         "    disabled: false\n"
         "storage:\n"
         "  filesystem:\n"
         "    rootdirectory: " +
         quoted(o.storage.string()) +
         "\n"
         "  delete:\n"
         "    enabled: true\n"
         "http:\n"
         "  addr: " +
         quoted(o.address + ":" + std::to_string(o.port)) + "\n";
}

Expected<std::unique_ptr<Registry>> Registry::start(const RegistryOptions& o) {
  std::error_code ec;
  fs::create_directories(o.dir, ec);
  if (ec) return make_error(o.dir.string() + ": " + ec.message());
  fs::create_directories(o.storage, ec);
  if (ec) return make_error(o.storage.string() + ": " + ec.message());
  const fs::path conf = o.dir / "registry.yml", log = o.dir / "registry.log";
  TRY_STATUS(util::write_file_atomic(conf, registry_config(o)));
  util::ProcessSpec spec;
  spec.argv = o.wrap;
  spec.argv.insert(spec.argv.end(), {"docker-registry", "serve", conf.string()});
  // The registry's own log position: only what this start writes counts for readiness.
  const auto offset = fs::exists(log, ec) ? fs::file_size(log, ec) : 0;
  auto process = TRY(util::Background::start(spec, log));
  const auto end = std::chrono::steady_clock::now() + o.ready_timeout;
  for (;;) {
    auto text = util::read_file(log);
    const std::string mine = text && text->size() > offset ? text->substr(offset) : "";
    if (mine.find("listening on") != std::string::npos)
      return std::unique_ptr<Registry>(new Registry(o, std::move(process), log));
    if (!process->running()) {
      auto lines = util::split(std::string(util::trim(mine)), '\n');
      std::string tail;
      for (size_t i = lines.size() > 3 ? lines.size() - 3 : 0; i < lines.size(); ++i)
        tail += "\n  " + lines[i];
      return make_error("the image registry (" + conf.string() + ") exited with status " +
                        std::to_string(process->exit_status().value_or(-1)) +
                        " before listening on " + o.address + ":" + std::to_string(o.port) + ":" +
                        tail);
    }
    if (std::chrono::steady_clock::now() > end) {
      process->stop();
      return make_error(
          "the image registry did not listen on " + o.address + ":" + std::to_string(o.port) +
          " within " + std::to_string(o.ready_timeout.count() / 1000) + " s; log: " + log.string());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::string Registry::endpoint() const { return opts_.address + ":" + std::to_string(opts_.port); }

}  // namespace continuum::containers

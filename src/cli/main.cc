// continuum: command-line entry. The subcommands are a table (name, help, handler), in the manner
// of ninja's tools and virsh's command groups; CLI11 parses the flags.
#include <CLI/CLI.hpp>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "commands.h"
#include "continuum/util/paths.h"
#include "continuum/version.h"

namespace continuum::cli {
namespace {

struct Subcommand {
  const char* name;
  const char* help;
  int (*handler)(const Options&);
};

constexpr Subcommand kSubcommands[] = {
    {"run", "Plan, deploy, install, benchmark and report (also: continuum CONFIG)", cmd_run},
    {"validate", "Parse and verify a configuration; exit 0, or 2 with FILE:LINE errors",
     cmd_validate},
    {"plan", "Show everything a run would create and do; touch nothing", cmd_plan},
    {"destroy", "Remove every resource a run created (from RUN_DIR/state.json)", cmd_destroy},
    {"image", "Build or list cached base images (offline, from Debian's mirror)", cmd_image},
    {"report", "Rebuild tables, energy and plots of a run from its saved data", cmd_report},
    {"compare", "Compare experiments: energy and power side by side, platforms that differ",
     cmd_compare},
};

bool is_subcommand(const std::string& s) {
  for (const auto& c : kSubcommands)
    if (s == c.name) return true;
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  // Upstream spelling `continuum [-v] CONFIG` means `continuum run CONFIG`: insert "run" before
  // the first word that is neither an option nor a subcommand.
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--output" || a == "-o") {
      ++i;
      continue;
    }
    if (!a.empty() && a[0] == '-') continue;
    if (!is_subcommand(a)) args.insert(args.begin() + static_cast<long>(i), "run");
    break;
  }

  Options o;
  CLI::App app{
      "continuum: emulate a cloud-edge-endpoint compute continuum with QEMU VMs, install "
      "software in it with Ansible, and benchmark it.\n"};
  app.name("continuum");
  app.require_subcommand(1);
  bool verbose = false, quiet = false;
  app.add_flag("-v,--verbose", verbose, "Debug output on the console")->configurable(false);
  app.add_flag("-q,--quiet", quiet, "Only warnings and errors on the console");
  app.add_option("-o,--output", o.output_dir, "Directory that holds run directories")
      ->capture_default_str();
  // Where the shipped files are found (docs/install.md), as `ansible --version` shows its paths.
  app.set_version_flag("--version", std::string("continuum ") + kVersion +
                                        "\ndata directory: " + util::data_dir().string() +
                                        "\nguest programs: " + util::app_dir().string());
  app.footer(
      "Exit codes: 0 success, 1 runtime failure, 2 invalid configuration or usage, 130 "
      "interrupted.\n"
      "Documentation: README.md, docs/configuration.md");

  std::vector<std::pair<CLI::App*, const Subcommand*>> subs;
  for (const auto& c : kSubcommands) {
    CLI::App* s = app.add_subcommand(c.name, c.help);
    s->fallthrough();
    std::string n = c.name;
    if (n == "run" || n == "validate" || n == "plan") {
      s->add_option("config", o.config, "Configuration file (.cfg)")->required();
    }
    if (n == "validate")
      s->add_flag(
          "--compat", o.compat,
          "Check only the original tool's rules (exit 0 if it accepts the file), not whether this "
          "build can run it");
    if (n == "plan")
      s->add_option("--format", o.format, "text or json")
          ->check(CLI::IsMember({"text", "json"}))
          ->capture_default_str();
    if (n == "destroy" || n == "report")
      s->add_option("run_dir", o.run_dir, "Run directory (runs/<timestamp>_<config>)")->required();
    if (n == "compare") {
      s->add_option("run_dirs", o.run_dirs, "Run directories to compare (two or more)")->required();
      s->add_option("-o,--output", o.compare_output,
                    "Directory for compare.md and plots/ (default: compare_<UTC time> next to "
                    "the first RUN_DIR)");
    }
    if (n == "image") {
      s->add_option("action", o.image_action, "build or list")
          ->required()
          ->check(CLI::IsMember({"build", "list"}));
      s->add_option("--variant", o.image_variant,
                    "Image recipe variant: default, cloudinit, docker (also builds the "
                    "application's container images, for resource_manager = mist), or energy "
                    "(Debian 13 with Scaphandre, for [energy] exporter = guest)")
          ->capture_default_str();
      s->add_flag("--force", o.force, "Rebuild even when a cached image matches the recipe");
      s->add_option(
          "--base-path", o.image_base_path,
          "Cache images in DIR/.continuum/images, as a config's base_path does (default $HOME)");
    }
    subs.emplace_back(s, &c);
  }

  try {
    std::vector<std::string> rev(args.rbegin(), args.rend());
    app.parse(rev);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    // CLI11 returns 0 for --help/--version and 105/106/... for usage errors: we say 2
    // (docs/design.md §1).
    return exit_status(rc == 0 ? ExitCode::ok : ExitCode::usage);
  }
  if (verbose && quiet) {
    std::cerr << "error: --verbose and --quiet exclude each other\n";
    return exit_status(ExitCode::usage);
  }
  o.verbosity = verbose ? util::Verbosity::verbose
                : quiet ? util::Verbosity::quiet
                        : util::Verbosity::normal;
  util::init_console_logging(o.verbosity);
  for (auto& [s, c] : subs)
    if (s->parsed()) return c->handler(o);
  return exit_status(ExitCode::usage);
}

}  // namespace continuum::cli

int main(int argc, char** argv) { return continuum::cli::main(argc, argv); }

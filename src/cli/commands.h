#pragma once
// Subcommands (docs/design.md §1). Each handler lives in its own cmd_<name>.cc and returns the
// process exit code: 0 success, 1 runtime failure, 2 invalid configuration or usage, 130
// interrupted.
#include <string>
#include <vector>

#include "continuum/util/expected.h"
#include "continuum/util/log.h"

namespace continuum::cli {

struct Options {
  util::Verbosity verbosity = util::Verbosity::normal;
  std::string output_dir = "runs";  ///< parent of run directories (--output)
  std::string config;               ///< CONFIG for run/validate/plan
  std::string run_dir;              ///< RUN_DIR for destroy/report
  std::string format = "text";      ///< plan --format text|json
  std::string image_action;         ///< image build|list
  std::string image_variant = "default";
  std::string
      image_base_path;  ///< image --base-path: cache in <dir>/.continuum/images ("" = $HOME)
  bool force = false;
  bool compat = false;  ///< validate --compat: the original's rules only, no preflight
  std::vector<std::string> run_dirs;  ///< compare: RUN_DIR...
  std::string compare_output;         ///< compare -o DIR ("" = next to the first RUN_DIR)
};

int cmd_run(const Options& o);
int cmd_validate(const Options& o);
int cmd_plan(const Options& o);
int cmd_destroy(const Options& o);
int cmd_image(const Options& o);
int cmd_report(const Options& o);
int cmd_compare(const Options& o);

}  // namespace continuum::cli

// Loader throughput on the original's 241 configurations (tests/data/upstream-configs): every
// file is read and validated ROUNDS times; prints microseconds per file and the total, beside
// the Python model of the original's parser (original_verdict.py, both its passes over the same
// files, interpreter start included) for scale.
//   build-*/bench/bench_config [ROUNDS]
#include "continuum/config/config.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "continuum/util/process.h"

using namespace continuum;
using clk = std::chrono::steady_clock;
namespace fs = std::filesystem;

int main(int argc, char** argv) {
  int rounds = argc > 1 ? std::atoi(argv[1]) : 20;
  fs::path corpus = fs::path(CONTINUUM_SOURCE_DIR) / "tests/data/upstream-configs";
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(corpus))
    if (e.path().extension() == ".cfg") files.push_back(e.path());
  size_t accepted = 0;
  auto t0 = clk::now();
  for (int r = 0; r < rounds; ++r)
    for (const auto& f : files) accepted += config::load(f).ok();
  double s = std::chrono::duration<double>(clk::now() - t0).count();
  double per = s * 1e6 / static_cast<double>(files.size() * static_cast<size_t>(rounds));
  std::printf(
      "continuum config::load: %zu files x %d rounds in %.3f s = %.1f us per file (%zu accepted "
      "per round)\n",
      files.size(), rounds, s, per, accepted / static_cast<size_t>(rounds));

  util::ProcessSpec spec;
  spec.argv = {"python3", (corpus / "original_verdict.py").string()};
  auto p0 = clk::now();
  auto res = util::run_process(spec);
  double ps = std::chrono::duration<double>(clk::now() - p0).count();
  if (res.ok() && res->exit_code == 0)
    std::printf(
        "python model of the original (2 passes, 1 round, incl. start-up): %.3f s = %.1f us per "
        "file and pass\n",
        ps, ps * 1e6 / static_cast<double>(2 * files.size()));
  else
    std::printf("python model of the original: not run (python3 missing or failed)\n");
  return 0;
}

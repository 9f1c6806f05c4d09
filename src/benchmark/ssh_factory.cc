// Kept apart from the rest of the module: it is the only place that needs the libssh Remote, so
// code (and tests) that pass their own RemoteFactory link without it.
#include "continuum/benchmark/benchmark.h"

namespace continuum::benchmark {

RemoteFactory ssh_remote_factory(const infra::Deployment& d) {
  return [&d](const infra::DeployedNode& n) { return d.connect(n, std::chrono::seconds(30)); };
}

Expected<BenchmarkResult> run(const config::Config& cfg, const plan::Plan& plan,
                              const infra::Deployment& d, const std::filesystem::path& run_dir,
                              record::EventLog* events, const std::atomic<bool>* interrupted) {
  Hooks hooks;
  hooks.connect = ssh_remote_factory(d);
  return run(cfg, plan, d, run_dir, events, interrupted, hooks);
}

}  // namespace continuum::benchmark

#pragma once
// What the software unit tests share: a configuration made in code, and its playbook runs as
// plan::make decides them (the plan is where the steps are chosen; software only runs them).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "continuum/plan/plan.h"
#include "continuum/software/software.h"

namespace continuum::software::fixture {

/// A configuration with the given tier sizes and resource manager, running image_classification
/// at 5 images/s (what config::load would give for such a file).
inline config::Config make_config(int cloud, int edge, int endpoint, const std::string& rm) {
  config::Config c;
  c.infrastructure.provider = config::Provider::qemu;
  c.infrastructure.cloud.nodes = cloud;
  c.infrastructure.edge.nodes = edge;
  c.infrastructure.endpoint.nodes = endpoint;
  config::Benchmark b;
  b.resource_manager = *config::resource_manager_named(rm);
  b.application = config::Application::image_classification;
  b.frequency = 5;
  c.benchmark = b;
  return c;
}

/// The playbook runs of a configuration, decided by plan::make as in a run.
inline std::vector<PlaybookRun> playbooks_of(const config::Config& c, const std::string& root) {
  plan::Environment env;
  env.user = "alice";
  env.local_cores = 64;
  auto p = plan::make(c, env);
  EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message);
  return p.ok() ? playbooks_for(*p, root) : std::vector<PlaybookRun>{};
}

}  // namespace continuum::software::fixture

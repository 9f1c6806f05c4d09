#pragma once
#include "continuum/config/config.h"
#include "continuum/plan/plan.h"

namespace continuum::cli {

/// Facts about this machine (user, physical cores) and the external hosts, for plan::make.
plan::Environment probe_environment(const config::Config& cfg);

}  // namespace continuum::cli

#pragma once
// The one way this code base fans work out over threads. Most of that work waits on a VM, a
// daemon or the network, so threads (not a pool shared across phases) are the right tool, and the
// caller bounds how many run at once.
#include <cstddef>
#include <functional>

#include "continuum/util/expected.h"

namespace continuum::util {

/// All at once: as many threads as indices.
inline constexpr size_t kAllAtOnce = 0;

/// Runs fn(0..n-1) on at most `workers` threads (kAllAtOnce: one per index) and waits for all.
/// Every index runs even if an earlier one fails, so callers know what exists afterwards; the
/// result is the first error by index, or ok.
Status for_each_parallel(size_t n, size_t workers, const std::function<Status(size_t)>& fn);

/// The same for work that stores its own result per index and cannot fail as a whole.
void parallel_for(size_t n, size_t workers, const std::function<void(size_t)>& fn);

}  // namespace continuum::util

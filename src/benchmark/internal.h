#pragma once
// Helpers shared by the benchmark sources (not part of the public header).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

namespace continuum::benchmark::internal {

/// Sleeps `d` in short slices, returning early once `interrupted` is set (Ctrl-C stays prompt).
inline void sleep_interruptible(std::chrono::milliseconds d, const std::atomic<bool>* interrupted) {
  const auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
    if (interrupted && interrupted->load()) return;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(100)));
  }
}

}  // namespace continuum::benchmark::internal

#include "continuum/util/parallel.h"

#include <algorithm>
#include <atomic>
#include <optional>
#include <thread>
#include <vector>

namespace continuum::util {

void parallel_for(size_t n, size_t workers, const std::function<void(size_t)>& fn) {
  if (n == 0) return;
  workers = workers == kAllAtOnce ? n : std::clamp<size_t>(workers, 1, n);
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < n; i = next++) fn(i);
  };
  if (workers == 1) {
    work();
    return;
  }
  std::vector<std::thread> threads;
  threads.reserve(workers);
  for (size_t w = 0; w < workers; ++w) threads.emplace_back(work);
  for (auto& t : threads) t.join();
}

Status for_each_parallel(size_t n, size_t workers, const std::function<Status(size_t)>& fn) {
  std::vector<std::optional<Error>> errors(n);
  parallel_for(n, workers, [&](size_t i) {
    Status s = fn(i);
    if (!s.ok()) errors[i] = s.error();
  });
  for (auto& e : errors)
    if (e) return *e;
  return {};
}

}  // namespace continuum::util

// util::for_each_parallel / parallel_for: every index runs, the first error by index is the result,
// and the worker bound holds (measured as the most bodies running at once).
#include "continuum/util/parallel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

using namespace continuum;

namespace {

/// Counts how many bodies run at once. Each body waits until `peers` bodies are inside (or a
/// deadline passes), so the peak reaches the real concurrency instead of depending on timing.
struct Overlap {
  Overlap(size_t peers, std::chrono::milliseconds patience) : peers(peers), patience(patience) {}
  void enter() {
    std::unique_lock lock(mu);
    ++inside;
    peak = std::max(peak, inside);
    cv.notify_all();
    cv.wait_for(lock, patience, [&] { return inside >= peers; });
    --inside;
  }
  size_t peers;
  std::chrono::milliseconds patience;
  std::mutex mu;
  std::condition_variable cv;
  size_t inside = 0, peak = 0;
};

}  // namespace

TEST(Parallel, RunsEveryIndexAndReportsTheFirstErrorByIndex) {
  std::vector<int> seen(50, 0);
  auto s = util::for_each_parallel(50, 4, [&](size_t i) -> Status {
    seen[i] = 1;
    if (i == 7 || i == 30) return make_error("fail " + std::to_string(i));
    return {};
  });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "fail 7");
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), 50);
}

TEST(Parallel, NoWorkIsOk) {
  EXPECT_TRUE(util::for_each_parallel(0, 4, [](size_t) -> Status { return make_error("x"); }).ok());
}

TEST(Parallel, AtMostTheGivenNumberOfWorkersRunAtOnce) {
  // More peers than the bound: with the bound kept, the bodies give up waiting after 0.2 s.
  Overlap o(3, std::chrono::milliseconds(200));
  util::parallel_for(6, 2, [&](size_t) { o.enter(); });
  EXPECT_EQ(o.peak, 2u);
}

TEST(Parallel, AllAtOnceRunsEveryIndexConcurrently) {
  Overlap o(5, std::chrono::seconds(10));
  util::parallel_for(5, util::kAllAtOnce, [&](size_t) { o.enter(); });
  EXPECT_EQ(o.peak, 5u);
}

TEST(Parallel, OneWorkerRunsInOrderOnTheCallersThread) {
  std::vector<size_t> order;
  util::parallel_for(4, 1, [&](size_t i) { order.push_back(i); });
  EXPECT_EQ(order, (std::vector<size_t>{0, 1, 2, 3}));
}

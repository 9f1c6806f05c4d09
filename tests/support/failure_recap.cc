// Linked into the integration and e2e test programs: when a test failed, its failure messages are
// printed again at the very end of the program's output. An e2e test prints minutes of a run's
// log around its assertions, and CI keeps only the head and the tail of a long output, so without
// this the reason of a failure is the part that gets cut.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

namespace {

class FailureRecap : public ::testing::EmptyTestEventListener {
  // The test's name is kept from OnTestStart: OnTestPartResult is called with GoogleTest's own
  // lock held, so asking UnitTest::current_test_info() there deadlocks.
  void OnTestStart(const ::testing::TestInfo& info) override {
    test_ = std::string(info.test_suite_name()) + "." + info.name();
  }
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (!r.failed()) return;
    failures_.push_back(test_ + " at " + (r.file_name() ? r.file_name() : "?") + ":" +
                        std::to_string(r.line_number()) + "\n" + r.message());
  }
  void OnTestProgramEnd(const ::testing::UnitTest&) override {
    if (failures_.empty()) return;
    std::printf("\n=== failure recap: %zu failed assertion(s) ===\n", failures_.size());
    for (const auto& f : failures_) std::printf("--- %s\n", f.c_str());
    std::fflush(stdout);
  }
  std::string test_;
  std::vector<std::string> failures_;
};

// Registered at static initialisation, before gtest_main's main() runs the tests; GoogleTest owns
// and deletes the listener.
const bool registered = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new FailureRecap);
  return true;
}();

}  // namespace

// Process-wide Ctrl-C flag (src/util/include/continuum/util/interrupt.h).
#include "continuum/util/interrupt.h"

#include <csignal>

namespace continuum::util {
namespace {

// Lock-free, so storing to it from a signal handler is safe.
std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void on_interrupt_signal(int) { g_interrupted.store(true); }

}  // namespace

void install_interrupt_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt_signal;
  sigemptyset(&sa.sa_mask);
  // No SA_RESTART: a blocking call returns EINTR, so a loop notices the flag at once.
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

void request_interrupt() { g_interrupted.store(true); }
void clear_interrupt() { g_interrupted.store(false); }
bool interrupt_requested() { return g_interrupted.load(); }
const std::atomic<bool>* interrupt_flag() { return &g_interrupted; }

Status check_interrupt() {
  if (g_interrupted.load()) return make_error("interrupted", ExitCode::interrupted);
  return {};
}

}  // namespace continuum::util

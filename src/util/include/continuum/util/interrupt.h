#pragma once
// Ctrl-C for the whole process. SIGINT and SIGTERM set one flag (a signal handler can safely do
// nothing more); every phase polls it between steps and in its waits, child processes started
// with ProcessSpec::cancel = interrupt_flag() are stopped when it becomes true, and so are SSH
// connects and commands whose SshTarget::cancel (or Remote::set_cancel) points at it. The CLI
// maps an interrupted phase to exit status 130.
#include <atomic>

#include "continuum/util/expected.h"

namespace continuum::util {

/// Installs the SIGINT and SIGTERM handlers that set the flag. Called once by the CLI.
void install_interrupt_handlers();
/// Sets the flag as a signal would (tests; code that must stop the run).
void request_interrupt();
/// Clears the flag (tests that raise it more than once).
void clear_interrupt();
/// True once SIGINT or SIGTERM arrived (or request_interrupt was called).
bool interrupt_requested();
/// The flag itself, for code that polls a std::atomic<bool> (ProcessSpec::cancel,
/// SshTarget::cancel, benchmark::run).
const std::atomic<bool>* interrupt_flag();
/// An Error "interrupted" with exit code 130 when the flag is set, success otherwise: the check
/// between two steps of a phase.
Status check_interrupt();

}  // namespace continuum::util

#pragma once
// SIGINT / SIGTERM during training: the handler only records the signal; the training loop
// checks stop_signal() between steps, writes a checkpoint and exits with 128 + signal
// (130 for Ctrl-C, 143 for SIGTERM), the shell convention for "stopped by a signal".
namespace longgan::app {

// Installs the handlers (idempotent). A second Ctrl-C while stopping ends the process at once
// (one within a second of the first is taken as the same request, forwarded by a launcher).
void install_stop_handlers();

// The signal that asked to stop, or 0.
int stop_signal();

}  // namespace longgan::app

#include "app/train/signals.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <ctime>

namespace longgan::app {
namespace {

std::atomic<int> g_stop_signal{0};
std::atomic<int64_t> g_first_signal_ns{0};

int64_t monotonic_ns() {  // async-signal-safe
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
}

extern "C" void on_stop_signal(int signal_number) {
  const int64_t now = monotonic_ns();
  int expected = 0;
  if (g_stop_signal.compare_exchange_strong(expected, signal_number)) {
    g_first_signal_ns.store(now);
    return;
  }
  // A second signal gives up at once, unless it comes within a second of the first: a launcher
  // (torchrun) forwards the terminal's Ctrl-C to ranks that already received it.
  if (now - g_first_signal_ns.load() > 1000000000) _exit(128 + signal_number);
}

}  // namespace

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

int stop_signal() { return g_stop_signal.load(); }

}  // namespace longgan::app

#include "app/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <ostream>
#include <sstream>
#include <utility>

namespace longgan::app {

bool stdout_is_terminal() { return ::isatty(STDOUT_FILENO) == 1; }

ProgressPrinter::ProgressPrinter(std::ostream& out, int64_t first_step, int64_t last_step, bool interactive,
                                 int64_t line_every)
    : out_(out), first_step_(first_step), last_step_(last_step), interactive_(interactive),
      line_every_(line_every < 1 ? 1 : line_every), start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

std::string ProgressPrinter::format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  auto total = static_cast<int64_t>(std::llround(seconds));
  char buffer[32];
  if (total >= 3600) {
    std::snprintf(buffer, sizeof(buffer), "%lldh%02lldm", static_cast<long long>(total / 3600),
                  static_cast<long long>(total % 3600 / 60));
  } else if (total >= 60) {
    std::snprintf(buffer, sizeof(buffer), "%lldm%02llds", static_cast<long long>(total / 60),
                  static_cast<long long>(total % 60));
  } else {
    std::snprintf(buffer, sizeof(buffer), "%llds", static_cast<long long>(total));
  }
  return buffer;
}

void ProgressPrinter::update(int64_t step, int64_t images, const std::map<std::string, double>& losses,
                             double training_seconds) {
  auto now = std::chrono::steady_clock::now();
  bool last = step >= last_step_;
  if (interactive_) {
    if (!last && now - last_draw_ < std::chrono::milliseconds(100)) return;
  } else if (!last && (step - first_step_) % line_every_ != 0) {
    return;
  }
  last_draw_ = now;
  double elapsed = std::chrono::duration<double>(now - start_).count();
  double done = static_cast<double>(step - first_step_);
  const double busy = training_seconds >= 0 ? training_seconds : elapsed;
  double per_second = busy > 0 ? static_cast<double>(images) / busy : 0.0;
  double eta = done > 0 ? elapsed / done * static_cast<double>(last_step_ - step) : NAN;

  std::ostringstream line;
  line << "step " << step << "/" << last_step_;
  if (interactive_) {
    constexpr int kWidth = 20;
    double fraction = last_step_ > first_step_ ? done / static_cast<double>(last_step_ - first_step_) : 1.0;
    int filled = static_cast<int>(fraction * kWidth);
    line << " [" << std::string(filled, '#') << std::string(kWidth - filled, '.') << "]";
  }
  char rate[32];
  std::snprintf(rate, sizeof(rate), "%.1f", per_second);
  line << "  " << rate << " img/s";
  for (const auto& [name, value] : losses) {
    char number[32];
    std::snprintf(number, sizeof(number), "%.4f", value);
    line << "  " << name << " " << number;
  }
  line << "  ETA " << (last ? "0s" : format_duration(eta));
  if (interactive_) {
    out_ << "\r" << line.str() << "\x1b[K" << std::flush;
    drawn_ = true;
  } else {
    out_ << line.str() << std::endl;
  }
}

CountProgress::CountProgress(std::string what, std::string unit)
    : what_(std::move(what)), unit_(std::move(unit)), interactive_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()), last_line_(start_) {}

void CountProgress::update(int64_t done, int64_t total) {
  const auto now = std::chrono::steady_clock::now();
  const bool last = done >= total;
  const double since_line = std::chrono::duration<double>(now - last_line_).count();
  if (!last && drawn_ && since_line < (interactive_ ? 0.2 : 10.0)) return;
  last_line_ = now;
  drawn_ = true;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
  char numbers[160];
  std::snprintf(numbers, sizeof(numbers), ": %lld/%lld %s (%lld%%), %.1f %s/s", static_cast<long long>(done),
                static_cast<long long>(total), unit_.c_str(),
                static_cast<long long>(100 * done / std::max<int64_t>(total, 1)), rate, unit_.c_str());
  std::string line = what_ + numbers;
  if (!last && rate > 0) line += ", ETA " + ProgressPrinter::format_duration(static_cast<double>(total - done) / rate);
  if (interactive_) {
    std::cerr << "\r" << line << "\x1b[K" << (last ? "\n" : "") << std::flush;
  } else {
    std::cerr << line << std::endl;
  }
}

void ProgressPrinter::finish() {
  if (interactive_ && drawn_) out_ << std::endl;
  drawn_ = false;
}

}  // namespace longgan::app

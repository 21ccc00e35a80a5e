#include "app/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <ostream>
#include <sstream>
#include <utility>

namespace longgan::app {

bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

ProgressReporter::ProgressReporter(std::ostream& out, std::string label, int64_t first, int64_t last, bool interactive,
                                   int64_t line_every, std::chrono::steady_clock::time_point started)
    : out_(out), label_(std::move(label)), first_(first), last_(last), interactive_(interactive),
      line_every_(std::max<int64_t>(line_every, 0)), start_(started), last_draw_(started) {}

ProgressReporter stderr_count_progress(const std::string& label, int64_t total,
                                       std::chrono::steady_clock::time_point started) {
  return ProgressReporter(std::cerr, label + ":", 0, total, stderr_is_terminal(), 0, started);
}

std::function<void(int64_t, int64_t)> stderr_progress(const std::string& label) {
  auto progress = std::make_shared<std::optional<ProgressReporter>>();  // shared by every copy
  const auto started = std::chrono::steady_clock::now();
  return [progress, label, started](int64_t done, int64_t total) {
    if (!*progress) progress->emplace(stderr_count_progress(label, total, started));
    (*progress)->update(done);
  };
}

std::string ProgressReporter::format_duration(double seconds) {
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

void ProgressReporter::update(int64_t done) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  update(done, elapsed > 0 ? static_cast<double>(done - first_) / elapsed : 0.0, "images/s");
}

void ProgressReporter::update(int64_t done, double rate, const std::string& rate_unit,
                              const std::map<std::string, double>& values) {
  const auto now = std::chrono::steady_clock::now();
  const bool last = done >= last_;
  bool due = last;
  if (!last && interactive_) due = !any_ || now - last_draw_ >= std::chrono::milliseconds(200);
  else if (!last && line_every_ > 0) due = (done - first_) % line_every_ == 0;
  else if (!last) due = !any_ || now - last_draw_ >= std::chrono::seconds(10);
  if (!due) return;
  last_draw_ = now;
  any_ = true;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double finished = static_cast<double>(done - first_);
  const double eta = finished > 0 ? elapsed / finished * static_cast<double>(last_ - done) : NAN;

  std::ostringstream line;
  line << label_ << " " << done << "/" << last_;
  const double span = static_cast<double>(last_ - first_);
  const double fraction = span > 0 ? std::clamp(finished / span, 0.0, 1.0) : 1.0;
  if (interactive_) {
    constexpr int kWidth = 20;
    const int filled = static_cast<int>(fraction * kWidth);
    line << " [" << std::string(filled, '#') << std::string(kWidth - filled, '.') << "]";
  }
  char number[48];
  std::snprintf(number, sizeof(number), " (%d%%)  %.1f ", static_cast<int>(100 * done / std::max<int64_t>(last_, 1)),
                rate);
  line << number << rate_unit;
  for (const auto& [name, value] : values) {
    std::snprintf(number, sizeof(number), "%.4f", value);
    line << "  " << name << " " << number;
  }
  line << "  ETA " << (last ? "0s" : format_duration(eta));
  if (interactive_) {
    out_ << "\r" << line.str() << "\x1b[K" << std::flush;
    drawn_ = true;
    if (last) finish();
  } else {
    out_ << line.str() << std::endl;
  }
}

void ProgressReporter::finish() {
  if (interactive_ && drawn_) out_ << std::endl;
  drawn_ = false;
}

}  // namespace longgan::app

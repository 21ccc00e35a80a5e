#pragma once
// Progress of long work, one reporter for every command (train's steps, prepare's images, the FID
// features of metrics and evaluations), with one throttle policy: on a terminal one line redrawn
// in place at most 5 times a second; otherwise a plain line every `line_every` units (train:
// --log-every steps) or, with line_every 0, every 10 seconds; always a line when the work is done.
// A line: "LABEL done/total [bar] (P%)  R UNIT/s  NAME VALUE ...  ETA T" (the bar on a terminal).
#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <string>

namespace longgan::app {

class ProgressReporter {
 public:
  // Work from `first` (exclusive: e.g. a resumed step) to `last` units, reported to `out`; rates
  // and ETA count from `started` (when the work began, if before the reporter is made).
  ProgressReporter(std::ostream& out, std::string label, int64_t first, int64_t last, bool interactive,
                   int64_t line_every, std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now());

  // `done` units are finished; `rate` per second of `rate_unit` ("img/s"); `values` follow it
  // (e.g. the losses, 4 decimals). The ETA is the wall time per unit so far times what is left.
  void update(int64_t done, double rate, const std::string& rate_unit, const std::map<std::string, double>& values = {});
  // The same with the rate of units over the wall time since the start ("images/s").
  void update(int64_t done);
  // Ends a bar's line (terminal) so that later messages start on a fresh line.
  void finish();

  // "1h02m", "3m05s", "12s".
  static std::string format_duration(double seconds);

 private:
  std::ostream& out_;
  std::string label_;
  int64_t first_, last_;
  bool interactive_;
  int64_t line_every_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool drawn_ = false, any_ = false;
};

// Progress of counted work on stderr ("LABEL: done/total images ..."), lines every 10 seconds
// when stderr is not a terminal.
ProgressReporter stderr_count_progress(const std::string& label, int64_t total,
                                       std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now());

// A progress(done, total) callback for work whose total is known at its first call (FID features,
// prepare's folder): stderr_count_progress made at that call, its clock started when the callback
// is made (the first call comes after the first batch, which would otherwise count as no time).
std::function<void(int64_t done, int64_t total)> stderr_progress(const std::string& label);

// Whether stderr is a terminal.
bool stderr_is_terminal();

}  // namespace longgan::app

#pragma once
// Training progress: a one-line bar redrawn in place on a terminal (step, images/s, losses,
// ETA), plain log lines when stdout is a file or a pipe.
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>

namespace longgan::app {

class ProgressPrinter {
 public:
  // Steps run from `first_step` (exclusive, e.g. a resumed step) to `last_step`; `interactive`
  // picks the bar, otherwise a line every `line_every` steps (and at the end).
  ProgressPrinter(std::ostream& out, int64_t first_step, int64_t last_step, bool interactive, int64_t line_every);

  // Reports that `step` finished after processing `images` images in total since the start, in
  // `training_seconds` of training (img/s excludes evaluations, as TensorBoard's; the ETA counts
  // everything); a negative value means the wall time since the start.
  void update(int64_t step, int64_t images, const std::map<std::string, double>& losses,
              double training_seconds = -1.0);
  // Ends the bar's line (terminal) so that later messages start on a fresh line.
  void finish();

  // "1h02m", "3m05s", "12s".
  static std::string format_duration(double seconds);

 private:
  std::ostream& out_;
  int64_t first_step_, last_step_;
  bool interactive_;
  int64_t line_every_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool drawn_ = false;
};

// Progress of counted work on stderr (`prepare`'s images, the FID features of `metrics` and
// evaluations): "WHAT: done/total UNIT (P%), R UNIT/s, ETA T". One throttle policy: redrawn in
// place at most 5 times a second on a terminal, otherwise a plain line every 10 seconds; always a
// last line when done reaches total.
class CountProgress {
 public:
  CountProgress(std::string what, std::string unit = "images");
  void update(int64_t done, int64_t total);

 private:
  std::string what_, unit_;
  bool interactive_;
  std::chrono::steady_clock::time_point start_, last_line_;
  bool drawn_ = false;
};

// Whether stdout is a terminal.
bool stdout_is_terminal();

}  // namespace longgan::app

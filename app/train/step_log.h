#pragma once
// Where a training step is reported: one line of metrics.jsonl, TensorBoard scalars (and grids),
// and the progress line (ProgressReporter, on stderr for rank 0, a silent stream on the others).
// Rank 0 writes the files.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "app/evaluation.h"
#include "app/progress.h"
#include "app/train/tensorboard.h"

namespace longgan::app {

class StepLog {
 public:
  // Reports steps after `first_step` up to `last_step` into `run_dir` (when `writes_files`);
  // `learning_rates` are logged with every step. A resumed run (`resumed`) first drops the lines
  // of metrics.jsonl after `first_step` and writes TensorBoard's restart marker, so the steps it
  // repeats appear once.
  StepLog(const std::filesystem::path& run_dir, bool writes_files, std::ostream& progress_out, int64_t first_step,
          int64_t last_step, int64_t log_every, std::map<std::string, double> learning_rates, bool resumed);

  // After a training step: the progress line (img/s over `training_seconds`, evaluations excluded).
  void progress(int64_t step, int64_t images, const std::map<std::string, double>& losses, double training_seconds);
  // Ends the progress bar's line before other output (an evaluation, an error).
  void interrupt();
  // The step's line of metrics.jsonl (losses, time, images/s, `recorded` such as the attention
  // weights, and the scores of an evaluation with their structure scores) and its TensorBoard
  // scalars (the same, with `extra`, e.g. spectral-norm sigmas, that the line leaves out);
  // returns the line, which the step's checkpoint manifest records.
  nlohmann::json write_step(int64_t step, const std::map<std::string, double>& losses, int64_t images,
                            double training_seconds, const std::map<std::string, double>& extra,
                            const std::map<std::string, double>& recorded, const std::optional<Scores>& scores,
                            const std::string& weights);
  // A sample grid image in TensorBoard (the PNG file itself is the caller's).
  void add_image(int64_t step, const std::string& tag, const std::string& png, int64_t height, int64_t width,
                 int64_t channels);

 private:
  bool writes_files_;
  std::map<std::string, double> learning_rates_;
  ProgressReporter progress_;
  std::ofstream metrics_;
  std::unique_ptr<EventWriter> events_;
};

// Rewrites metrics.jsonl without the lines of steps after `step` (left by a run that went on
// past its last checkpoint), so that a resumed run's log has each step once.
void truncate_metrics(const std::filesystem::path& file, int64_t step);

}  // namespace longgan::app

#include "app/train/step_log.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "checkpoints/atomic_file.h"

namespace longgan::app {

void truncate_metrics(const std::filesystem::path& file, int64_t step) {
  if (!std::filesystem::exists(file)) return;
  std::ifstream in(file);
  std::string line, kept;
  while (std::getline(in, line)) {
    try {
      if (nlohmann::json::parse(line).value("step", int64_t{0}) <= step) kept += line + "\n";
    } catch (const nlohmann::json::exception&) {
      // A torn last line from a killed process: drop it.
    }
  }
  checkpoints::write_file_atomic(file, kept);
}

StepLog::StepLog(const std::filesystem::path& run_dir, bool writes_files, std::ostream& progress_out, int64_t first_step,
                 int64_t last_step, int64_t log_every, std::map<std::string, double> learning_rates, bool resumed)
    : writes_files_(writes_files),
      learning_rates_(std::move(learning_rates)),
      progress_(progress_out, "step", first_step, last_step, stderr_is_terminal(), std::max<int64_t>(log_every, 1)) {
  if (!writes_files_) return;
  truncate_metrics(run_dir / "metrics.jsonl", first_step);
  metrics_.open(run_dir / "metrics.jsonl", std::ios::app);
  events_ = std::make_unique<EventWriter>(run_dir / "tensorboard");
  // Steps after the checkpoint that an earlier process logged are run again: theirs are dropped.
  if (resumed) events_->add_session_start(first_step + 1);
}

void StepLog::progress(int64_t step, int64_t images, const std::map<std::string, double>& losses,
                       double training_seconds) {
  // img/s over training time only (evaluations excluded, as TensorBoard's); the ETA counts everything.
  progress_.update(step, training_seconds > 0 ? static_cast<double>(images) / training_seconds : 0.0, "img/s", losses);
}

void StepLog::interrupt() { progress_.finish(); }

nlohmann::json StepLog::write_step(int64_t step, const std::map<std::string, double>& losses, int64_t images,
                                   double training_seconds, const std::map<std::string, double>& extra,
                                   const std::map<std::string, double>& recorded,
                                   const std::optional<Scores>& scores, const std::string& weights) {
  nlohmann::json line = {{"step", step}};
  std::map<std::string, double> scalars = learning_rates_;
  for (const auto& [name, value] : losses) {
    line[name] = value;
    scalars["loss/" + name] = value;
  }
  // When and how fast (training time only, as the progress line's; evaluations excluded).
  const double per_second = training_seconds > 0 ? static_cast<double>(images) / training_seconds : 0.0;
  scalars["images_per_second"] = per_second;
  line["time"] = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  line["images_per_second"] = per_second;
  for (const auto& [name, value] : extra) scalars[name] = value;
  for (const auto& [name, value] : recorded) {
    line[name] = value;
    scalars[name] = value;
  }
  if (scores) {
    for (const char* key : {"fid", "kid_mean", "kid_std"}) line[key] = scores->to_json()[key];
    line["weights"] = weights;
    scalars["eval/fid"] = scores->fid;
    scalars["eval/kid_mean"] = scores->kid.mean;
    if (scores->structure) {
      for (const auto& [name, value] : structure_scalars(*scores->structure)) {
        line[name] = value;
        scalars["eval/" + name] = value;
      }
    }
  }
  if (writes_files_) {
    metrics_ << line.dump() << "\n" << std::flush;
    events_->add_scalars(step, scalars);
  }
  return line;
}

void StepLog::add_image(int64_t step, const std::string& tag, const std::string& png, int64_t height, int64_t width,
                        int64_t channels) {
  if (writes_files_) events_->add_image(step, tag, png, height, width, channels);
}

}  // namespace longgan::app

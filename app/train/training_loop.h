#pragma once
// The loop of `longgan train`: training steps until run.steps or a stop signal, each followed by
// the cross-rank agreement (distributed), the step's log (StepLog), and the sample grids,
// evaluation and checkpoint that are due. run_train validates and opens everything it uses first.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "app/train/step_log.h"
#include "app/train/train_evaluator.h"
#include "app/train/train_session.h"
#include "checkpoints/checkpoint.h"
#include "gan/distributed/process_group.h"
#include "gan/sampling_statistics.h"

namespace longgan::app {

// The run's checkpoints: written by rank 0 (the other ranks pass no writer and write nothing),
// each with the manifest of the run (config, attention, data fingerprint, the step's metrics);
// remembers the last good one for error messages and the final summary.
class RunCheckpoints {
 public:
  RunCheckpoints(std::unique_ptr<checkpoints::CheckpointWriter> writer, const nlohmann::json& config,
                 TrainSession& session, std::optional<std::filesystem::path> resumed_from,
                 std::filesystem::path run_dir);

  nlohmann::json manifest(const nlohmann::json& metrics) const;
  // Checkpoints `step`; a non-finite state is refused (not written) with the error of
  // non_finite_state().
  void save(int64_t step, const nlohmann::json& metrics);
  // "RUN/step-NNNNNN" of the last checkpoint written or resumed from, or "none".
  std::string last_good() const;
  // The error that stops a run whose state at `step` is not finite.
  std::runtime_error non_finite_state(int64_t step, const checkpoints::NonFiniteStateError& e) const;
  // What to do after a divergence, with a command that works as written: resume from the last
  // good checkpoint with another seed (a results-changing setting: --allow-config-change).
  std::string divergence_advice() const;

 private:
  std::unique_ptr<checkpoints::CheckpointWriter> writer_;
  const nlohmann::json& config_;
  TrainSession& session_;
  std::optional<std::filesystem::path> last_good_;
  std::filesystem::path run_dir_;
};

// What the loop does at which step (run section, checked by run_train).
struct LoopSchedule {
  int64_t last_step = 0;
  int64_t sample_every = 0;
  int64_t checkpoint_every = 0;
  int64_t log_every = 0;
  int64_t samples = 0;           // images per sample grid
  int64_t dist_check_every = 0;  // distributed: replicas compared every this many steps (0: never)
  gan::Weights eval_weights = gan::Weights::GEma;
  std::vector<gan::Weights> grid_weights;
};

// Where the loop reports and writes. `group` and `evaluator` may be null (one process; no
// --eval-every or not rank 0); `device` is the one the group's all-reduces use.
struct LoopOutputs {
  std::filesystem::path run_dir;
  bool main_rank = true;
  StepLog& log;
  TrainEvaluator* evaluator = nullptr;
  RunCheckpoints& checkpoints;
};

struct LoopEnd {
  int64_t step = 0;
  int stop_signal = 0;  // 0: reached the last step
};

// Trains from `first_step` (`resumed`: that step is already checkpointed). A stop signal (on any
// rank) ends the loop after the step under way, checkpointed; a non-finite loss throws naming the
// last good checkpoint, with nothing checkpointed for the bad step.
LoopEnd run_training_loop(TrainSession& session, gan::ProcessGroup* group, const torch::Device& device,
                          const LoopSchedule& schedule, int64_t first_step, bool resumed, const LoopOutputs& outputs);

}  // namespace longgan::app

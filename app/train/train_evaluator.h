#pragma once
// Evaluation during `longgan train` (run.eval_every > 0): FID and KID of G_ema's (or G's) samples against
// the training data, and the `best` checkpoint (by FID) in RUN/best/, a run directory of its own
// holding one checkpoint (sample, metrics and info take it as --checkpoint RUN/best).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>

#include "app/evaluation.h"
#include "app/train/train_session.h"
#include "checkpoints/checkpoint.h"

namespace longgan::app {

class TrainEvaluator {
 public:
  // With run.eval_every > 0: opens the network (run.inception, or the default one) and the
  // features of run.data (cached beside it), and takes the best FID so far from RUN/best when it
  // was measured the same way (same data, network and run.eval_n). Does nothing otherwise.
  TrainEvaluator(const nlohmann::json& run, const std::filesystem::path& run_dir, TrainSession& session,
                 gan::Weights weights = gan::Weights::GEma);
  ~TrainEvaluator();

  bool due(int64_t step) const { return every_ > 0 && step % every_ == 0; }
  // Scores of run.eval_n samples of the weights (the same latents every time) against the data,
  // with their long-range structure scores (the data's synthetic rules, or the mirror statistic);
  // prints them as the scores of `step`.
  Scores evaluate(int64_t step);
  // When `scores` beat the best FID so far, writes the checkpoint (manifest + files, with an
  // "eval" record added to the manifest) to RUN/best and returns true.
  bool keep_if_best(int64_t step, const Scores& scores, nlohmann::json manifest,
                    const std::map<std::string, checkpoints::TensorMap>& files);
  std::optional<double> best_fid() const { return best_fid_; }

 private:
  nlohmann::json identity() const;  // what makes two FIDs comparable

  int64_t every_ = 0, n_ = 0;
  std::filesystem::path best_dir_;
  TrainSession& session_;
  gan::Weights weights_;
  std::unique_ptr<gan::InceptionNetwork> network_;
  at::Tensor real_features_;
  gan::FeatureStats real_stats_;
  datasets::StructureRules rules_;
  nlohmann::json data_;
  std::optional<double> best_fid_;
};

}  // namespace longgan::app

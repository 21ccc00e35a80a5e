#include "app/train/train_evaluator.h"

#include <iostream>
#include <sstream>

#include "app/session_config.h"
#include "datasets/packed_format.h"

namespace longgan::app {
namespace fs = std::filesystem;

TrainEvaluator::TrainEvaluator(const nlohmann::json& run, const fs::path& run_dir, TrainSession& session,
                               gan::Weights weights)
    : every_(run["eval_every"].get<int64_t>()), n_(run["eval_n"].get<int64_t>()), best_dir_(run_dir / "best"),
      session_(session), weights_(weights) {
  if (every_ == 0) return;
  network_ = open_inception(run["inception"].get<std::string>(), parse_device(run["device"].get<std::string>()));
  const fs::path data = run["data"].get<std::string>();
  auto features = gan::packed_dataset_features(data, *network_, stderr_progress("FID reference (training data)"));
  if (!features.cache_note.empty()) std::cerr << features.cache_note << std::endl;
  real_features_ = features.features;
  real_stats_ = features.stats;
  rules_ = datasets::structure_rules(datasets::PackedReader(data).header());
  data_ = session.data_fingerprint();

  auto best = checkpoints::latest_checkpoint(best_dir_);
  if (!best) return;
  const auto record = checkpoints::read_manifest(*best).value("eval", nlohmann::json::object());
  if (record.value("identity", nlohmann::json()) == identity() && record.contains("fid")) {
    best_fid_ = record["fid"].get<double>();
    std::cout << "best FID so far: " << *best_fid_ << " at step " << record.value("step", int64_t{0}) << " ("
              << best->string() << ")" << std::endl;
  } else {
    std::cout << "note: " << best->string() << " was measured another way (data, network, eval_n, weights or sampling statistics differ); "
              << "the next evaluation replaces it" << std::endl;
  }
}

TrainEvaluator::~TrainEvaluator() = default;

nlohmann::json TrainEvaluator::identity() const {
  std::ostringstream network;
  network << std::hex << network_->fingerprint();
  nlohmann::json identity{{"n", n_},
                          {"data", data_.value("fingerprint", std::string())},
                          {"inception", network.str()},
                          {"sampling", session_.sampling_json()}};
  // G_ema's identity is as before the weights could be chosen, so that earlier best/ scores still count.
  if (weights_ != gan::Weights::GEma) identity["weights"] = gan::to_string(weights_);
  return identity;
}

Scores TrainEvaluator::evaluate(int64_t step) {
  const at::Tensor latents = session_.evaluation_latents(n_);
  datasets::StructureScorer scorer(rules_);
  const at::Tensor fake = generated_features(
      *network_, latents,
      [&](const at::Tensor& z, int64_t first) { return session_.evaluation_samples(z, first, weights_); },
      stderr_progress("FID samples"), &scorer);
  Scores scores = score(real_stats_, real_features_, fake);
  scores.structure = scorer.scores();
  std::cout << "step " << step << ": FID " << (weights_ == gan::Weights::G ? "(G) " : "") << scores.fid << ", KID " << scores.kid.mean << " +- " << scores.kid.std
            << " (" << scores.n_fake << " samples against " << scores.n_real << " images), mirror error "
            << scores.structure->mirror_error;
  if (scores.structure->synthetic) std::cout << ", corner error " << scores.structure->corner_error;
  std::cout << std::endl;
  return scores;
}

bool TrainEvaluator::keep_if_best(int64_t step, const Scores& scores, nlohmann::json manifest,
                                  const std::map<std::string, checkpoints::TensorMap>& files) {
  if (best_fid_ && scores.fid >= *best_fid_) return false;
  manifest["eval"] = scores.to_json();
  manifest["eval"]["step"] = step;
  manifest["eval"]["identity"] = identity();
  checkpoints::CheckpointWriter(best_dir_, checkpoints::RetentionPolicy{.keep_last = 1}).write(step, manifest, files);
  best_fid_ = scores.fid;
  return true;
}

}  // namespace longgan::app

#include "app/train/training_loop.h"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <map>
#include <sstream>

#include "app/checkpoint_io.h"
#include "app/image_grid.h"
#include "app/train/signals.h"
#include "checkpoints/atomic_file.h"

namespace longgan::app {
namespace fs = std::filesystem;
namespace {

bool all_finite(const std::map<std::string, double>& losses) {
  for (const auto& [name, value] : losses) {
    if (!std::isfinite(value)) return false;
  }
  return true;
}

std::string describe(const std::map<std::string, double>& losses) {
  std::ostringstream text;
  for (const auto& [name, value] : losses) text << (text.tellp() > 0 ? ", " : "") << name << " = " << value;
  return text.str();
}

// Test hook: env LONGGAN_TEST_INF_IN_STATE_AT_STEP=N puts inf into Adam's state from step N on,
// as a huge learning rate does, to exercise the non-finite state check.
void inject_inf_for_tests(checkpoints::TensorMap& state, int64_t step) {
  const char* at_step = std::getenv("LONGGAN_TEST_INF_IN_STATE_AT_STEP");
  if (at_step == nullptr || *at_step == '\0' || step < std::atoll(at_step)) return;
  for (auto& [name, tensor] : state) {
    if (name.find("exp_avg_sq") != std::string::npos && tensor.is_floating_point()) {
      tensor = tensor.clone();
      tensor.view(-1)[0] = std::numeric_limits<float>::infinity();
      return;
    }
  }
}

// After each step of a distributed run, the ranks agree on stopping (the largest signal any rank
// received) and on non-finite losses, and the losses become their means over ranks (those of the
// global batch). Returns whether another rank's losses were non-finite.
bool agree_across_ranks(gan::ProcessGroup& group, const torch::Device& device, int& stop, bool finite,
                        std::map<std::string, double>& losses) {
  at::Tensor flags = at::tensor({static_cast<double>(stop), finite ? 0.0 : 1.0}, at::kDouble).to(device);
  group.all_reduce_max(flags);
  flags = flags.cpu();
  stop = static_cast<int>(flags[0].item<double>());
  if (flags[1].item<double>() > 0 && finite) return true;
  std::vector<double> values;
  for (const auto& [name, value] : losses) values.push_back(value);
  std::vector<at::Tensor> sums{at::tensor(values, at::kDouble).to(device)};
  group.all_reduce_sum(sums);
  const at::Tensor means = sums[0].cpu() / group.size();
  int64_t i = 0;
  for (auto& [name, value] : losses) value = means[i++].item<double>();
  return false;
}

// samples/step-NNNNNN.png (G_ema) and step-NNNNNN-g.png (G), on the run's fixed latents, also
// into TensorBoard.
void write_sample_grids(TrainSession& session, const LoopSchedule& schedule, int64_t step, const LoopOutputs& outputs) {
  for (const gan::Weights weights : schedule.grid_weights) {
    const bool g = weights == gan::Weights::G;
    const at::Tensor grid = make_grid(session.fixed_samples(schedule.samples, weights));
    const std::string png = encode_png(grid);
    checkpoints::write_file_atomic(
        outputs.run_dir / "samples" / (checkpoints::step_dir_name(step) + (g ? "-g" : "") + ".png"), png);
    outputs.log.add_image(step, g ? "samples_g" : "samples", png, grid.size(0), grid.size(1), grid.size(2));
  }
}

}  // namespace

RunCheckpoints::RunCheckpoints(std::unique_ptr<checkpoints::CheckpointWriter> writer, const nlohmann::json& config,
                               TrainSession& session, std::optional<fs::path> resumed_from, fs::path run_dir)
    : writer_(std::move(writer)),
      config_(config),
      session_(session),
      last_good_(std::move(resumed_from)),
      run_dir_(std::move(run_dir)) {}

nlohmann::json RunCheckpoints::manifest(const nlohmann::json& metrics) const {
  return nlohmann::json{{"config", config_},
                        {"model", config_["model"]},
                        {"attention", session_.attention_json()},
                        {"train", config_["train"]},
                        {"data", session_.data_fingerprint()},
                        {"metrics", metrics}};
}

void RunCheckpoints::save(int64_t step, const nlohmann::json& metrics) {
  if (!writer_) return;
  auto state = session_.state();
  inject_inf_for_tests(state, step);
  try {
    last_good_ = writer_->write(step, manifest(metrics), split_state(state));
  } catch (const checkpoints::NonFiniteStateError& e) {
    throw non_finite_state(step, e);
  }
}

std::string RunCheckpoints::last_good() const { return last_good_ ? last_good_->string() : std::string("none"); }

std::runtime_error RunCheckpoints::non_finite_state(int64_t step, const checkpoints::NonFiniteStateError& e) const {
  return std::runtime_error("non-finite training state at step " + std::to_string(step) + ": " + e.what() +
                            "; it was not checkpointed. Last good checkpoint: " + last_good() +
                            ". " + divergence_advice());
}

std::string RunCheckpoints::divergence_advice() const {
  const uint64_t seed = config_.at("run").at("seed").get<uint64_t>();
  return "Resume from that checkpoint with another seed: `longgan train --out " + run_dir_.string() +
         " --resume --seed " + std::to_string(seed + 1) +
         " --allow-config-change` (or lower the learning rates, --lr-g/--lr-d, the same way).";
}

LoopEnd run_training_loop(TrainSession& session, gan::ProcessGroup* group, const torch::Device& device,
                          const LoopSchedule& schedule, int64_t first_step, bool resumed, const LoopOutputs& outputs) {
  StepLog& log = outputs.log;
  install_stop_handlers();
  nlohmann::json metrics = nlohmann::json::object();
  int64_t step = first_step;
  int64_t images = 0;
  double training_seconds = 0;  // excludes evaluations, for images/s
  bool saved = resumed;
  // The signal that stops the run: this process's, or in a distributed run the largest one any
  // rank received (agreed after each step).
  int stop = stop_signal();
  while (step < schedule.last_step && stop == 0) {
    const auto step_start = std::chrono::steady_clock::now();
    auto losses = session.train_step();
    ++step;
    images += session.images_per_step();
    const bool finite = all_finite(losses);
    stop = stop_signal();
    if (group && agree_across_ranks(*group, device, stop, finite, losses)) {
      log.interrupt();
      throw std::runtime_error("non-finite loss on another rank at step " + std::to_string(step) +
                               "; nothing was checkpointed for it. Last good checkpoint: " +
                               outputs.checkpoints.last_good());
    }
    if (schedule.dist_check_every > 0 && step % schedule.dist_check_every == 0) session.check_replicas();
    if (!finite) {
      log.interrupt();
      throw std::runtime_error("non-finite loss at step " + std::to_string(step) + " (" + describe(losses) +
                               "); nothing was checkpointed for it. Last good checkpoint: " +
                               outputs.checkpoints.last_good() + ". " + outputs.checkpoints.divergence_advice());
    }
    training_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
    log.progress(step, images, losses, training_seconds);

    std::map<std::string, double> sigmas, attention_weights;
    if (outputs.main_rank && schedule.log_every > 0 && step % schedule.log_every == 0) {
      sigmas = session.spectral_sigmas();
      attention_weights = session.attention_weights();
    }
    std::optional<Scores> scores;
    if (outputs.evaluator && outputs.evaluator->due(step)) {
      log.interrupt();
      scores = outputs.evaluator->evaluate(step);
    }
    metrics = log.write_step(step, losses, images, training_seconds, sigmas, attention_weights, scores,
                             gan::to_string(schedule.eval_weights));
    if (outputs.main_rank && schedule.sample_every > 0 && step % schedule.sample_every == 0) {
      write_sample_grids(session, schedule, step, outputs);
    }
    try {
      if (scores && outputs.evaluator->keep_if_best(step, *scores, outputs.checkpoints.manifest(metrics),
                                                     split_state(session.state()))) {
        std::cout << "new best FID " << scores->fid << ": " << (outputs.run_dir / "best").string() << std::endl;
      }
    } catch (const checkpoints::NonFiniteStateError& e) {
      throw outputs.checkpoints.non_finite_state(step, e);
    }
    saved = false;
    if ((schedule.checkpoint_every > 0 && step % schedule.checkpoint_every == 0) || step == schedule.last_step) {
      outputs.checkpoints.save(step, metrics);
      saved = true;
    }
  }
  log.interrupt();
  if (stop != 0 && !saved) outputs.checkpoints.save(step, metrics);
  return {step, stop};
}

}  // namespace longgan::app

#pragma once
// A checkpoint's generator for `sample` and `metrics`: G_ema (or G) with the attention type and
// batch norm statistics the run recorded, swappable to another attention type, and the latents
// of a run (the same for a seed in every command).
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "attention/attention.h"
#include "checkpoints/checkpoint.h"
#include "gan/generator.h"
#include "gan/model_config.h"
#include "gan/sampling_statistics.h"

namespace longgan::app {

// Latents [n, Z] (normal truncated to |z| <= truncation; <= 0: untruncated) drawn from a generator
// of their own seeded with `seed`, and labels i % n_classes.
std::pair<at::Tensor, at::Tensor> seeded_latents(const gan::ModelConfig& model, int64_t n, uint64_t seed,
                                                 double truncation);

// The model.n_classes of a checkpoint's config (1: unconditional), without building its networks.
int64_t checkpoint_classes(const checkpoints::Checkpoint& checkpoint);

// G_ema of a checkpoint (or G, with "weights": "g" in `sampling_override`) with the checkpoint's
// attention type (set_attention swaps it), for sampling, with the batch norm statistics the run
// recorded (run.sampling_stats / run.standing_stats of its config; standing passes of its training
// batch), keys of `sampling_override` replacing them.
class CheckpointGenerator {
 public:
  CheckpointGenerator(const checkpoints::Checkpoint& checkpoint, const std::string& device,
                      const nlohmann::json& sampling_override = nlohmann::json::object());
  ~CheckpointGenerator();

  // Truncated-normal latents (|z| <= truncation; truncation <= 0: plain normal) from `seed`.
  at::Tensor sample_z(int64_t n, uint64_t seed, double truncation) const;
  // [n, 3, H, W] in [-1, 1], on the CPU; image i is of class i % n_classes().
  at::Tensor generate(const at::Tensor& z);
  // The same for the classes `labels` [n] (int64 in [0, n_classes()); std::invalid_argument otherwise).
  at::Tensor generate(const at::Tensor& z, const at::Tensor& labels);
  // The checkpoint's model.n_classes (1: unconditional).
  int64_t n_classes() const;
  // std::invalid_argument when `spec` does not fit the model (e.g. a cluster larger than a
  // block's tokens).
  void check_attention(const attention::AttentionSpec& spec) const;
  // Switches every attention block to `spec` (checked first: no change when it does not fit).
  void set_attention(const attention::AttentionSpec& spec);
  const attention::AttentionSpec& attention() const;
  // The network that renders (diagnostics observe its attention blocks).
  gan::Generator& network();
  const gan::SamplingOptions& sampling() const;
  gan::Weights weights() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace longgan::app

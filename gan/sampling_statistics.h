#pragma once
// Which weights render (G_ema or G) and with which batch norm statistics (BigGAN-PyTorch's and
// StudioGAN's choices), and the sampling copy that applies them without touching the trained network.
//
//   running   G_ema's running statistics (averaged with its weights, gan/ema.h); cheap, and an
//             image does not depend on the others of its batch.
//   batch     every batch norm normalises with the statistics of the batch being sampled (BigGAN's
//             default at sampling time); an image depends on its batch.
//   standing  the statistics re-estimated for the sampling weights: reset, then the plain average
//             over `standing_passes` forward passes of `standing_batch` untruncated latents with
//             uniform labels (BigGAN's --use_standing_stats), then as `running`.
#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "gan/generator.h"
#include "gan/model_config.h"

namespace longgan::gan {

// g_ema: the moving average of G's weights (gan/ema.h), the usual choice; g: the weights being
// trained (what G_ema lags behind).
enum class Weights { GEma, G };

// "g_ema" or "g"; std::invalid_argument naming the valid ones otherwise.
Weights parse_weights(const std::string& name);
std::string to_string(Weights weights);

enum class SamplingStats { Running, Batch, Standing };

// "running", "batch" or "standing"; std::invalid_argument naming the valid ones otherwise.
SamplingStats parse_sampling_stats(const std::string& name);
std::string to_string(SamplingStats stats);

struct SamplingOptions {
  SamplingStats stats = SamplingStats::Running;  // docs/TRAINING.md: measured best on the demo run
  int64_t standing_passes = 16;
  int64_t standing_batch = 32;
  // std::invalid_argument naming the field.
  void validate() const;
};

// Puts `g` into the sampling mode of `options` (eval mode for everything but batch norm). Batch
// and Standing overwrite the batch norm buffers of `g`: call it on a copy. Standing draws its
// latents and labels from a generator seeded with `seed` and its attention hashes from another
// one derived from it (the same weights get the same statistics, and every attention type the
// same latents), and leaves g's attention generator unset.
void prepare_sampling_statistics(Generator& g, const SamplingOptions& options, uint64_t seed);

// A copy of G_ema (or G) for rendering: load() takes the source's weights and buffers and prepares
// the statistics; generate() renders without changing the source or any random stream of the caller.
class EmaSampler {
 public:
  EmaSampler(const ModelConfig& model, torch::Device device);

  void load(const Generator& source, const SamplingOptions& options, uint64_t seed);
  // Images [B, 3, R, R] (CPU, float) for z [B, Z] and labels [B], hashes of hashing attention
  // types drawn from `hashes`.
  at::Tensor generate(const at::Tensor& z, const at::Tensor& labels, at::Generator hashes);
  void set_attention(const attention::AttentionSpec& spec);
  Generator& network() { return g_; }

 private:
  ModelConfig model_;
  torch::Device device_;
  Generator g_{nullptr};
};

}  // namespace longgan::gan

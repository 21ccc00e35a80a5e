#pragma once
// BigGAN training (DESIGN.md §4): hinge loss, d_steps D updates per G update, orthogonal
// regularization of G, EMA of G, bf16 autocast on CUDA. Everything random (latents, fake labels,
// hashes of hashing attention types) comes from one CPU generator owned by the trainer, and
// state() holds everything for a bit-exact resume.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "gan/adam.h"
#include "gan/diff_augment.h"
#include "gan/discriminator.h"
#include "gan/generator.h"
#include "gan/model_config.h"
#include "gan/sampling_statistics.h"

namespace longgan::gan {

// The sections of a training step (attention::SectionTimer), in the order a step runs them, for
// profiles of the step (longgan bench step). Spectral norms are a section inside the passes.
inline constexpr const char* kSectionData = "D step: real batch";
inline constexpr const char* kSectionDStepGForward = "D step: G forward (fakes, no grad)";
inline constexpr const char* kSectionDStepDForward = "D step: D forward (fake + real)";
inline constexpr const char* kSectionDStepBackward = "D step: loss and backward";
inline constexpr const char* kSectionDStepOptimizer = "D step: optimizer";
inline constexpr const char* kSectionGStepGForward = "G step: G forward";
inline constexpr const char* kSectionGStepDForward = "G step: D forward";
inline constexpr const char* kSectionGStepBackward = "G step: loss and backward";
inline constexpr const char* kSectionGStepOptimizer = "G step: ortho and optimizer";
inline constexpr const char* kSectionEma = "G_ema update";
// The top-level sections above in step order (they do not overlap; gan/spectral_norm.h's
// kSectionSpectralNorm and the attention phases are inside them).
const std::vector<std::string>& step_section_names();

struct TrainConfig {
  int64_t batch = 16;        // batch of the G update
  double lr_g = 1e-4;
  double lr_d = 4e-4;
  double beta1 = 0.0;
  double beta2 = 0.999;
  double eps = 1e-6;
  int64_t d_steps = 2;
  int64_t accumulate = 1;    // micro-batches per D step and per G step, gradients averaged
  double ortho = 1e-4;       // orthogonal regularization strength (0: off)
  // G_ema (gan/ema.h), one of two forms:
  //   "half_life" (default, stylegan2-ada's): a half-life of ema_kimg thousand images, ramped up
  //               to min(ema_kimg * 1000, ema_rampup * images seen); images are the global batch
  //               of each G step (batch * accumulate * ranks). ema_rampup 0: no ramp-up.
  //   "decay"     (BigGAN's): decay ema_decay per step from step ema_start; G_ema copies G before.
  std::string ema = "half_life";
  double ema_kimg = 500;
  double ema_rampup = 0.05;
  double ema_decay = 0.9999;
  int64_t ema_start = 1000;
  uint64_t seed = 0;
  bool bf16 = true;          // bf16 autocast; only acts on CUDA
  std::string init = "ortho";  // weight init of G and D: ortho | n02 | xavier (gan/init.h)
  // DiffAugment policy for every image D sees (gan/diff_augment.h), e.g. "color,translation,cutout";
  // "" or "none": off.
  std::string diffaug;

  // std::invalid_argument naming the field and the fix.
  void validate() const;
};

// Keys: batch, lr_g, lr_d, beta1, beta2, eps, d_steps, accumulate, ortho, ema, ema_kimg, ema_rampup, ema_decay,
// ema_start, seed, bf16, init, diffaug.
// from_json: missing keys keep their defaults, but a missing "ema" is implied as with_implied_ema_form
// does; unknown keys and wrong types throw.
nlohmann::json to_json(const TrainConfig& config);
TrainConfig train_config_from_json(const nlohmann::json& json);

// A train section as a user or an older LongGAN wrote it: without "ema", the form follows from the
// keys it sets ("decay" when it sets ema_decay or ema_start, as every config and checkpoint written
// before the half-life form did; "half_life" when it sets ema_kimg or ema_rampup; std::invalid_argument
// when it sets keys of both forms). Returns the section with "ema" added where implied.
nlohmann::json with_implied_ema_form(nlohmann::json train_section);

// Sets requires_grad = false on every parameter of `module` that had it and sets it back on
// destruction, also when an exception unwinds the scope (the D freeze around the G step).
class FreezeGuard {
 public:
  explicit FreezeGuard(torch::nn::Module& module);
  ~FreezeGuard();
  FreezeGuard(const FreezeGuard&) = delete;
  FreezeGuard& operator=(const FreezeGuard&) = delete;

 private:
  std::vector<at::Tensor> frozen_;
};

class GanTrainer {
 public:
  // A batch of real data: images [B, 3, R, R] in [-1, 1] and labels [B] int64 (an undefined
  // tensor means class 0 for all).
  using BatchSource = std::function<std::pair<at::Tensor, at::Tensor>()>;

  // Validates both configs; initialises G and D from TrainConfig.seed (the global generator
  // is left as it was).
  GanTrainer(ModelConfig model, TrainConfig train, torch::Device device);

  // d_steps D updates (each drawing a real batch), one G update, the EMA update. With a DiffAugment
  // policy, D's input is augmented in both: the fake + real batch of each D micro-batch and the
  // fake batch of each G micro-batch, every sample with its own draw from the trainer's generator.
  // Returns d_loss_real and d_loss_fake (of the last D update) and g_loss.
  std::map<std::string, double> train_step(const BatchSource& next_real_batch);
  int64_t step() const { return step_; }

  // Images of all G steps so far (global batches: batch * accumulate * ranks each), the clock of
  // the half-life EMA.
  int64_t images_seen() const { return images_seen_; }

  // "G.", "G_ema.", "D." (parameters and buffers), "optim_G.", "optim_D." (Adam),
  // "trainer.step", "trainer.images_seen" (int64 scalars), "trainer.generator" (uint8 CPU
  // generator state). Copies.
  std::map<std::string, at::Tensor> state() const;
  // std::runtime_error listing every missing, unexpected and shape-mismatched name (with shapes);
  // nothing is changed then. A state without "trainer.images_seen" (saved before it existed) gets
  // step * the global batch of this trainer.
  void load_state(const std::map<std::string, at::Tensor>& state);

  // Images [B, 3, R, R] (CPU, float) of G_ema (or G) for z and labels, rendered by a sampling copy
  // with the batch norm statistics of sampling() (gan/sampling_statistics.h), its attention hashes
  // drawn from `hashes`. The networks and the training generator are left untouched: rendering
  // does not change the run's random streams. The copy is refreshed on the first call after each
  // step, load_state, set_attention or set_sampling (standing statistics: once per refresh, from a
  // generator of their own).
  at::Tensor render(Weights weights, const at::Tensor& z, const at::Tensor& labels, at::Generator hashes);
  // Default: G_ema's running statistics (standing ones: 16 passes of the training batch).
  void set_sampling(const SamplingOptions& options);
  const SamplingOptions& sampling() const { return sampling_; }

  Generator& generator() { return g_; }
  Generator& g_ema() { return g_ema_; }
  Discriminator& discriminator() { return d_; }
  // Data-parallel training (one trainer per rank, all with the same seed): every rank draws the
  // latents and fake labels of the global batch (batch * size) from its generator, so the
  // random streams stay identical on all ranks, and uses its slice [rank * batch, (rank + 1) *
  // batch); sync_gradients(module) is called after each backward pass, before the optimizer
  // step of that module (D, then G), and must average the gradients across ranks.
  struct DataParallel {
    int rank = 0;
    int size = 1;
    std::function<void(torch::nn::Module&)> sync_gradients;
  };
  void set_data_parallel(DataParallel parallel) { parallel_ = std::move(parallel); }

  // Switches the attention type of G, G_ema and D.
  void set_attention(const attention::AttentionSpec& spec);

  const ModelConfig& model_config() const { return model_; }
  const TrainConfig& train_config() const { return train_; }
  const torch::Device& device() const { return device_; }

 private:
  std::map<std::string, at::Tensor> live_state() const;
  // DiffAugment of D's input: `groups` consecutive groups of this rank's samples (D step: fake,
  // then real), each this rank's slice of a group of the global batch; the parameters are drawn for
  // the global batch (every rank draws the same) and this rank's rows applied.
  at::Tensor augment(const at::Tensor& images, int64_t groups);

  int64_t global_batch() const { return train_.batch * train_.accumulate * parallel_.size; }
  void mark_samplers_stale();

  ModelConfig model_;
  TrainConfig train_;
  torch::Device device_;
  mutable at::Generator rng_;  // mutable: its mutex is taken to read the state
  Generator g_{nullptr}, g_ema_{nullptr};
  Discriminator d_{nullptr};
  std::unique_ptr<Adam> optim_g_, optim_d_;
  int64_t step_ = 0;
  int64_t images_seen_ = 0;
  DataParallel parallel_;
  DiffAugmentPolicy diffaug_;
  SamplingOptions sampling_;
  // The sampling copies of G_ema and G (made on the first render of each), and whether each holds
  // the current weights.
  struct Renderer {
    std::unique_ptr<EmaSampler> sampler;
    bool fresh = false;
  };
  std::map<Weights, Renderer> renderers_;
};

}  // namespace longgan::gan

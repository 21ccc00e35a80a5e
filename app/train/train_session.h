#pragma once
// A training session: the app's bridge to gan::GanTrainer and the data loader (what `train`
// runs, behind a narrow interface so that the command reads top to bottom). Its configuration is
// assembled and checked by app/session_config.h.
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>

#include "attention/attention.h"
#include "checkpoints/checkpoint.h"
#include "gan/distributed/process_group.h"
#include "gan/sampling_statistics.h"

namespace longgan::app {

// A trainer over the data file of config["run"]["data"], seeded by config["run"]["seed"], on
// config["run"]["device"]. Its state (networks, optimizers, loader position, RNG states)
// round-trips through state()/load_state() for bit-exact resume.
//
// With a process group (distributed training, one session per rank): the session is that
// rank's replica. It trains on its shard of every global batch (train.batch per rank), on the
// GPU of its local rank when the device is cuda, averages the gradients of D and G across ranks
// before each optimizer step, and (sync_batch_norm) computes G's batch norm statistics over the
// global batch. The group must outlive the session.
// The name of the data loader's position in a session's state (file "loader", key "position").
inline constexpr const char* kLoaderPosition = "loader.position";

struct DistributedOptions {
  gan::ProcessGroup* group = nullptr;
  bool sync_batch_norm = true;
};

class TrainSession {
 public:
  explicit TrainSession(const nlohmann::json& config, DistributedOptions distributed = {});
  ~TrainSession();

  // One G step (with its D steps); returns the losses of the step.
  std::map<std::string, double> train_step();
  // Images of one step over all ranks.
  int64_t images_per_step() const;
  // Distributed: throws std::runtime_error naming the first tensor of G, G_ema or D (parameters
  // and buffers, spectral norm u vectors included) that is not identical on all ranks.
  void check_replicas();
  checkpoints::TensorMap state();
  // Throws std::runtime_error listing mismatching names and shapes.
  void load_state(const checkpoints::TensorMap& state);
  // G_ema (or G) on a fixed z (same every call, drawn from the run's seed without touching the
  // training random streams): [n, 3, H, W] in [-1, 1].
  at::Tensor fixed_samples(int64_t n, gan::Weights weights = gan::Weights::GEma);
  // Latents [n, Z] of the run's evaluation set: untruncated normal, drawn from the run's seed on
  // their own generator (the same set at every evaluation).
  at::Tensor evaluation_latents(int64_t n) const;
  // G_ema (or G) images [count, 3, H, W] in [-1, 1] (CPU) for latents z, the first of which is
  // number `first` of the set (classes cycle with the number); hashes of hashing attention types
  // come from a generator of their own, so evaluating leaves training's random streams untouched.
  at::Tensor evaluation_samples(const at::Tensor& z, int64_t first, gan::Weights weights = gan::Weights::GEma);
  nlohmann::json attention_json() const;
  // {"stats": running | batch | standing, "standing_stats": passes}: how G_ema renders.
  nlohmann::json sampling_json() const;
  // The complete model and train sections (defaults filled in), as run.
  nlohmann::json model_json() const;
  nlohmann::json train_json() const;
  nlohmann::json data_fingerprint() const;
  // TensorBoard scalars "sigma/G/<layer>" and "sigma/D/<layer>": the spectral norms of the
  // attention and first/last layers (gan::watched_sigmas; training state unchanged).
  std::map<std::string, double> spectral_sigmas();
  // "attention/G/attention.3/gamma" and ".../branch_ratio" (||gamma o(attn)|| / ||x|| on the last
  // step's batch) of every attention block of G and D.
  std::map<std::string, double> attention_weights();
  // The model summary table of the networks being trained.
  std::string model_summary() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace longgan::app

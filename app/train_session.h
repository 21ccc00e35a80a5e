#pragma once
// The app's view of the GAN library and the data loader: what `train` and `sample` need, behind
// a narrow interface so that the commands read top to bottom.
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "app/run_config.h"
#include "attention/attention.h"
#include "checkpoints/checkpoint.h"
#include "gan/process_group.h"
#include "gan/sampling_statistics.h"

namespace longgan::app {

// "cpu" or "cuda" (std::runtime_error when no GPU is visible, std::invalid_argument otherwise).
torch::Device parse_device(const std::string& name);

// {"model": the 32 preset (model_preset), "train": TrainConfig defaults} as JSON.
nlohmann::json default_session_config();
// Flags of the model and training sections (e.g. --ch -> model.ch, --batch -> train.batch).
const std::vector<ConfigFlag>& model_flags();
const std::vector<ConfigFlag>& train_flags();
// The model keys of the model flags given in `args`.
std::set<std::string> given_model_keys(const cxxopts::ParseResult& args);
// The keys of a config's "model" section (none when it has none).
std::set<std::string> model_keys_of(const nlohmann::json& config);
// After apply_config_flags: the EMA form the given flags imply when --ema is not given (--ema-kimg,
// --ema-rampup: half_life; --ema-decay, --ema-start: decay); flags of both forms are a UsageError.
void imply_ema_form(nlohmann::json& config, const cxxopts::ParseResult& args);
// The model summary table (blocks, shapes, parameters, attention tokens) of a model section.
std::string describe_model(const nlohmann::json& model_section);

// Checks everything of `config` that a user typed (model and train sections, run.seed, run.device,
// run.data being a file) before anything is opened or written: a UsageError (exit 2) naming the field.
void check_session_config(const nlohmann::json& config);
// The same check for a config built from a JSON file: `before_flags` is the config as `file` left
// it, before the command-line flags. When the check fails and `before_flags` fails with the same
// message, the value came from the file, and the UsageError names it ("config file 'F': ...").
void check_session_config(const nlohmann::json& config, const nlohmann::json& before_flags, const std::string& file);

// Before the first step: checks the data file's image blocks in order for up to `seconds` (all of
// them for data sets of several GB in the page cache: ~2.5 GB/s), printing one line to `out`; a
// corrupt block throws before anything of the run is written. Blocks left unchecked are checked as
// the loader reaches them.
void verify_data_before_training(const nlohmann::json& config, std::ostream& out, double seconds = 3.0);

// A one-line warning when the data file of `config` is labelled (more than one class) but the
// model is unconditional (model.n_classes 1: the labels go unused), naming the file, its classes
// and the flag that uses them; empty otherwise.
std::string unused_labels_warning(const nlohmann::json& config);

// A trainer over the data file of config["run"]["data"], seeded by config["run"]["seed"], on
// config["run"]["device"]. Its state (networks, optimizers, loader position, RNG states)
// round-trips through state()/load_state() for bit-exact resume.
//
// With a process group (distributed training, one session per rank): the session is that
// rank's replica. It trains on its shard of every global batch (train.batch per rank), on the
// GPU of its local rank when the device is cuda, averages the gradients of D and G across ranks
// before each optimizer step, and (sync_batch_norm) computes G's batch norm statistics over the
// global batch. The group must outlive the session.
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
  // The model summary table of the networks being trained.
  std::string model_summary() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The batch norm statistics G_ema renders with, from a run section ("sampling_stats": running |
// batch | standing, "standing_stats": passes; absent keys keep gan::SamplingOptions' defaults),
// standing passes of `standing_batch` images. std::invalid_argument for bad values.
gan::SamplingOptions sampling_options(const nlohmann::json& run, int64_t standing_batch);

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
  const gan::SamplingOptions& sampling() const;
  gan::Weights weights() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace longgan::app

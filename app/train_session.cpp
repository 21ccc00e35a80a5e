// INTERIM: gan/ (ModelConfig, TrainConfig, GanTrainer, Generator) and datasets/ (Loader) have
// not landed yet. The flag tables and defaults below are the app's side; the session classes
// throw until they are wired to gan::GanTrainer and datasets::Loader.
#include "app/train_session.h"

#include <stdexcept>

namespace longgan::app {
namespace {

[[noreturn]] void not_built() {
  throw std::runtime_error("this build has no GAN library yet (gan/ and datasets/ are being written): "
                           "train and sample are unavailable");
}

}  // namespace

nlohmann::json default_session_config() {
  return {{"model",
           {{"resolution", 32}, {"ch", 16}, {"dim_z", 120}, {"G_attn", {16}}, {"D_attn", {16}},
            {"attention", attention::to_json(attention::DenseOptions{})}, {"key_pool", true}, {"heads", 1}}},
          {"train",
           {{"batch", 16}, {"lr_G", 1e-4}, {"lr_D", 4e-4}, {"D_steps", 2}, {"ema_decay", 0.9999}, {"ema_start", 0},
            {"ortho_reg", 1e-4}}}};
}

const std::vector<ConfigFlag>& model_flags() {
  static const std::vector<ConfigFlag> flags{
      {"resolution", "model", "resolution", "Image resolution (32, 64, 128, 256)"},
      {"ch", "model", "ch", "Channel multiplier"},
      {"dim-z", "model", "dim_z", "Latent size"},
      {"g-attn", "model", "G_attn", "Resolutions of G's attention blocks, e.g. 64,128"},
      {"d-attn", "model", "D_attn", "Resolutions of D's attention blocks, e.g. 64"},
      {"attention", "model", "attention", "Attention type and options, e.g. smyrf:hashes=4,q_cluster=2048"},
      {"key-pool", "model", "key_pool", "Max-pool keys and values 2x2 (true/false)"},
      {"heads", "model", "heads", "Attention heads"},
  };
  return flags;
}

const std::vector<ConfigFlag>& train_flags() {
  static const std::vector<ConfigFlag> flags{
      {"batch", "train", "batch", "Batch size"},
      {"lr-g", "train", "lr_G", "Adam learning rate of G"},
      {"lr-d", "train", "lr_D", "Adam learning rate of D"},
      {"d-steps", "train", "D_steps", "D steps per G step"},
      {"ema-decay", "train", "ema_decay", "Decay of the EMA of G's weights"},
      {"ema-start", "train", "ema_start", "Step after which the EMA starts"},
      {"ortho-reg", "train", "ortho_reg", "Orthogonal regularization strength on G"},
  };
  return flags;
}

struct TrainSession::Impl {};
TrainSession::TrainSession(const nlohmann::json&) { not_built(); }
TrainSession::~TrainSession() = default;
std::map<std::string, double> TrainSession::train_step() { not_built(); }
int64_t TrainSession::images_per_step() const { not_built(); }
checkpoints::TensorMap TrainSession::state() { not_built(); }
void TrainSession::load_state(const checkpoints::TensorMap&) { not_built(); }
at::Tensor TrainSession::fixed_samples(int64_t) { not_built(); }
nlohmann::json TrainSession::attention_json() const { not_built(); }
nlohmann::json TrainSession::data_fingerprint() const { not_built(); }

struct CheckpointGenerator::Impl {};
CheckpointGenerator::CheckpointGenerator(const checkpoints::Checkpoint&, const std::optional<attention::AttentionSpec>&,
                                         const std::string&) {
  not_built();
}
CheckpointGenerator::~CheckpointGenerator() = default;
at::Tensor CheckpointGenerator::sample_z(int64_t, uint64_t, double) const { not_built(); }
at::Tensor CheckpointGenerator::generate(const at::Tensor&) { not_built(); }
void CheckpointGenerator::set_attention(const attention::AttentionSpec&) { not_built(); }
const attention::AttentionSpec& CheckpointGenerator::attention() const { not_built(); }

}  // namespace longgan::app

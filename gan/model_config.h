#pragma once
// The shape of a BigGAN generator/discriminator pair (DESIGN.md §4): resolution preset, widths,
// latent, classes, where attention goes and which attention type runs there.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "attention/attention.h"

namespace longgan::gan {

struct ModelConfig {
  int64_t resolution = 128;           // 32, 64, 128, 256 or 512
  int64_t ch = 64;                    // channel multiplier
  int64_t z_dim = 120;
  int64_t shared_dim = 128;           // shared class embedding of G (unused without shared_embedding)
  int64_t n_classes = 1;
  std::vector<int64_t> g_attn{64};    // G block output resolutions followed by attention
  std::vector<int64_t> d_attn{64};    // D block output resolutions followed by attention
  attention::AttentionSpec attention = attention::DenseOptions{};
  bool key_pool = true;
  int64_t heads = 1;
  bool hierarchical_z = true;
  // true: one class embedding shared by G's conditional batch norms, each mapping [z chunk,
  // embedding] to its gain and bias with two linears (BigGAN's G_shared). false: each conditional
  // batch norm looks the class up in two tables of its own, gain and bias [n_classes, channels]
  // (G_shared=False); needs hierarchical_z false (the conditioning is the class alone).
  bool shared_embedding = true;
  // Epsilon of every spectral norm in G and D (BigGAN's SN_eps; kDefaultSpectralNormEps).
  double sn_eps = 1e-12;
  // How every spectral norm estimates sigma (gan/spectral_norm.h SpectralNormStyle): "longgan"
  // (LongGAN's own) or "biggan" (BigGAN-PyTorch's, in eval too: imported models use it).
  std::string spectral_norm = "longgan";
  // Epsilon of G's conditional batch norms (BigGAN's BN_eps; the TF Hub ports use 1e-4). G's
  // output batch norm keeps 1e-5, as BigGAN's does whatever BN_eps says.
  double bn_eps = 1e-5;
  // D's residual blocks: true: conv1 maps in -> out channels (BigGAN's D_wide, default); false:
  // conv1 keeps the input's width and conv2 widens (BigGAN's --D_thin).
  bool d_wide = true;

  // Defaults for a resolution: attention at the largest block resolution <= 64 in G and in D.
  static ModelConfig preset(int64_t resolution);

  // std::invalid_argument naming the field and the fix.
  void validate() const;
};

// One residual block of a plan: channels in/out and the feature map size after it.
struct BlockPlan {
  int64_t in_channels;
  int64_t out_channels;
  int64_t resolution;   // output resolution
  bool sample;          // G: always up-samples; D: down-samples
};

// Channel plans (multipliers of ch, DESIGN.md §4); std::invalid_argument for other resolutions.
std::vector<BlockPlan> generator_plan(const ModelConfig& config);
std::vector<BlockPlan> discriminator_plan(const ModelConfig& config);

// Latent split: slots = blocks + 1 when hierarchical (first slot feeds the 4x4 linear, the others
// one block each; the first slot takes the remainder of z_dim / slots), else 1 slot.
struct LatentSplit {
  int64_t first;    // width of the chunk fed to the input linear
  int64_t chunk;    // width of each block's chunk (0 when not hierarchical)
  int64_t blocks;
};
LatentSplit latent_split(const ModelConfig& config);

// {"resolution", "ch", "z_dim", "shared_dim", "n_classes", "g_attn", "d_attn", "attention",
//  "key_pool", "heads", "hierarchical_z", "shared_embedding", "sn_eps", "spectral_norm", "bn_eps",
//  "d_wide"}. from_json: missing keys take preset(resolution)
// defaults; unknown keys and wrong types throw std::invalid_argument; the result is validated.
nlohmann::json to_json(const ModelConfig& config);
ModelConfig model_config_from_json(const nlohmann::json& json);

}  // namespace longgan::gan

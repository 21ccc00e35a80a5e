#pragma once
// The settings of a BigGAN-PyTorch model, as its train.py takes them (the flags of its
// utils.prepare_parser that decide the networks' function), and the LongGAN ModelConfig that
// computes the same function (docs/BIGGAN_IMPORT.md §3, §4).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "checkpoints/torch_file.h"
#include "gan/model_config.h"

namespace longgan::gan {

// Defaults are train.py's.
struct BigGanFlags {
  int64_t resolution = 128;
  int64_t n_classes = 1000;
  int64_t G_ch = 64;
  int64_t D_ch = 64;
  int64_t dim_z = 128;
  bool hier = false;
  int64_t shared_dim = 0;  // 0: dim_z
  bool G_shared = false;
  std::string G_attn = "64";  // '_'-separated resolutions; "0": none
  std::string D_attn = "64";
  double BN_eps = 1e-5;
  double SN_eps = 1e-8;
  bool D_wide = true;
  std::string G_param = "SN";
  std::string D_param = "SN";
  std::string norm_style = "bn";
  bool mybn = false;
  bool cross_replica = false;
  int64_t num_G_SV_itrs = 1;
  int64_t num_D_SV_itrs = 1;
};

// The flag names BigGanFlags holds, in its order ("resolution", "n_classes", "G_ch", ...).
std::vector<std::string> biggan_flag_names();

// Whether flag `name` is a switch (train.py's store_true: "--hier" alone means true).
bool is_biggan_switch(const std::string& name);

// Every flag of BigGanFlags by name (what an import records).
nlohmann::json biggan_flags_json(const BigGanFlags& flags);

// train.py's command line for `flags` ("--G_ch 4 --D_ch 4 ... --hier --D_thin"): every flag but
// resolution and n_classes, which train.py takes from its --dataset; switches only where set, D_wide
// false as --D_thin; numbers in their shortest exact form.
std::string biggan_train_py_flags(const BigGanFlags& flags);

// Sets flag `name` from its command-line text ("96", "1e-4", "true", "64_128");
// std::invalid_argument naming the flag and the value for an unknown flag or a bad value.
void set_biggan_flag(BigGanFlags& flags, const std::string& name, const std::string& text);

// The flags found in a state_dict.pth's "config" dict (train.py stores its whole argparse
// namespace there); other entries are ignored. std::invalid_argument naming `source` and the
// flag when a value has the wrong kind. Returns the names it set.
std::vector<std::string> read_biggan_flags(const checkpoints::PickleValue& config, const std::string& source,
                                           BigGanFlags& flags);

// The TF Hub BigGANs as BigGAN-PyTorch's TFHub/converter.py builds them (128, 256 or 512: G_ch
// 96, shared_dim 128, hier, G_shared, dim_z 120/140/128, G_attn 64/128/64, BN_eps and SN_eps
// 1e-4, 1000 classes). std::invalid_argument for another resolution.
BigGanFlags tfhub_biggan_flags(int64_t resolution);

// The LongGAN model that computes BigGAN-PyTorch's G and D for these flags: spectral_norm
// "biggan", its epsilons, the latent BigGAN actually uses (G.dim_z = dim_z // slots * slots), the
// attention sites BigGAN builds (resolutions no block has are dropped, as BigGAN drops them),
// dense attention. std::invalid_argument naming the flag for what LongGAN cannot compute the same
// way (D_ch != G_ch, non-SN parameterization, norm_style other than bn, --mybn/--cross_replica
// layouts, a D_attn BigGAN places after several blocks of one resolution).
ModelConfig biggan_model_config(const BigGanFlags& flags);

// The BigGAN-PyTorch flags of a LongGAN model (export); std::invalid_argument naming the model
// option BigGAN-PyTorch cannot express (spectral_norm longgan, an attention type other than
// dense, heads > 1, no key pooling, a z_dim that is not slots * chunk, ...).
BigGanFlags biggan_flags_of(const ModelConfig& model);

}  // namespace longgan::gan

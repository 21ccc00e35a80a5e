#pragma once
// BigGAN generator (DESIGN.md §4): hierarchical latent, shared class embedding (or, without
// ModelConfig::shared_embedding, class tables in each conditional batch norm), linear to 4x4,
// up-sampling residual blocks with conditional batch norm, attention after the listed
// resolutions, BN-ReLU-conv3x3 to RGB, tanh. Every spectral norm uses ModelConfig::sn_eps.
#include <torch/torch.h>

#include <map>
#include <vector>

#include "gan/blocks.h"
#include "gan/model_config.h"
#include "gan/self_attention.h"

namespace longgan::gan {

struct GeneratorImpl : torch::nn::Module {
  // Validates the config (std::invalid_argument).
  explicit GeneratorImpl(const ModelConfig& config);
  // z [B, z_dim] float, labels [B] int64 in [0, n_classes) -> images [B, 3, R, R] in [-1, 1].
  at::Tensor forward(const at::Tensor& z, const at::Tensor& labels);

  // Switches the attention type of every attention block (parameters unchanged).
  void set_attention(const attention::AttentionSpec& spec);
  void set_attention_generator(std::optional<at::Generator> generator);
  // The weights orthogonal regularization applies to: every weight with >= 2 dims except the
  // shared embedding and the conditional batch norm gain/bias linears (or tables).
  std::vector<at::Tensor> ortho_parameters() const;
  // Synchronizes every batch norm across the ranks of `group` (nullptr: local batch norm).
  // The group must outlive the generator's use of it.
  void set_process_group(ProcessGroup* group);

  ModelConfig config;
  LatentSplit split;
  torch::nn::Embedding shared{nullptr};         // null without config.shared_embedding
  SNLinear linear{nullptr};
  std::vector<GBlock> blocks;                    // registered as "blocks.<i>" (a ModuleList)
  std::map<size_t, SelfAttention> attention;     // after block i, registered as "attention.<i>" (a ModuleDict)
  torch::nn::BatchNorm2d out_bn{nullptr};
  SNConv2d out_conv{nullptr};
  ProcessGroup* bn_group = nullptr;
};
TORCH_MODULE(Generator);

}  // namespace longgan::gan

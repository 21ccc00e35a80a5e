#pragma once
// BigGAN discriminator (DESIGN.md §4): down-sampling residual blocks, attention after the
// listed resolutions, ReLU, global sum pool, linear to one logit plus the projection of the
// class embedding. Every spectral norm uses ModelConfig::sn_eps.
#include <torch/torch.h>

#include <map>
#include <vector>

#include "gan/blocks.h"
#include "gan/model_config.h"
#include "gan/self_attention.h"

namespace longgan::gan {

struct DiscriminatorImpl : torch::nn::Module {
  explicit DiscriminatorImpl(const ModelConfig& config);
  // images [B, 3, R, R], labels [B] int64 -> logits [B].
  at::Tensor forward(const at::Tensor& images, const at::Tensor& labels);

  void set_attention(const attention::AttentionSpec& spec);
  void set_attention_generator(std::optional<at::Generator> generator);

  ModelConfig config;
  std::vector<DBlock> blocks;                 // "blocks.<i>"
  std::map<size_t, SelfAttention> attention;  // after block i, "attention.<i>"
  SNLinear linear{nullptr};
  SNEmbedding embed{nullptr};
};
TORCH_MODULE(Discriminator);

}  // namespace longgan::gan

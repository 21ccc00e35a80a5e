#include "gan/discriminator.h"

#include <algorithm>
#include <string>

namespace longgan::gan {

DiscriminatorImpl::DiscriminatorImpl(const ModelConfig& config_) : config(config_) {
  config.validate();
  const std::vector<BlockPlan> plan = discriminator_plan(config);
  auto block_list = register_module("blocks", torch::nn::ModuleList());
  auto attention_dict = register_module("attention", torch::nn::ModuleDict());
  for (size_t i = 0; i < plan.size(); ++i) {
    blocks.push_back(append(block_list,
        DBlock(plan[i].in_channels, plan[i].out_channels, /*preactivation=*/i > 0, plan[i].sample,
               config.d_wide)));
    // One attention block per listed resolution: after the first block that outputs it.
    const auto& sites = config.d_attn;
    const bool first_at_resolution = i == 0 || plan[i - 1].resolution != plan[i].resolution;
    if (first_at_resolution && std::find(sites.begin(), sites.end(), plan[i].resolution) != sites.end()) {
      attention.emplace(i, add_attention(attention_dict, i,
                                           SelfAttention(plan[i].out_channels, config.attention,
                                                         config.key_pool, config.heads, plan[i].resolution)));
    }
  }
  linear = register_module("linear", SNLinear(plan.back().out_channels, 1));
  embed = register_module("embed", SNEmbedding(config.n_classes, plan.back().out_channels));
  set_spectral_norm_eps(*this, config.sn_eps);
  set_spectral_norm_style(*this, spectral_norm_style_from_string(config.spectral_norm));
}

at::Tensor DiscriminatorImpl::forward(const at::Tensor& images, const at::Tensor& labels) {
  at::Tensor h = images;
  for (size_t i = 0; i < blocks.size(); ++i) {
    h = blocks[i]->forward(h);
    if (auto it = attention.find(i); it != attention.end()) h = it->second->forward(h);
  }
  h = at::relu(h).sum({2, 3});
  const at::Tensor logits = linear->forward(h).squeeze(1);
  return logits + (embed->forward(labels) * h).sum(1);
}

void DiscriminatorImpl::set_attention(const attention::AttentionSpec& spec) {
  for (auto& [index, block] : attention) block->set_attention(spec);
  config.attention = spec;
}

void DiscriminatorImpl::set_attention_generator(std::optional<at::Generator> generator) {
  for (auto& [index, block] : attention) block->set_generator(generator);
}

}  // namespace longgan::gan

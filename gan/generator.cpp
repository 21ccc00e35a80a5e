#include "gan/generator.h"

#include <algorithm>
#include <string>

#include "gan/distributed/sync_batch_norm.h"

namespace longgan::gan {

GeneratorImpl::GeneratorImpl(const ModelConfig& config_) : config(config_) {
  config.validate();
  split = latent_split(config);
  const std::vector<BlockPlan> plan = generator_plan(config);
  // Without the shared embedding each conditional batch norm looks the class up itself.
  const Conditioning conditioning = config.shared_embedding ? Conditioning::vector : Conditioning::classes;
  const int64_t cond_dim = config.shared_embedding ? config.shared_dim + split.chunk : config.n_classes;
  if (config.shared_embedding) {
    shared = register_module("shared", torch::nn::Embedding(config.n_classes, config.shared_dim));
    torch::NoGradGuard no_grad;
    shared->weight.normal_(0.0, 0.02);
  }
  linear = register_module("linear", SNLinear(split.first, plan.front().in_channels * 4 * 4));
  auto block_list = register_module("blocks", torch::nn::ModuleList());
  auto attention_dict = register_module("attention", torch::nn::ModuleDict());
  for (size_t i = 0; i < plan.size(); ++i) {
    blocks.push_back(append(block_list,
                                     GBlock(plan[i].in_channels, plan[i].out_channels, cond_dim, conditioning, config.bn_eps)));
    const auto& sites = config.g_attn;
    if (std::find(sites.begin(), sites.end(), plan[i].resolution) != sites.end()) {
      attention.emplace(i, add_attention(attention_dict, i,
                                           SelfAttention(plan[i].out_channels, config.attention,
                                                         config.key_pool, config.heads, plan[i].resolution)));
    }
  }
  out_bn = register_module("out_bn", torch::nn::BatchNorm2d(plan.back().out_channels));
  out_conv = register_module("out_conv", SNConv2d(plan.back().out_channels, 3, 3));
  set_spectral_norm_eps(*this, config.sn_eps);
  set_spectral_norm_style(*this, spectral_norm_style_from_string(config.spectral_norm));
}

at::Tensor GeneratorImpl::forward(const at::Tensor& z, const at::Tensor& labels) {
  // The class conditioning: the shared embedding, or the labels for the batch norms' own tables.
  const at::Tensor embedding = config.shared_embedding ? shared->forward(labels) : labels;
  std::vector<at::Tensor> chunks;
  if (config.hierarchical_z) {
    std::vector<int64_t> sizes{split.first};
    sizes.insert(sizes.end(), split.blocks, split.chunk);
    chunks = z.split_with_sizes(sizes, 1);
  } else {
    chunks = {z};
  }
  at::Tensor h = linear->forward(chunks[0]).view({z.size(0), -1, 4, 4});
  for (size_t i = 0; i < blocks.size(); ++i) {
    const at::Tensor cond = config.hierarchical_z ? at::cat({chunks[i + 1], embedding}, 1) : embedding;
    h = blocks[i]->forward(h, cond);
    if (auto it = attention.find(i); it != attention.end()) h = it->second->forward(h);
  }
  return at::tanh(out_conv->forward(at::relu(batch_norm_2d(*out_bn, h, bn_group))));
}

void GeneratorImpl::set_attention(const attention::AttentionSpec& spec) {
  for (auto& [index, block] : attention) block->set_attention(spec);
  config.attention = spec;
}

void GeneratorImpl::set_attention_generator(std::optional<at::Generator> generator) {
  for (auto& [index, block] : attention) block->set_generator(generator);
}

std::vector<at::Tensor> GeneratorImpl::ortho_parameters() const {
  std::vector<at::Tensor> result;
  for (const auto& item : named_parameters()) {
    const std::string& name = item.key();
    const bool excluded = name.starts_with("shared.") || name.find(".cbn") != std::string::npos;
    if (!excluded && item.value().dim() >= 2) result.push_back(item.value());
  }
  return result;
}

void GeneratorImpl::set_process_group(ProcessGroup* group) {
  bn_group = group;
  for (auto& block : blocks) {
    block->cbn1->group = group;
    block->cbn2->group = group;
  }
}

}  // namespace longgan::gan

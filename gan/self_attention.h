#pragma once
// BigGAN self-attention block on a feature map (DESIGN.md §3), with the attention type as
// configuration: the parameters do not depend on it, and set_attention() switches it anytime.
//   theta = conv1x1(C -> C/8), phi = conv1x1(C -> C/8), g = conv1x1(C -> C/2), o = conv1x1(C/2 -> C),
//   all spectrally normalized without bias; phi and g max-pooled 2x2 when key_pool;
//   out = x + gamma * o(attend(theta, phi, g)), gamma a scalar initialised to 0, softmax scale 1.
// With the ablation spec `none` the block returns x (what x + gamma * o(0) is) without computing
// anything: its parameters get no gradient and keep their values.
#include <torch/torch.h>

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "attention/attention.h"
#include "gan/spectral_norm.h"

namespace longgan::gan {

struct SelfAttentionImpl : torch::nn::Module {
  // channels must be divisible by 8 * heads (std::invalid_argument otherwise). resolution: the
  // side of the feature map the block sees (0: unknown); when known, a bare type name's spec that
  // does not fit its lengths is fitted to them (attention::fit_if_bare), here and in set_attention.
  SelfAttentionImpl(int64_t channels, attention::AttentionSpec spec, bool key_pool = true, int64_t heads = 1,
                    int64_t resolution = 0);
  // x [B, C, H, W] -> [B, C, H, W]; H and W even when key_pool. The 1x1 convolutions run as
  // batched products in token-major layout, so q, k, v reach the attention library with each
  // token's channels contiguous (what SDPA's fused kernels and the fast paths take without a copy),
  // and the output projection writes the feature map's own layout.
  at::Tensor forward(const at::Tensor& x);
  // The attention output [B, heads, H*W, C/2/heads] for the map x (what forward feeds to o).
  at::Tensor attention_output(const at::Tensor& x);
  // x + gamma * o(attended): the block output for an attention output of attention_output(x).
  at::Tensor block_output(const at::Tensor& x, const at::Tensor& attended);
  // The same function in the feature map's channel-major layout: 1x1 convolutions, tokens as
  // transposed views (the computation before the token-major layout; tests hold forward equal to it).
  at::Tensor forward_reference(const at::Tensor& x);

  void set_attention(const attention::AttentionSpec& spec);
  const attention::AttentionSpec& attention_spec() const { return spec; }
  // Source of the random hashes of hashing types (default: the global CPU generator).
  void set_generator(std::optional<at::Generator> generator) { this->generator = std::move(generator); }
  // ||gamma * o(attend(...))|| / ||x|| of the last forward (0 with `none`; nullopt before the
  // first): how much the attention branch adds to the block's input, on that call's batch.
  std::optional<double> last_branch_ratio() const;
  // Called with the block's input x at the start of every forward (diagnostics capture the
  // activations that reach each block); empty by default.
  std::function<void(const at::Tensor&)> input_observer;

  attention::AttentionSpec spec;  // as run: fitted to this block's lengths where it was bare
  bool key_pool;
  int64_t resolution;
  int64_t heads;
  std::optional<at::Generator> generator;
  SNConv2d theta{nullptr}, phi{nullptr}, g{nullptr}, o{nullptr};
  at::Tensor gamma;

 private:
  void record_branch_ratio(const at::Tensor& branch, const at::Tensor& x);  // undefined branch: 0
  at::Tensor branch_ratio_;  // 0-dim, detached: of the last forward
};
TORCH_MODULE(SelfAttention);

// What one attention block of a network weighs: its gamma and the branch ratio of its last
// forward (nullopt before the first).
struct AttentionReading {
  int64_t resolution = 0;  // the side of its feature map (0: unknown)
  double gamma = 0;
  std::optional<double> branch_ratio;
};
// Every SelfAttention module of `network`, by its name in named_modules() ("attention.3").
std::map<std::string, AttentionReading> attention_readings(torch::nn::Module& network);

// Registers `block` in `dict` under the key "<index>" and returns it.
inline SelfAttention add_attention(const std::shared_ptr<torch::nn::ModuleDictImpl>& dict, size_t index,
                                   SelfAttention block) {
  dict->update({{std::to_string(index), block.ptr()}});
  return block;
}

}  // namespace longgan::gan

#pragma once
// BigGAN residual blocks.
#include <torch/torch.h>

#include <memory>

#include "gan/conditional_batch_norm.h"
#include "gan/spectral_norm.h"

namespace longgan::gan {

// Nearest-neighbour 2x upsampling of x [B, C, H, W] -> [B, C, 2H, 2W]: at::upsample_nearest2d's
// values and gradient, by a faster way on the CPU (blocks.cpp says why).
at::Tensor upsample2x(const at::Tensor& x);

// Generator block: CBN-ReLU-upsample(nearest 2x)-conv3x3-CBN-ReLU-conv3x3, plus the shortcut
// upsample-conv1x1 (computed as conv1x1-upsample, the same function). x [B, in, H, W], cond (as
// `conditioning` says: [B, cond_dim] float, or [B] class labels with cond_dim classes;
// gan/conditional_batch_norm.h) -> [B, out, 2H, 2W].
struct GBlockImpl : torch::nn::Module {
  GBlockImpl(int64_t in_channels, int64_t out_channels, int64_t cond_dim,
             Conditioning conditioning = Conditioning::vector, double bn_eps = 1e-5);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cond);

  ConditionalBatchNorm cbn1{nullptr}, cbn2{nullptr};
  SNConv2d conv1{nullptr}, conv2{nullptr}, conv_sc{nullptr};
};
TORCH_MODULE(GBlock);

// Discriminator block: (ReLU unless first)-conv3x3-ReLU-conv3x3-(avgpool 2x2 if downsample), plus
// a shortcut: conv1x1 (when channels change or downsampling; identity otherwise) and the same
// pooling (BigGAN: conv before pooling in pre-activated blocks, after it in the first block; both
// computed pooling first, the same function).
// x [B, in, H, W] -> [B, out, H/2, W/2] (or [B, out, H, W] without downsampling). Wide (BigGAN's
// D_wide, the default): conv1 in -> out, conv2 out -> out; thin: conv1 in -> in, conv2 in -> out.
struct DBlockImpl : torch::nn::Module {
  DBlockImpl(int64_t in_channels, int64_t out_channels, bool preactivation, bool downsample, bool wide = true);
  at::Tensor forward(const at::Tensor& x);

  bool preactivation, downsample;
  SNConv2d conv1{nullptr}, conv2{nullptr}, conv_sc{nullptr};  // conv_sc null: identity shortcut
};
TORCH_MODULE(DBlock);

// Appends `module` to `list` (registered as "<list>.<index>") and returns it.
template <typename Holder>
Holder append(const std::shared_ptr<torch::nn::ModuleListImpl>& list, Holder module) {
  list->push_back(module);
  return module;
}

}  // namespace longgan::gan

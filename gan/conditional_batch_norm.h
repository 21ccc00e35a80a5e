#pragma once
// Conditional batch norm (BigGAN): batch norm without affine parameters, then a per-sample gain
// and bias predicted from the conditioning vector by two spectrally normalized linears (no bias):
//   out = bn(x) * (1 + gain(cond)) + bias(cond).
#include <torch/torch.h>

#include "gan/process_group.h"
#include "gan/spectral_norm.h"

namespace longgan::gan {

struct ConditionalBatchNormImpl : torch::nn::Module {
  ConditionalBatchNormImpl(int64_t channels, int64_t cond_dim);
  // x [B, C, H, W], cond [B, cond_dim] -> [B, C, H, W].
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cond);

  torch::nn::BatchNorm2d bn{nullptr};
  SNLinear gain{nullptr}, bias{nullptr};
  // Set: the batch statistics are those of all ranks (gan/sync_batch_norm.h). Not owned.
  ProcessGroup* group = nullptr;
};
TORCH_MODULE(ConditionalBatchNorm);

}  // namespace longgan::gan

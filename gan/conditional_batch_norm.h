#pragma once
// Conditional batch norm (BigGAN): batch norm without affine parameters, then a per-sample gain
// and bias predicted from the conditioning:
//   out = bn(x) * (1 + gain(cond)) + bias(cond).
// Two kinds of conditioning (BigGAN's G_shared on or off):
//   vector: cond [B, cond_dim] float (shared class embedding [+ z chunk]); gain and bias are two
//           spectrally normalized linears without bias, weights [channels, cond_dim];
//   classes: cond [B] int64 class labels; gain and bias are two plain embedding tables
//           [n_classes, channels] of this layer's own.
#include <torch/torch.h>

#include "gan/distributed/process_group.h"
#include "gan/spectral_norm.h"

namespace longgan::gan {

enum class Conditioning { vector, classes };

struct ConditionalBatchNormImpl : torch::nn::Module {
  // cond_dim: the conditioning vector's width (vector) or the number of classes (classes);
  // eps: the batch norm's (BigGAN's BN_eps).
  ConditionalBatchNormImpl(int64_t channels, int64_t cond_dim, Conditioning conditioning = Conditioning::vector,
                           double eps = 1e-5);
  // x [B, C, H, W], cond as the conditioning kind says -> [B, C, H, W].
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cond);

  Conditioning conditioning;
  torch::nn::BatchNorm2d bn{nullptr};
  SNLinear gain{nullptr}, bias{nullptr};                            // vector: "gain", "bias"
  torch::nn::Embedding gain_table{nullptr}, bias_table{nullptr};    // classes: "gain", "bias"
  // Set: the batch statistics are those of all ranks (gan/distributed/sync_batch_norm.h). Not owned.
  ProcessGroup* group = nullptr;
};
TORCH_MODULE(ConditionalBatchNorm);

}  // namespace longgan::gan

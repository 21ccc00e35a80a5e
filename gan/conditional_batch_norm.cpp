#include "gan/conditional_batch_norm.h"

#include "gan/sync_batch_norm.h"

namespace longgan::gan {

ConditionalBatchNormImpl::ConditionalBatchNormImpl(int64_t channels, int64_t cond_dim) {
  bn = register_module("bn", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(channels).affine(false)));
  gain = register_module("gain", SNLinear(cond_dim, channels, /*bias=*/false));
  bias = register_module("bias", SNLinear(cond_dim, channels, /*bias=*/false));
}

at::Tensor ConditionalBatchNormImpl::forward(const at::Tensor& x, const at::Tensor& cond) {
  const int64_t b = x.size(0), c = x.size(1);
  const at::Tensor scale = 1 + gain->forward(cond).view({b, c, 1, 1});
  const at::Tensor shift = bias->forward(cond).view({b, c, 1, 1});
  return batch_norm_2d(*bn, x, group) * scale + shift;
}

}  // namespace longgan::gan

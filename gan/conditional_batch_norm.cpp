#include "gan/conditional_batch_norm.h"

#include "gan/distributed/sync_batch_norm.h"

namespace longgan::gan {

ConditionalBatchNormImpl::ConditionalBatchNormImpl(int64_t channels, int64_t cond_dim, Conditioning conditioning_,
                                                   double eps)
    : conditioning(conditioning_) {
  bn = register_module("bn", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(channels).affine(false).eps(eps)));
  if (conditioning == Conditioning::vector) {
    gain = register_module("gain", SNLinear(cond_dim, channels, /*bias=*/false));
    bias = register_module("bias", SNLinear(cond_dim, channels, /*bias=*/false));
  } else {
    gain_table = register_module("gain", torch::nn::Embedding(cond_dim, channels));
    bias_table = register_module("bias", torch::nn::Embedding(cond_dim, channels));
    torch::NoGradGuard no_grad;
    gain_table->weight.normal_(0.0, 0.02);  // as every other layer here until the trainer's init
    bias_table->weight.normal_(0.0, 0.02);
  }
}

at::Tensor ConditionalBatchNormImpl::forward(const at::Tensor& x, const at::Tensor& cond) {
  const int64_t b = x.size(0), c = x.size(1);
  const bool vector = conditioning == Conditioning::vector;
  const at::Tensor scale = 1 + (vector ? gain->forward(cond) : gain_table->forward(cond)).view({b, c, 1, 1});
  const at::Tensor shift = (vector ? bias->forward(cond) : bias_table->forward(cond)).view({b, c, 1, 1});
  return batch_norm_2d(*bn, x, group) * scale + shift;
}

}  // namespace longgan::gan

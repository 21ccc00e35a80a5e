#include "gan/blocks.h"

#include <torch/autograd.h>

namespace longgan::gan {
namespace {

// Nearest 2x upsampling. On the CPU the forward is one copy of x broadcast over 2x2 cells: ATen's
// CPU kernel takes a channels-last path for outputs up to 64x64 (two layout copies around it),
// measured 2-3 times slower at G's shapes; the backward is ATen's (the broadcast's own backward, a
// strided sum, was slower still). Both give exactly ATen's values.
class NearestUpsample2xCpu : public torch::autograd::Function<NearestUpsample2xCpu> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x) {
    ctx->saved_data["sizes"] = x.sizes().vec();
    const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    return x.view({n, c, h, 1, w, 1}).expand({n, c, h, 2, w, 2}).reshape({n, c, 2 * h, 2 * w});
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto sizes = ctx->saved_data["sizes"].toIntVector();
    return {at::upsample_nearest2d_backward(grads[0], {sizes[2] * 2, sizes[3] * 2}, sizes)};
  }
};

at::Tensor avgpool2x(const at::Tensor& x) { return at::avg_pool2d(x, {2, 2}); }

}  // namespace

at::Tensor upsample2x(const at::Tensor& x) {
  if (x.is_cpu() && x.is_contiguous()) return NearestUpsample2xCpu::apply(x);
  return at::upsample_nearest2d(x, {x.size(2) * 2, x.size(3) * 2});
}

GBlockImpl::GBlockImpl(int64_t in_channels, int64_t out_channels, int64_t cond_dim, Conditioning conditioning,
                       double bn_eps) {
  cbn1 = register_module("cbn1", ConditionalBatchNorm(in_channels, cond_dim, conditioning, bn_eps));
  conv1 = register_module("conv1", SNConv2d(in_channels, out_channels, 3));
  cbn2 = register_module("cbn2", ConditionalBatchNorm(out_channels, cond_dim, conditioning, bn_eps));
  conv2 = register_module("conv2", SNConv2d(out_channels, out_channels, 3));
  conv_sc = register_module("conv_sc", SNConv2d(in_channels, out_channels, 1));
}

at::Tensor GBlockImpl::forward(const at::Tensor& x, const at::Tensor& cond) {
  at::Tensor h = upsample2x(at::relu(cbn1->forward(x, cond)));
  h = conv1->forward(h);
  h = conv2->forward(at::relu(cbn2->forward(h, cond)));
  // BigGAN's shortcut is conv_sc(upsample(x)); a 1x1 convolution commutes with nearest upsampling,
  // so it runs on the 4x smaller map and upsamples out_channels (half of in_channels) instead.
  return h + upsample2x(conv_sc->forward(x));
}

DBlockImpl::DBlockImpl(int64_t in_channels, int64_t out_channels, bool preactivation_, bool downsample_, bool wide)
    : preactivation(preactivation_), downsample(downsample_) {
  const int64_t hidden = wide ? out_channels : in_channels;
  conv1 = register_module("conv1", SNConv2d(in_channels, hidden, 3));
  conv2 = register_module("conv2", SNConv2d(hidden, out_channels, 3));
  if (in_channels != out_channels || downsample) {
    conv_sc = register_module("conv_sc", SNConv2d(in_channels, out_channels, 1));
  }
}

at::Tensor DBlockImpl::forward(const at::Tensor& x) {
  at::Tensor h = conv1->forward(preactivation ? at::relu(x) : x);
  h = conv2->forward(at::relu(h));
  if (downsample) h = avgpool2x(h);

  at::Tensor shortcut = x;
  // BigGAN pools after conv_sc in preactivation blocks and before it otherwise; both are linear,
  // so pooling first (4x fewer pixels through the 1x1 convolution) gives the same shortcut.
  if (downsample) shortcut = avgpool2x(shortcut);
  if (conv_sc) shortcut = conv_sc->forward(shortcut);
  return h + shortcut;
}

}  // namespace longgan::gan

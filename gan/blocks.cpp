#include "gan/blocks.h"

namespace longgan::gan {
namespace {

at::Tensor upsample2x(const at::Tensor& x) {
  return at::upsample_nearest2d(x, {x.size(2) * 2, x.size(3) * 2});
}

at::Tensor avgpool2x(const at::Tensor& x) { return at::avg_pool2d(x, {2, 2}); }

}  // namespace

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
  return h + conv_sc->forward(upsample2x(x));
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
  if (preactivation) {
    if (conv_sc) shortcut = conv_sc->forward(shortcut);
    if (downsample) shortcut = avgpool2x(shortcut);
  } else {
    if (downsample) shortcut = avgpool2x(shortcut);
    if (conv_sc) shortcut = conv_sc->forward(shortcut);
  }
  return h + shortcut;
}

}  // namespace longgan::gan

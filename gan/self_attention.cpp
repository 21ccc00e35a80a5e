#include "gan/self_attention.h"

#include <stdexcept>
#include <string>

namespace longgan::gan {

SelfAttentionImpl::SelfAttentionImpl(int64_t channels, attention::AttentionSpec spec_, bool key_pool_,
                                     int64_t heads_, int64_t resolution_)
    : key_pool(key_pool_), heads(heads_), resolution(resolution_) {
  if (heads < 1 || channels % (8 * heads) != 0) {
    throw std::invalid_argument("self-attention: channels (" + std::to_string(channels) +
                                ") must be divisible by 8 * heads (heads = " + std::to_string(heads) +
                                "); change ch or heads");
  }
  set_attention(spec_);
  theta = register_module("theta", SNConv2d(channels, channels / 8, 1, /*bias=*/false));
  phi = register_module("phi", SNConv2d(channels, channels / 8, 1, /*bias=*/false));
  g = register_module("g", SNConv2d(channels, channels / 2, 1, /*bias=*/false));
  o = register_module("o", SNConv2d(channels / 2, channels, 1, /*bias=*/false));
  gamma = register_parameter("gamma", torch::zeros({}));
}

void SelfAttentionImpl::set_attention(const attention::AttentionSpec& new_spec) {
  attention::validate(new_spec);
  if (resolution <= 0) {
    spec = new_spec;
    return;
  }
  const int64_t n = resolution * resolution;
  spec = attention::fit_if_bare(new_spec, n, key_pool ? n / 4 : n);
}

namespace {

// [B, C, H, W] -> [B, heads, H*W, C/heads] (channel c = head * C/heads + d).
at::Tensor to_tokens(const at::Tensor& x, int64_t heads) {
  const int64_t b = x.size(0), c = x.size(1), n = x.size(2) * x.size(3);
  return x.reshape({b, heads, c / heads, n}).transpose(-1, -2);
}

}  // namespace

at::Tensor SelfAttentionImpl::forward(const at::Tensor& x) {
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  at::Tensor keys = phi->forward(x);
  at::Tensor values = g->forward(x);
  attention::CallOptions call;
  call.scale = 1.0;
  call.query_grid = {h, w};
  call.key_grid = {h, w};
  if (key_pool) {
    keys = at::max_pool2d(keys, {2, 2});
    values = at::max_pool2d(values, {2, 2});
    call.key_grid = {h / 2, w / 2};
  }
  call.generator = generator;
  const at::Tensor q = to_tokens(theta->forward(x), heads);
  const at::Tensor k = to_tokens(keys, heads);
  const at::Tensor v = to_tokens(values, heads);
  const at::Tensor attended = attention::attend(spec, q, k, v, call);  // [B, heads, N, C/2/heads]
  const at::Tensor map = attended.transpose(-1, -2).reshape({b, c / 2, h, w});
  return x + gamma * o->forward(map);
}

}  // namespace longgan::gan

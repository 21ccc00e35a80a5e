#pragma once
// none: the ablation. The attention output is zero, so a residual block x + gamma * o(attend(...))
// with a bias-free output projection returns x exactly: the model without its attention. Blocks
// that know this (gan::SelfAttention) skip the projections altogether.
#include "attention/call_options.h"

namespace longgan::attention {

struct NoneOptions {
  friend bool operator==(const NoneOptions&, const NoneOptions&) = default;
  void validate() const {}
  void validate_lengths(int64_t /*n*/, int64_t /*m*/) const {}
};

// Zeros [B, H, N, Dv] in v's dtype and device, connected to no input (q, k and v get no gradient).
at::Tensor none_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const NoneOptions& options,
                          const CallOptions& call);

}  // namespace longgan::attention

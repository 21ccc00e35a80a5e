#pragma once
// dense: exact softmax(q k^T * scale) v.
#include "attention/call_options.h"

#include <string>

namespace longgan::attention {

struct DenseOptions {
  friend bool operator==(const DenseOptions&, const DenseOptions&) = default;
  void validate() const {}
  void validate_lengths(int64_t /*n*/, int64_t /*m*/) const {}
};

// q [B,H,N,Dqk], k [B,H,M,Dqk], v [B,H,M,Dv] -> [B,H,N,Dv], by ATen's scaled_dot_product_attention
// wherever one of its fused backends takes the inputs (on the CPU its flash kernel, with q, k and
// v zero-padded to one head width: zero columns change no logit), else the chunked exact path, so
// that long inputs never materialize an N x M matrix. Backend::Reference: the naive or chunked
// path; FusedMath: the chunked path; Fused: SDPA or std::invalid_argument.
at::Tensor dense_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const DenseOptions& options, const CallOptions& call);

// The SDPA backend dense_attention uses for these inputs: "flash", "efficient", "cudnn",
// "overrideable", or "chunked" where SDPA would fall back to its materializing math path;
// " (padded to D)" is appended where the CPU path pads the head widths.
std::string dense_backend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);

// Exact attention computed over blocks of `chunk` queries at a time (fp32 softmax statistics).
at::Tensor dense_attention_chunked(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                   double scale, int64_t chunk);

// The textbook formula, materializing the full N x M logits in fp32: the test oracle.
at::Tensor dense_attention_naive(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 double scale);

}  // namespace longgan::attention

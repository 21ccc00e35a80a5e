#pragma once
// dense: exact softmax(q k^T * scale) v.
#include "attention/call_options.h"

namespace longgan::attention {

struct DenseOptions {
  friend bool operator==(const DenseOptions&, const DenseOptions&) = default;
  void validate() const {}
  void validate_lengths(int64_t /*n*/, int64_t /*m*/) const {}
};

// q [B,H,N,Dqk], k [B,H,M,Dqk], v [B,H,M,Dv] -> [B,H,N,Dv]. Never materializes an N x M
// matrix for long inputs: ATen's scaled-dot-product attention where it applies, else the
// chunked exact path below.
at::Tensor dense_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const DenseOptions& options, const CallOptions& call);

// Exact attention computed over blocks of `chunk` queries at a time (fp32 softmax statistics).
at::Tensor dense_attention_chunked(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                   double scale, int64_t chunk);

// The textbook formula, materializing the full N x M logits in fp32: the test oracle.
at::Tensor dense_attention_naive(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 double scale);

}  // namespace longgan::attention

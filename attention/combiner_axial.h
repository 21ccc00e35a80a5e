#pragma once
// combiner_axial (Ren et al., NeurIPS 2021): bidirectional row-major axial factorization over
// the key grid; every key reached in at most two hops. DESIGN.md §2.
#include "attention/call_options.h"

namespace longgan::attention {

struct CombinerAxialOptions {
  friend bool operator==(const CombinerAxialOptions&, const CombinerAxialOptions&) = default;
  void validate() const {}
  void validate_lengths(int64_t /*n*/, int64_t /*m*/) const {}
};

// Grids come from call.query_grid / call.key_grid (square when not given).
at::Tensor combiner_axial_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                    const CombinerAxialOptions& options, const CallOptions& call);

// The specification in ATen ops (O(N (Hk + Wk)) memory).
at::Tensor combiner_axial_attention_reference(const at::Tensor& q, const at::Tensor& k,
                                              const at::Tensor& v, double scale, Grid query_grid,
                                              Grid key_grid);

}  // namespace longgan::attention

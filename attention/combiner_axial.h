#pragma once
// combiner_axial (Ren et al., NeurIPS 2021): bidirectional row-major axial factorization over
// the key grid; every key reached in at most two hops. DESIGN.md §2.
//
// Exact definition. Keys k, v lie row-major on an Hk x Wk grid (key (r, c) is index r*Wk + c),
// queries on an Hq x Wq grid. Query row i maps to key row row(i) = floor(i*Hk/Hq), query column
// j to key column col(j) = floor(j*Wk/Wq).
//  1. Row summaries. Key position (r, c) has a representative query qhat[r, c], the query at
//     grid position (floor(r*Hq/Hk), floor(c*Wq/Wk)) (for integer pooling factors, the first
//     query that maps to (r, c); with equal grids, the query at (r, c) itself). With
//     p[r, c, :] = softmax_c'(qhat[r, c] . k[r, c'] * scale) over the Wk keys of row r:
//       summary key   s[r, c]  = sum_c' p[r, c, c'] k[r, c']
//       row output    rv[r, c] = sum_c' p[r, c, c'] v[r, c']
//  2. The query at (i, j) attends in ONE softmax over
//       (a) the Wk keys of its own key row row(i):              logits q . k[row(i), c'] * scale,
//                                                                values v[row(i), c'];
//       (b) the summaries of column col(j) of every OTHER key row r != row(i):
//                                                                logits q . s[r, col(j)] * scale,
//                                                                values rv[r, col(j)].
//     Its own row's summary is left out (that row is attended directly).
// Every key is reached in at most two hops (directly, or through its row's summary). Memory
// O(N (Hk + Wk) + M Wk). There is no fused path: Backend::Fused and FusedMath are errors.
#include "attention/call_options.h"

namespace longgan::attention {

struct CombinerAxialOptions {
  friend bool operator==(const CombinerAxialOptions&, const CombinerAxialOptions&) = default;
  void validate() const {}
  void validate_lengths(int64_t /*n*/, int64_t /*m*/) const {}
};

// Grids come from call.query_grid / call.key_grid (square when not given). Computes in fp32
// (double for double inputs) and returns the input dtype; differentiable in q, k, v.
at::Tensor combiner_axial_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                    const CombinerAxialOptions& options, const CallOptions& call);

// The specification in ATen ops (O(N (Hk + Wk)) memory).
at::Tensor combiner_axial_attention_reference(const at::Tensor& q, const at::Tensor& k,
                                              const at::Tensor& v, double scale, Grid query_grid,
                                              Grid key_grid);

}  // namespace longgan::attention

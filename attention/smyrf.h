#pragma once
// smyrf (Daras et al., NeurIPS 2020): asymmetric LSH (XBOX+) clustering of queries and keys,
// exact attention inside each cluster, hash rounds merged by their log-sum-exp. DESIGN.md §2.
#include "attention/call_options.h"
#include "kernels/fused_attention.h"

#include <optional>

namespace longgan::attention {

struct SmyrfOptions {
  friend bool operator==(const SmyrfOptions&, const SmyrfOptions&) = default;
  int64_t hashes = 4;      // hash rounds
  int64_t q_cluster = 2048;  // queries per cluster
  int64_t k_cluster = 512;   // keys per cluster
  // Static checks (positive values), throwing std::invalid_argument naming the option.
  void validate() const;
  // Checks against the lengths: cluster sizes within N/M and equal cluster counts.
  void validate_lengths(int64_t n, int64_t m) const;
};

// Random projection vectors for every hash round: [B, H, hashes, Dqk + 2], fp32, drawn on the
// CPU from `generator` (N(0, 1)), returned on `device`.
at::Tensor smyrf_draw_projections(int64_t batch, int64_t heads, int64_t hashes, int64_t dqk,
                                  at::Generator generator, at::Device device);

// Dispatch: draws projections, then runs the fused path (default) or the reference.
at::Tensor smyrf_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const SmyrfOptions& options, const CallOptions& call);

// The order of every hash round (steps 1-2 of the reference; the same indices, sorted by
// kernels::stable_argsort): position s of round r holds the
// index of the query (key) with the s-th smallest hash; stable, ascending. No gradient.
struct SmyrfOrders {
  at::Tensor queries;  // int64 [B, H, hashes, N]
  at::Tensor keys;     // int64 [B, H, hashes, M]
};
SmyrfOrders smyrf_sort_orders(const at::Tensor& q, const at::Tensor& k, const at::Tensor& projections);

// The specification in ATen ops. projections: [B, H, hashes, Dqk + 2] as above.
at::Tensor smyrf_attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                     const SmyrfOptions& options, double scale,
                                     const at::Tensor& projections);

// How the fused path merges its hash rounds (docs/ATTENTION.md). Both give the same function.
//   Online: a running merge in fp32, updated by each kernel call on the rows it covers; the least
//     memory (one accumulator), and fast where calls are small enough for their rows to stay in
//     cache: the CPU, whose calls take at most 8,192 query rows.
//   Buffered: rounds 0..R-2 write outputs (inputs' dtype) and log-sum-exps once into per-row slots;
//     each call of the last round merges the rows it covers in one pass and writes them un-permuted;
//     the fewest bytes moved where one call covers a whole round: CUDA.
enum class SmyrfRoundMerge { Online, Buffered };
// Buffered for the CUDA kernel, Online otherwise.
SmyrfRoundMerge default_round_merge(kernels::FusedKernel kernel);

// The same function on a fused attention kernel: per round, queries and keys gathered in hash
// order into contiguous clusters (the full clusters in one batch, the shorter last cluster of
// lengths that do not divide in another: nothing padded or masked), one kernel call per batch,
// rounds merged as `merge` says (default: default_round_merge(kernel)). The backward runs the
// kernel's own backward per call with the merged output, the merged log-sum-exp and the raw output
// gradient (exp(S_r - LSE) = w_r P_r): exact, including the gradient through the merge weights.
at::Tensor smyrf_attention_fused(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 const SmyrfOptions& options, double scale, const SmyrfOrders& orders,
                                 kernels::FusedKernel kernel, std::optional<SmyrfRoundMerge> merge = std::nullopt);

}  // namespace longgan::attention

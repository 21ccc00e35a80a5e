#pragma once
// clustered and improved_clustered (Vyas et al., NeurIPS 2020): queries hashed to bit codes,
// k-means in Hamming space, attention of the cluster centroids. DESIGN.md §2.
#include "attention/call_options.h"

namespace longgan::attention {

struct ClusteredOptions {
  friend bool operator==(const ClusteredOptions&, const ClusteredOptions&) = default;
  int64_t clusters = 100;
  int64_t bits = 32;        // 1..63 hash bits per query
  int64_t iterations = 10;  // Lloyd steps
  bool hash_bias = true;    // hyperplanes over [q, 1] (false: the bias coordinate is zero)
  void validate() const;
  void validate_lengths(int64_t n, int64_t m) const;
};

struct ImprovedClusteredOptions {
  friend bool operator==(const ImprovedClusteredOptions&, const ImprovedClusteredOptions&) = default;
  ClusteredOptions clustering;
  int64_t topk = 32;  // keys recomputed exactly per cluster
  void validate() const;
  void validate_lengths(int64_t n, int64_t m) const;
};

// Hyperplanes for hashing: [B, H, bits, Dqk + 1] fp32, N(0, 1) drawn on the CPU from `generator`;
// the last coordinate multiplies the constant 1 (zeroed when hash_bias is false).
at::Tensor clustered_draw_hyperplanes(int64_t batch, int64_t heads, const ClusteredOptions& options,
                                      int64_t dqk, at::Generator generator, at::Device device);

// Cluster assignment of every query: int64 [B, H, N] in [0, clusters), from the hash codes and
// Hamming k-means. Piecewise constant: no gradient.
at::Tensor clustered_assign(const at::Tensor& q, const ClusteredOptions& options,
                            const at::Tensor& hyperplanes);

at::Tensor clustered_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               const ClusteredOptions& options, const CallOptions& call);
at::Tensor improved_clustered_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        const ImprovedClusteredOptions& options,
                                        const CallOptions& call);

// References in ATen ops, given the cluster assignment [B, H, N].
at::Tensor clustered_attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                         int64_t clusters, double scale, const at::Tensor& assignment);
at::Tensor improved_clustered_attention_reference(const at::Tensor& q, const at::Tensor& k,
                                                  const at::Tensor& v, int64_t clusters, int64_t topk,
                                                  double scale, const at::Tensor& assignment);

}  // namespace longgan::attention

#pragma once
// clustered and improved_clustered (Vyas et al., NeurIPS 2020): queries hashed to bit codes,
// k-means in Hamming space, attention of the cluster centroids. DESIGN.md §2.
#include "attention/call_options.h"
#include "kernels/fused_attention.h"

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

// The random draws of one call, in the order they are drawn from the call's generator (all on
// the CPU, then moved, so that every backend and device sees the same ones).
struct ClusteredDraws {
  // [B, H, bits, Dqk + 1] fp32, N(0, 1); the last coordinate multiplies the constant 1 (zeroed
  // when hash_bias is false).
  at::Tensor hyperplanes;
  // uint8 [iterations, B, H, clusters, bits] in {0, 1}, one slice per Lloyd step: the code an empty
  // cluster takes (re-seeding), and the bits a centroid takes where its members split evenly
  // (fast-transformers' random choices).
  at::Tensor reseed, ties;
};

at::Tensor clustered_draw_hyperplanes(int64_t batch, int64_t heads, const ClusteredOptions& options,
                                      int64_t dqk, at::Generator generator, at::Device device);
// Hyperplanes, then reseed, then ties.
ClusteredDraws clustered_draw(int64_t batch, int64_t heads, const ClusteredOptions& options, int64_t dqk,
                              at::Generator generator, at::Device device);

// Hash bits of every query: bit b is set iff [q, 1] . hyperplane_b > 0 (fp32). Bool [B, H, N, bits].
at::Tensor clustered_hash_bits(const at::Tensor& q, const at::Tensor& hyperplanes);

// Cluster assignment of every query: int64 [B, H, N] in [0, clusters), from the hash codes and
// Hamming k-means, in ATen ops (the specification). Piecewise constant: no gradient.
at::Tensor clustered_assign(const at::Tensor& q, const ClusteredOptions& options, const ClusteredDraws& draws);
// The same assignment on the CUDA Hamming k-means kernel where it runs (CUDA build and tensors,
// backend not Reference), else clustered_assign.
at::Tensor clustered_assign_dispatch(const at::Tensor& q, const ClusteredOptions& options,
                                     const ClusteredDraws& draws, Backend backend);

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

// The same functions on a fused attention kernel. clustered: the C centroids attend to all keys
// as one problem per (b, h). improved_clustered: the centroid weights in ATen (C x M), and the
// exact top-k part as problems of at most `topk_tile` members of one cluster attending to that
// cluster's top-k keys (clusters of any size, nothing masked; empty slots of a cluster's last
// tile are dropped).
at::Tensor clustered_attention_fused(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                     int64_t clusters, double scale, const at::Tensor& assignment,
                                     kernels::FusedKernel kernel);
at::Tensor improved_clustered_attention_fused(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                              int64_t clusters, int64_t topk, double scale,
                                              const at::Tensor& assignment, kernels::FusedKernel kernel,
                                              int64_t topk_tile = 64);

}  // namespace longgan::attention

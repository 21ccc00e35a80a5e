#pragma once
// CUDA fast paths of the attention types. Each computes exactly the function of its ATen
// reference in attention/ (the specification), given the same random draws and cluster
// assignment, and is differentiable (autograd function whose backward is a kernel too).
// Callers check *_kernel_supports first; the functions throw when it is false.
#include <ATen/ATen.h>

namespace longgan::kernels {

// SMYRF: q [B,H,N,Dqk], k [B,H,M,Dqk], v [B,H,M,Dv], projections [B,H,hashes,Dqk+2] fp32.
bool smyrf_kernel_supports(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);
at::Tensor smyrf_attention_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                int64_t q_cluster, int64_t k_cluster, double scale,
                                const at::Tensor& projections);

// Clustered: assignment of queries to clusters (int64 [B,H,N]) by Hamming k-means, and the
// attention of the clusters' centroids, plain and improved (top-k exact recomputation).
bool clustered_kernel_supports(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);
at::Tensor clustered_assign_cuda(const at::Tensor& q, const at::Tensor& hyperplanes, int64_t clusters,
                                 int64_t iterations);
at::Tensor clustered_attention_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                    int64_t clusters, double scale, const at::Tensor& assignment);
at::Tensor improved_clustered_attention_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                             int64_t clusters, int64_t topk, double scale,
                                             const at::Tensor& assignment);

}  // namespace longgan::kernels

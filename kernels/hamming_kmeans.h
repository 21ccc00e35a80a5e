#pragma once
// Hamming k-means of bit codes on CUDA (popcount): the one attention kernel of our own, since no
// library has it. attention/clustered.cpp holds its ATen reference, which makes the same choices.
#include <ATen/ATen.h>

namespace longgan::kernels {

// True when this build has the kernel and `codes` is a CUDA tensor.
bool hamming_kmeans_supports(const at::Tensor& codes);

// codes int64 [B, H, N] (bit b = hash bit b, bits <= 63), initial centroids int64 [B, H, C],
// reseed and ties int64 [iterations, B, H, C] (see hamming_kmeans_launch.h) -> the cluster of
// every code after `iterations` Lloyd steps: int64 [B, H, N]. std::invalid_argument when the
// shapes, dtypes or devices do not match or the build has no CUDA kernels.
at::Tensor hamming_kmeans_cuda(const at::Tensor& codes, const at::Tensor& initial_centroids,
                               const at::Tensor& reseed, const at::Tensor& ties, int64_t bits);

}  // namespace longgan::kernels

// Hamming k-means on bit codes with popcount (see hamming_kmeans_launch.h).
#include <cuda_runtime.h>

#include <climits>
#include <stdexcept>
#include <string>

#include "kernels/hamming_kmeans_launch.h"

namespace longgan::kernels {
namespace {

constexpr int kThreads = 128;
constexpr int kCentroidTile = 1024;  // centroids staged in shared memory at a time
constexpr int kScratchStride = 65;   // per cluster: member count, then one count per bit (<= 64 bits)

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

void check_launch(const char* what) {
  const cudaError_t error = cudaGetLastError();
  if (error != cudaSuccess) {
    throw std::runtime_error(std::string("kernels/hamming_kmeans ") + what + ": CUDA launch failed: " +
                             cudaGetErrorString(error));
  }
}

// Nearest centroid in Hamming distance, ties to the lowest index. Grid: (ceil(N/kThreads), BH).
__global__ void __launch_bounds__(kThreads)
    assign_kernel(const int64_t* codes, const int64_t* centroids, int64_t* assignment, int64_t n,
                  int64_t clusters) {
  __shared__ unsigned long long tile[kCentroidTile];
  const int64_t bh = blockIdx.y;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  const bool active = i < n;
  const unsigned long long code = active ? static_cast<unsigned long long>(codes[bh * n + i]) : 0ULL;
  int best_distance = INT_MAX;
  int64_t best = 0;
  for (int64_t c0 = 0; c0 < clusters; c0 += kCentroidTile) {
    const int count = static_cast<int>(clusters - c0 < kCentroidTile ? clusters - c0 : kCentroidTile);
    __syncthreads();
    for (int c = threadIdx.x; c < count; c += kThreads) {
      tile[c] = static_cast<unsigned long long>(centroids[bh * clusters + c0 + c]);
    }
    __syncthreads();
    for (int c = 0; c < count; ++c) {
      const int distance = __popcll(code ^ tile[c]);
      if (distance < best_distance) {  // strict: the lowest index wins ties
        best_distance = distance;
        best = c0 + c;
      }
    }
  }
  if (active) assignment[bh * n + i] = best;
}

// Member counts and per-bit counts of every cluster. Grid: (ceil(N/kThreads), BH).
__global__ void __launch_bounds__(kThreads)
    count_kernel(const int64_t* codes, const int64_t* assignment, int32_t* scratch, int64_t n, int64_t clusters,
                 int64_t bits) {
  const int64_t bh = blockIdx.y;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= n) return;
  const unsigned long long code = static_cast<unsigned long long>(codes[bh * n + i]);
  int32_t* counts = scratch + (bh * clusters + assignment[bh * n + i]) * kScratchStride;
  atomicAdd(counts, 1);
  for (int b = 0; b < bits; ++b) {
    if ((code >> b) & 1ULL) atomicAdd(counts + 1 + b, 1);
  }
}

// Bit-majority centroids; an even split takes the bit of `ties`, an empty cluster the code of
// `reseed`. One thread per (bh, cluster); reseed and ties point at this step's [BH, C].
__global__ void __launch_bounds__(kThreads)
    update_kernel(int64_t* centroids, const int32_t* scratch, const int64_t* reseed, const int64_t* ties,
                  int64_t total, int64_t bits) {
  const int64_t index = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (index >= total) return;
  const int32_t* counts = scratch + index * kScratchStride;
  const int32_t members = counts[0];
  if (members == 0) {
    centroids[index] = reseed[index];
    return;
  }
  const unsigned long long tie_bits = static_cast<unsigned long long>(ties[index]);
  unsigned long long centroid = 0ULL;
  for (int b = 0; b < bits; ++b) {
    const int32_t twice = 2 * counts[1 + b];
    if (twice > members || (twice == members && ((tie_bits >> b) & 1ULL))) centroid |= 1ULL << b;
  }
  centroids[index] = static_cast<int64_t>(centroid);
}

}  // namespace

void hamming_kmeans(const int64_t* codes, int64_t* centroids, int64_t* assignment, const int64_t* reseed,
                    const int64_t* ties, int32_t* scratch, int64_t bh, int64_t n, int64_t clusters, int64_t bits,
                    int64_t iterations, cudaStream_t stream) {
  if (bits < 1 || bits > 64) throw std::invalid_argument("kernels/hamming_kmeans: bits must be in [1, 64]");
  if (bh > 65535) throw std::invalid_argument("kernels/hamming_kmeans: batch x heads must be <= 65535");
  const dim3 query_grid(static_cast<unsigned>(ceil_div(n, kThreads)), static_cast<unsigned>(bh));
  const int64_t update_blocks = ceil_div(bh * clusters, kThreads);
  for (int64_t step = 0; step < iterations; ++step) {
    assign_kernel<<<query_grid, kThreads, 0, stream>>>(codes, centroids, assignment, n, clusters);
    check_launch("assign");
    const cudaError_t cleared = cudaMemsetAsync(scratch, 0, sizeof(int32_t) * bh * clusters * kScratchStride, stream);
    if (cleared != cudaSuccess) {
      throw std::runtime_error(std::string("kernels/hamming_kmeans: clearing the counts failed: ") +
                               cudaGetErrorString(cleared));
    }
    count_kernel<<<query_grid, kThreads, 0, stream>>>(codes, assignment, scratch, n, clusters, bits);
    check_launch("count");
    const int64_t offset = step * bh * clusters;
    update_kernel<<<static_cast<unsigned>(update_blocks), kThreads, 0, stream>>>(
        centroids, scratch, reseed + offset, ties + offset, bh * clusters, bits);
    check_launch("update");
  }
  assign_kernel<<<query_grid, kThreads, 0, stream>>>(codes, centroids, assignment, n, clusters);
  check_launch("assign");
}

}  // namespace longgan::kernels

// clustered / improved_clustered kernels: Hamming k-means on bit codes, and the exact softmax of
// each query over the top-k keys of its cluster (forward and backward). See launch.h.
#include <climits>
#include <cmath>

#include "kernels/kernel_common.cuh"

namespace longgan::kernels {
namespace {

using detail::to_float;

constexpr int kThreads = 128;
constexpr int kCentroidTile = 1024;  // centroids staged in shared memory at a time
constexpr int kScratchStride = 65;   // per cluster: member count, then one count per bit (<= 64 bits)

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

// Majority vote per bit; empty clusters keep their centroid. One thread per (bh, cluster).
__global__ void __launch_bounds__(kThreads)
    update_kernel(int64_t* centroids, const int32_t* scratch, int64_t total, int64_t bits) {
  const int64_t index = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (index >= total) return;
  const int32_t* counts = scratch + index * kScratchStride;
  const int32_t members = counts[0];
  if (members == 0) return;
  unsigned long long centroid = 0ULL;
  for (int b = 0; b < bits; ++b) {
    if (2 * counts[1 + b] > members) centroid |= 1ULL << b;
  }
  centroids[index] = static_cast<int64_t>(centroid);
}

// The query of a thread of the one-thread-per-query top-k kernels (grid: BH * ceil(N / kThreads)).
template <typename T>
struct TopkQuery {
  bool valid;
  int64_t bh, i;
  const T *q, *k, *v;   // this (b, h)
  const int64_t* keys;  // the top-k keys of the query's cluster
};
template <typename T>
__device__ __forceinline__ TopkQuery<T> topk_query(const TopkArgs& a) {
  const QkvArgs& p = a.qkv;
  const int64_t tiles = (p.n + kThreads - 1) / kThreads;
  TopkQuery<T> r;
  r.bh = blockIdx.x / tiles;
  r.i = (blockIdx.x % tiles) * kThreads + threadIdx.x;
  r.valid = r.i < p.n;
  r.q = static_cast<const T*>(p.q) + r.bh * p.n * p.dqk;
  r.k = static_cast<const T*>(p.k) + r.bh * p.m * p.dqk;
  r.v = static_cast<const T*>(p.v) + r.bh * p.m * p.dv;
  r.keys = r.valid ? a.topk_index + (r.bh * a.clusters + a.assignment[r.bh * p.n + r.i]) * a.topk : nullptr;
  return r;
}

// Exact softmax of query i over the top-k keys of its cluster. One thread per query.
template <typename T, int DQK, int DV>
__global__ void __launch_bounds__(kThreads) topk_forward_kernel(TopkArgs a, float* out, float* lse) {
  const QkvArgs& p = a.qkv;
  const TopkQuery<T> query = topk_query<T>(a);
  if (!query.valid) return;
  const int64_t bh = query.bh, i = query.i;
  const T *q = query.q, *k = query.k, *v = query.v;
  const int64_t* keys = query.keys;

  float qr[DQK], acc[DV];
  detail::load_row(qr, q, i, p.dqk, true);
#pragma unroll
  for (int d = 0; d < DV; ++d) acc[d] = 0.0f;
  float run_max = -INFINITY, run_sum = 0.0f;
#pragma unroll 1
  for (int64_t t = 0; t < a.topk; ++t) {
    const int64_t j = keys[t];
    float dot = 0.0f;
#pragma unroll
    for (int d = 0; d < DQK; ++d) {
      if (d < p.dqk) dot += qr[d] * to_float(k[j * p.dqk + d]);
    }
    const float s = dot * p.scale;
    if (s > run_max) {
      const float correction = expf(run_max - s);  // 0 for the first key
      run_sum *= correction;
#pragma unroll
      for (int d = 0; d < DV; ++d) acc[d] *= correction;
      run_max = s;
    }
    const float w = expf(s - run_max);
    run_sum += w;
#pragma unroll
    for (int d = 0; d < DV; ++d) {
      if (d < p.dv) acc[d] += w * to_float(v[j * p.dv + d]);
    }
  }
  detail::store_row(out + bh * p.n * p.dv, i, p.dv, acc, 1.0f / run_sum);
  lse[bh * p.n + i] = run_max + logf(run_sum);
}

// dq_i = scale * sum_t p_it (do_i . v_jt - delta_i) k_jt. One thread per query.
template <typename T, int DQK, int DV>
__global__ void __launch_bounds__(kThreads)
    topk_backward_dq_kernel(TopkArgs a, const float* grad_out, const float* lse, const float* delta, float* dq) {
  const QkvArgs& p = a.qkv;
  const TopkQuery<T> query = topk_query<T>(a);
  if (!query.valid) return;
  const int64_t bh = query.bh, i = query.i;
  const T *q = query.q, *k = query.k, *v = query.v;
  const int64_t* keys = query.keys;

  float qr[DQK], gr[DV], dqr[DQK];
  detail::load_row(qr, q, i, p.dqk, true);
  detail::load_row_f32(gr, grad_out + bh * p.n * p.dv, i, p.dv, true);
#pragma unroll
  for (int d = 0; d < DQK; ++d) dqr[d] = 0.0f;
  const float row_lse = lse[bh * p.n + i], row_delta = delta[bh * p.n + i];
#pragma unroll 1
  for (int64_t t = 0; t < a.topk; ++t) {
    const int64_t j = keys[t];
    float dot = 0.0f, dp = 0.0f;
#pragma unroll
    for (int d = 0; d < DQK; ++d) {
      if (d < p.dqk) dot += qr[d] * to_float(k[j * p.dqk + d]);
    }
#pragma unroll
    for (int d = 0; d < DV; ++d) {
      if (d < p.dv) dp += gr[d] * to_float(v[j * p.dv + d]);
    }
    const float ds = expf(dot * p.scale - row_lse) * (dp - row_delta);
#pragma unroll
    for (int d = 0; d < DQK; ++d) {
      if (d < p.dqk) dqr[d] += ds * to_float(k[j * p.dqk + d]);
    }
  }
  detail::store_row(dq + bh * p.n * p.dqk, i, p.dqk, dqr, p.scale);
}

// dk, dv of key slot t of cluster c, summed over the members of c, then added to the key's row
// (a key can be in the top-k of several clusters). One thread per (bh, cluster, slot).
template <typename T, int DQK, int DV>
__global__ void __launch_bounds__(kThreads)
    topk_backward_dkdv_kernel(TopkArgs a, const float* grad_out, const float* lse, const float* delta, float* dk,
                              float* dv) {
  const QkvArgs& p = a.qkv;
  const int64_t tiles = (a.topk + kThreads - 1) / kThreads;
  const int64_t bhc = blockIdx.x / tiles;
  const int64_t t = (blockIdx.x % tiles) * kThreads + threadIdx.x;
  if (t >= a.topk) return;
  const int64_t bh = bhc / a.clusters, c = bhc % a.clusters;
  const T* q = static_cast<const T*>(p.q) + bh * p.n * p.dqk;
  const T* k = static_cast<const T*>(p.k) + bh * p.m * p.dqk;
  const T* v = static_cast<const T*>(p.v) + bh * p.m * p.dv;
  const int64_t j = a.topk_index[bhc * a.topk + t];
  const int64_t* members = a.members + bh * p.n;
  const int64_t begin = a.member_offsets[bh * (a.clusters + 1) + c];
  const int64_t end = a.member_offsets[bh * (a.clusters + 1) + c + 1];

  float kr[DQK], vr[DV], dkr[DQK], dvr[DV];
  detail::load_row(kr, k, j, p.dqk, true);
  detail::load_row(vr, v, j, p.dv, true);
#pragma unroll
  for (int d = 0; d < DQK; ++d) dkr[d] = 0.0f;
#pragma unroll
  for (int d = 0; d < DV; ++d) dvr[d] = 0.0f;
#pragma unroll 1
  for (int64_t pos = begin; pos < end; ++pos) {
    const int64_t i = members[pos];
    const float* g = grad_out + (bh * p.n + i) * p.dv;
    float dot = 0.0f, dp = 0.0f;
#pragma unroll
    for (int d = 0; d < DQK; ++d) {
      if (d < p.dqk) dot += to_float(q[i * p.dqk + d]) * kr[d];
    }
#pragma unroll
    for (int d = 0; d < DV; ++d) {
      if (d < p.dv) dp += g[d] * vr[d];
    }
    const float prob = expf(dot * p.scale - lse[bh * p.n + i]);
    const float ds = prob * (dp - delta[bh * p.n + i]);
#pragma unroll
    for (int d = 0; d < DV; ++d) {
      if (d < p.dv) dvr[d] += prob * g[d];
    }
#pragma unroll
    for (int d = 0; d < DQK; ++d) {
      if (d < p.dqk) dkr[d] += ds * to_float(q[i * p.dqk + d]);
    }
  }
  if (begin == end) return;  // empty cluster: nothing to add
#pragma unroll
  for (int d = 0; d < DQK; ++d) {
    if (d < p.dqk) atomicAdd(dk + (bh * p.m + j) * p.dqk + d, dkr[d] * p.scale);
  }
#pragma unroll
  for (int d = 0; d < DV; ++d) {
    if (d < p.dv) atomicAdd(dv + (bh * p.m + j) * p.dv + d, dvr[d]);
  }
}

template <typename T, int DQK, int DV>
struct TopkForwardLauncher {
  static void run(const TopkArgs& a, float* out, float* lse, cudaStream_t stream) {
    const int64_t blocks = a.qkv.bh * detail::ceil_div(a.qkv.n, kThreads);
    detail::check_grid(blocks, "topk_attention");
    topk_forward_kernel<T, DQK, DV><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(a, out, lse);
    detail::check_launch("topk_attention_forward");
  }
};

template <typename T, int DQK, int DV>
struct TopkBackwardLauncher {
  static void run(const TopkArgs& a, const float* grad_out, const float* lse, const float* delta, float* dq,
                  float* dk, float* dv, cudaStream_t stream) {
    const int64_t query_blocks = a.qkv.bh * detail::ceil_div(a.qkv.n, kThreads);
    const int64_t key_blocks = a.qkv.bh * a.clusters * detail::ceil_div(a.topk, kThreads);
    detail::check_grid(query_blocks, "topk_attention");
    detail::check_grid(key_blocks, "topk_attention");
    topk_backward_dq_kernel<T, DQK, DV>
        <<<static_cast<unsigned>(query_blocks), kThreads, 0, stream>>>(a, grad_out, lse, delta, dq);
    detail::check_launch("topk_attention_backward_dq");
    topk_backward_dkdv_kernel<T, DQK, DV>
        <<<static_cast<unsigned>(key_blocks), kThreads, 0, stream>>>(a, grad_out, lse, delta, dk, dv);
    detail::check_launch("topk_attention_backward_dkdv");
  }
};

}  // namespace

void hamming_kmeans(const int64_t* codes, int64_t* centroids, int64_t* assignment, int32_t* scratch, int64_t bh,
                    int64_t n, int64_t clusters, int64_t bits, int64_t iterations, cudaStream_t stream) {
  if (bits < 1 || bits > 64) throw std::invalid_argument("kernels/hamming_kmeans: bits must be in [1, 64]");
  if (bh > 65535) throw std::invalid_argument("kernels/hamming_kmeans: batch x heads must be <= 65535");
  const dim3 query_grid(static_cast<unsigned>(detail::ceil_div(n, kThreads)), static_cast<unsigned>(bh));
  const int64_t update_blocks = detail::ceil_div(bh * clusters, kThreads);
  for (int64_t step = 0; step < iterations; ++step) {
    assign_kernel<<<query_grid, kThreads, 0, stream>>>(codes, centroids, assignment, n, clusters);
    detail::check_launch("hamming_kmeans assign");
    const cudaError_t cleared = cudaMemsetAsync(scratch, 0, sizeof(int32_t) * bh * clusters * kScratchStride, stream);
    if (cleared != cudaSuccess) {
      throw std::runtime_error(std::string("kernels/hamming_kmeans: clearing the counts failed: ") +
                               cudaGetErrorString(cleared));
    }
    count_kernel<<<query_grid, kThreads, 0, stream>>>(codes, assignment, scratch, n, clusters, bits);
    detail::check_launch("hamming_kmeans count");
    update_kernel<<<static_cast<unsigned>(update_blocks), kThreads, 0, stream>>>(centroids, scratch, bh * clusters,
                                                                                 bits);
    detail::check_launch("hamming_kmeans update");
  }
  assign_kernel<<<query_grid, kThreads, 0, stream>>>(codes, centroids, assignment, n, clusters);
  detail::check_launch("hamming_kmeans assign");
}

void topk_attention_forward(const TopkArgs& args, float* out, float* lse, cudaStream_t stream) {
  detail::dispatch<TopkForwardLauncher>(args.qkv, args, out, lse, stream);
}

void topk_attention_backward(const TopkArgs& args, const float* grad_out, const float* lse, const float* delta,
                             float* dq, float* dk, float* dv, cudaStream_t stream) {
  detail::dispatch<TopkBackwardLauncher>(args.qkv, args, grad_out, lse, delta, dq, dk, dv, stream);
}

}  // namespace longgan::kernels

// smyrf in-cluster attention, forward and backward (see launch.h for the layouts).
// One thread per query (forward, dq) or per key (dk, dv); the other side of the cluster is
// gathered tile by tile into shared memory through the sorted orders. Softmax in fp32 with a
// running maximum; nothing of size cluster x cluster is stored.
#include <cmath>

#include "kernels/kernel_common.cuh"

namespace longgan::kernels {
namespace {

using detail::to_float;

constexpr int kThreads = 128;  // queries (forward, dq) or keys (dk, dv) per block
constexpr int kTile = 32;      // keys (forward, dq) or queries (dk, dv) per shared-memory tile

// What a block and its threads work on: one (b, h, round), one cluster, and kThreads consecutive
// sorted positions of that cluster's queries (keys == false) or keys (keys == true).
template <typename T>
struct RoundBlock {
  int64_t bhr = 0, cluster = 0;
  bool past_end = false;  // the whole block lies past the last position (uniform over the block)
  bool active = false;    // this thread has a position
  int64_t row = 0;        // original index of this thread's query or key
  const T *q, *k, *v;     // this (b, h)
  const int32_t *q_order, *k_order;  // this (b, h, round)
};
template <typename T>
__device__ __forceinline__ RoundBlock<T> round_block(const SmyrfArgs& a, bool keys) {
  const QkvArgs& p = a.qkv;
  const int64_t size = keys ? a.k_cluster : a.q_cluster, length = keys ? p.m : p.n;
  const int64_t tiles = (size + kThreads - 1) / kThreads;
  int64_t block = blockIdx.x;
  const int64_t first = (block % tiles) * kThreads;  // position of thread 0 inside the cluster
  block /= tiles;
  RoundBlock<T> r;
  r.cluster = block % a.clusters;
  r.bhr = block / a.clusters;
  const int64_t bh = r.bhr / a.rounds;
  r.q = static_cast<const T*>(p.q) + bh * p.n * p.dqk;
  r.k = static_cast<const T*>(p.k) + bh * p.m * p.dqk;
  r.v = static_cast<const T*>(p.v) + bh * p.m * p.dv;
  r.q_order = a.q_order + r.bhr * p.n;
  r.k_order = a.k_order + r.bhr * p.m;
  r.past_end = r.cluster * size + first >= length;
  const int64_t in_cluster = first + threadIdx.x, pos = r.cluster * size + in_cluster;
  r.active = in_cluster < size && pos < length;
  r.row = r.active ? (keys ? r.k_order : r.q_order)[pos] : 0;
  return r;
}

// Gathers rows order[begin + j] (j < count) of src [rows, width] into dst[kTile][D], zero elsewhere.
template <typename T, int D>
__device__ __forceinline__ void gather_tile(float (&dst)[kTile][D], const T* src, const int32_t* order,
                                            int64_t begin, int count, int64_t width) {
  for (int idx = threadIdx.x; idx < kTile * D; idx += kThreads) {
    const int j = idx / D, d = idx % D;
    dst[j][d] = (j < count && d < width) ? to_float(src[static_cast<int64_t>(order[begin + j]) * width + d]) : 0.0f;
  }
}
__device__ __forceinline__ void gather_scalars(float (&dst)[kTile], const float* src, const int32_t* order,
                                               int64_t begin, int count) {
  for (int j = threadIdx.x; j < kTile; j += kThreads) dst[j] = j < count ? src[order[begin + j]] : 0.0f;
}

template <typename T, int DQK, int DV>
__global__ void __launch_bounds__(kThreads) smyrf_forward_kernel(SmyrfArgs a, float* out_r, float* lse_r) {
  __shared__ float ks[kTile][DQK];
  __shared__ float vs[kTile][DV];
  __shared__ float scores[kTile][kThreads];
  const QkvArgs& p = a.qkv;
  const RoundBlock<T> blk = round_block<T>(a, /*keys=*/false);
  if (blk.past_end) return;
  const bool active = blk.active;
  const int64_t qi = blk.row;
  const T *q = blk.q, *k = blk.k, *v = blk.v;
  const int32_t* k_order = blk.k_order;
  float qr[DQK];
  detail::load_row(qr, q, qi, p.dqk, active);
  float acc[DV];
#pragma unroll
  for (int d = 0; d < DV; ++d) acc[d] = 0.0f;
  float run_max = -INFINITY, run_sum = 0.0f;

  const int64_t kbegin = blk.cluster * a.k_cluster;
  const int64_t kend = kbegin + a.k_cluster < p.m ? kbegin + a.k_cluster : p.m;  // kbegin < M always
  for (int64_t k0 = kbegin; k0 < kend; k0 += kTile) {
    const int count = static_cast<int>(kend - k0 < kTile ? kend - k0 : kTile);
    __syncthreads();  // the previous tile is consumed
    gather_tile(ks, k, k_order, k0, count, p.dqk);
    gather_tile(vs, v, k_order, k0, count, p.dv);
    __syncthreads();
    if (!active) continue;
    // Scores of this tile, one column per thread (conflict-free), then one rescale per tile.
    float tile_max = -INFINITY;
#pragma unroll 1
    for (int j = 0; j < count; ++j) {
      float dot = 0.0f;
#pragma unroll
      for (int d = 0; d < DQK; ++d) dot += qr[d] * ks[j][d];
      scores[j][threadIdx.x] = dot * p.scale;
      tile_max = fmaxf(tile_max, dot * p.scale);
    }
    const float new_max = fmaxf(run_max, tile_max);  // finite: count >= 1
    const float correction = expf(run_max - new_max);  // 0 on the first tile
    run_sum *= correction;
#pragma unroll
    for (int d = 0; d < DV; ++d) acc[d] *= correction;
#pragma unroll 1
    for (int j = 0; j < count; ++j) {
      const float w = expf(scores[j][threadIdx.x] - new_max);
      run_sum += w;
#pragma unroll
      for (int d = 0; d < DV; ++d) acc[d] += w * vs[j][d];
    }
    run_max = new_max;
  }
  if (!active) return;
  detail::store_row(out_r + blk.bhr * p.n * p.dv, qi, p.dv, acc, 1.0f / run_sum);
  lse_r[blk.bhr * p.n + qi] = run_max + logf(run_sum);
}

// dq_i = scale * sum_j p_ij (do_i . v_j - delta_i) k_j over the key cluster of i.
template <typename T, int DQK, int DV>
__global__ void __launch_bounds__(kThreads)
    smyrf_backward_dq_kernel(SmyrfArgs a, const float* grad_out_r, const float* lse_r, const float* delta_r,
                             float* dq_r) {
  __shared__ float ks[kTile][DQK];
  __shared__ float vs[kTile][DV];
  const QkvArgs& p = a.qkv;
  const RoundBlock<T> blk = round_block<T>(a, /*keys=*/false);
  if (blk.past_end) return;
  const bool active = blk.active;
  const int64_t qi = blk.row;
  const T *q = blk.q, *k = blk.k, *v = blk.v;
  const int32_t* k_order = blk.k_order;
  float qr[DQK], gr[DV], dq[DQK];
  detail::load_row(qr, q, qi, p.dqk, active);
  detail::load_row_f32(gr, grad_out_r + blk.bhr * p.n * p.dv, qi, p.dv, active);
#pragma unroll
  for (int d = 0; d < DQK; ++d) dq[d] = 0.0f;
  const float lse = active ? lse_r[blk.bhr * p.n + qi] : 0.0f;
  const float delta = active ? delta_r[blk.bhr * p.n + qi] : 0.0f;

  const int64_t kbegin = blk.cluster * a.k_cluster;
  const int64_t kend = kbegin + a.k_cluster < p.m ? kbegin + a.k_cluster : p.m;
  for (int64_t k0 = kbegin; k0 < kend; k0 += kTile) {
    const int count = static_cast<int>(kend - k0 < kTile ? kend - k0 : kTile);
    __syncthreads();
    gather_tile(ks, k, k_order, k0, count, p.dqk);
    gather_tile(vs, v, k_order, k0, count, p.dv);
    __syncthreads();
    if (!active) continue;
#pragma unroll 1
    for (int j = 0; j < count; ++j) {
      float dot = 0.0f, dp = 0.0f;
#pragma unroll
      for (int d = 0; d < DQK; ++d) dot += qr[d] * ks[j][d];
#pragma unroll
      for (int d = 0; d < DV; ++d) dp += gr[d] * vs[j][d];
      const float ds = expf(dot * p.scale - lse) * (dp - delta);
#pragma unroll
      for (int d = 0; d < DQK; ++d) dq[d] += ds * ks[j][d];
    }
  }
  if (!active) return;
  detail::store_row(dq_r + blk.bhr * p.n * p.dqk, qi, p.dqk, dq, p.scale);
}

// dv_j = sum_i p_ij do_i and dk_j = scale * sum_i p_ij (do_i . v_j - delta_i) q_i over the query cluster of j.
template <typename T, int DQK, int DV>
__global__ void __launch_bounds__(kThreads)
    smyrf_backward_dkdv_kernel(SmyrfArgs a, const float* grad_out_r, const float* lse_r, const float* delta_r,
                               float* dk_r, float* dv_r) {
  __shared__ float qs[kTile][DQK];
  __shared__ float gs[kTile][DV];
  __shared__ float lses[kTile];
  __shared__ float deltas[kTile];
  const QkvArgs& p = a.qkv;
  const RoundBlock<T> blk = round_block<T>(a, /*keys=*/true);
  if (blk.past_end) return;
  const bool active = blk.active;
  const int64_t kj = blk.row;
  const T *q = blk.q, *k = blk.k, *v = blk.v;
  const int32_t* q_order = blk.q_order;
  const float* grad_out = grad_out_r + blk.bhr * p.n * p.dv;
  float kr[DQK], vr[DV], dk[DQK], dv[DV];
  detail::load_row(kr, k, kj, p.dqk, active);
  detail::load_row(vr, v, kj, p.dv, active);
#pragma unroll
  for (int d = 0; d < DQK; ++d) dk[d] = 0.0f;
#pragma unroll
  for (int d = 0; d < DV; ++d) dv[d] = 0.0f;

  const int64_t qbegin = blk.cluster * a.q_cluster;  // < N always
  const int64_t qend = qbegin + a.q_cluster < p.n ? qbegin + a.q_cluster : p.n;
  for (int64_t q0 = qbegin; q0 < qend; q0 += kTile) {
    const int count = static_cast<int>(qend - q0 < kTile ? qend - q0 : kTile);
    __syncthreads();
    gather_tile(qs, q, q_order, q0, count, p.dqk);
    for (int idx = threadIdx.x; idx < kTile * DV; idx += kThreads) {
      const int i = idx / DV, d = idx % DV;
      gs[i][d] = (i < count && d < p.dv) ? grad_out[static_cast<int64_t>(q_order[q0 + i]) * p.dv + d] : 0.0f;
    }
    gather_scalars(lses, lse_r + blk.bhr * p.n, q_order, q0, count);
    gather_scalars(deltas, delta_r + blk.bhr * p.n, q_order, q0, count);
    __syncthreads();
    if (!active) continue;
#pragma unroll 1
    for (int i = 0; i < count; ++i) {
      float dot = 0.0f, dp = 0.0f;
#pragma unroll
      for (int d = 0; d < DQK; ++d) dot += qs[i][d] * kr[d];
#pragma unroll
      for (int d = 0; d < DV; ++d) dp += gs[i][d] * vr[d];
      const float prob = expf(dot * p.scale - lses[i]);
      const float ds = prob * (dp - deltas[i]);
#pragma unroll
      for (int d = 0; d < DV; ++d) dv[d] += prob * gs[i][d];
#pragma unroll
      for (int d = 0; d < DQK; ++d) dk[d] += ds * qs[i][d];
    }
  }
  if (!active) return;
  detail::store_row(dk_r + blk.bhr * p.m * p.dqk, kj, p.dqk, dk, p.scale);
  detail::store_row(dv_r + blk.bhr * p.m * p.dv, kj, p.dv, dv, 1.0f);
}

int64_t cluster_blocks(const SmyrfArgs& a, int64_t cluster_size) {
  const int64_t blocks = a.qkv.bh * a.rounds * a.clusters * detail::ceil_div(cluster_size, kThreads);
  detail::check_grid(blocks, "smyrf");
  return blocks;
}

template <typename T, int DQK, int DV>
struct ForwardLauncher {
  static void run(const SmyrfArgs& a, float* out_r, float* lse_r, cudaStream_t stream) {
    smyrf_forward_kernel<T, DQK, DV>
        <<<static_cast<unsigned>(cluster_blocks(a, a.q_cluster)), kThreads, 0, stream>>>(a, out_r, lse_r);
    detail::check_launch("smyrf_forward");
  }
};

template <typename T, int DQK, int DV>
struct BackwardLauncher {
  static void run(const SmyrfArgs& a, const float* grad_out_r, const float* lse_r, const float* delta_r,
                  float* dq_r, float* dk_r, float* dv_r, cudaStream_t stream) {
    smyrf_backward_dq_kernel<T, DQK, DV><<<static_cast<unsigned>(cluster_blocks(a, a.q_cluster)), kThreads, 0,
                                           stream>>>(a, grad_out_r, lse_r, delta_r, dq_r);
    detail::check_launch("smyrf_backward_dq");
    smyrf_backward_dkdv_kernel<T, DQK, DV><<<static_cast<unsigned>(cluster_blocks(a, a.k_cluster)), kThreads, 0,
                                             stream>>>(a, grad_out_r, lse_r, delta_r, dk_r, dv_r);
    detail::check_launch("smyrf_backward_dkdv");
  }
};

void check_clusters(const SmyrfArgs& a) {
  const QkvArgs& p = a.qkv;
  if (a.clusters != detail::ceil_div(p.n, a.q_cluster) || a.clusters != detail::ceil_div(p.m, a.k_cluster)) {
    throw std::invalid_argument("kernels/smyrf: clusters=" + std::to_string(a.clusters) +
                                " must equal ceil(N/q_cluster) and ceil(M/k_cluster)");
  }
  if (p.n > 2147483647LL || p.m > 2147483647LL) {
    throw std::invalid_argument("kernels/smyrf: N and M must fit int32 (sorted orders are int32)");
  }
}

}  // namespace

void smyrf_forward(const SmyrfArgs& args, float* out_r, float* lse_r, cudaStream_t stream) {
  check_clusters(args);
  detail::dispatch<ForwardLauncher>(args.qkv, args, out_r, lse_r, stream);
}

void smyrf_backward(const SmyrfArgs& args, const float* grad_out_r, const float* lse_r, const float* delta_r,
                    float* dq_r, float* dk_r, float* dv_r, cudaStream_t stream) {
  check_clusters(args);
  detail::dispatch<BackwardLauncher>(args.qkv, args, grad_out_r, lse_r, delta_r, dq_r, dk_r, dv_r, stream);
}

}  // namespace longgan::kernels

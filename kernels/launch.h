#pragma once
// Launch functions of the CUDA kernels: raw device pointers, sizes and a stream, no torch.
// Included by the .cu files and, in CUDA builds only, by their .cpp wrappers.
// Every tensor is contiguous; [BH, ...] means batch and heads flattened (b * H + h).
#include <cuda_runtime_api.h>

#include <cstdint>

namespace longgan::kernels {

// Element type of the q, k, v inputs; kernels read them as fp32 and compute in fp32.
enum class ElementType { Float32, BFloat16 };

// Head-dimension limits of the kernels (register tiles are sized by buckets up to these).
inline constexpr int64_t kMaxDqk = 64;
inline constexpr int64_t kMaxDv = 128;

// Inputs shared by the attention kernels: q [BH, N, Dqk], k [BH, M, Dqk], v [BH, M, Dv].
struct QkvArgs {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  ElementType type = ElementType::Float32;
  int64_t bh = 0, n = 0, m = 0, dqk = 0, dv = 0;
  float scale = 1.0f;
};

// smyrf: per hash round r, q_order/k_order [BH, R, N] / [BH, R, M] hold the original index
// of each sorted position. Query cluster c (sorted positions [c*q_cluster, (c+1)*q_cluster) within N)
// attends exactly to key cluster c (sorted positions [c*k_cluster, (c+1)*k_cluster) within M).
struct SmyrfArgs {
  QkvArgs qkv;
  const int32_t* q_order = nullptr;
  const int32_t* k_order = nullptr;
  int64_t rounds = 0, q_cluster = 0, k_cluster = 0, clusters = 0;
};

// out_r [BH, R, N, Dv] and lse_r [BH, R, N] (fp32), in the original query order.
void smyrf_forward(const SmyrfArgs& args, float* out_r, float* lse_r, cudaStream_t stream);
// grad_out_r [BH, R, N, Dv]; delta_r [BH, R, N] = sum_d grad_out_r * out_r - grad_lse_r.
// Writes every element of dq_r [BH, R, N, Dqk], dk_r [BH, R, M, Dqk], dv_r [BH, R, M, Dv] (fp32).
void smyrf_backward(const SmyrfArgs& args, const float* grad_out_r, const float* lse_r, const float* delta_r,
                    float* dq_r, float* dk_r, float* dv_r, cudaStream_t stream);

// Hamming k-means. codes [BH, N] (bit b of a code = hash bit b), centroids [BH, C] in/out
// (initial centroids given), assignment [BH, N] out. `iterations` Lloyd steps then a final assignment.
// scratch: int32 [BH, C, 65] workspace (member count and per-bit counts).
void hamming_kmeans(const int64_t* codes, int64_t* centroids, int64_t* assignment, int32_t* scratch,
                    int64_t bh, int64_t n, int64_t clusters, int64_t bits, int64_t iterations,
                    cudaStream_t stream);

// improved_clustered exact part: query i of cluster c = assignment[i] attends with a softmax over
// the keys topk_index [BH, C, K] of its cluster. out [BH, N, Dv], lse [BH, N] (fp32).
struct TopkArgs {
  QkvArgs qkv;
  const int64_t* assignment = nullptr;   // [BH, N]
  const int64_t* topk_index = nullptr;   // [BH, C, K]
  const int64_t* members = nullptr;      // [BH, N]: queries sorted by cluster (backward only)
  const int64_t* member_offsets = nullptr;  // [BH, C + 1]: cluster c is members[off[c], off[c+1]) (backward)
  int64_t clusters = 0, topk = 0;
};
void topk_attention_forward(const TopkArgs& args, float* out, float* lse, cudaStream_t stream);
// delta [BH, N] = sum_d grad_out * out. dq [BH, N, Dqk] is written; dk [BH, M, Dqk] and
// dv [BH, M, Dv] are accumulated into (the caller zeroes them).
void topk_attention_backward(const TopkArgs& args, const float* grad_out, const float* lse, const float* delta,
                             float* dq, float* dk, float* dv, cudaStream_t stream);

}  // namespace longgan::kernels

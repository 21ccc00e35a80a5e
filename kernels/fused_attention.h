#pragma once
// Batched exact attention on the fused kernels LibTorch ships: a forward that returns each
// query's log-sum-exp and the backward that goes with it. The efficient attention types gather
// their clusters into such batches (attention/gathered_attention.h); this file only picks and
// calls the library kernel, with one plain-ATen kernel for what no library kernel serves.
#include <ATen/ATen.h>

namespace longgan::kernels {

enum class FusedKernel {
  CpuFlash,       // at::_scaled_dot_product_flash_attention_for_cpu; q, k, v zero-padded to one width
  CudaEfficient,  // at::_scaled_dot_product_efficient_attention (cutlass memory-efficient kernel)
  Math,           // plain ATen, materialising each problem's L x S logits: any device and dtype
};

// "cpu_flash", "cuda_efficient", "math".
const char* fused_kernel_name(FusedKernel kernel);

// The library kernel for inputs of q's device and dtype; Math where none applies (CUDA fp64).
FusedKernel library_kernel_for(const at::Tensor& q);
bool has_library_kernel(const at::Tensor& q);

// What a forward call leaves for its backward.
struct FusedForward {
  at::Tensor out;  // [P, H, L, Dv] in the inputs' dtype
  at::Tensor lse;  // [P, H, L]: log-sum-exp of each query's scaled logits (fp32; fp64 for fp64 inputs)
  FusedKernel kernel = FusedKernel::Math;
  // The CUDA kernel's random-number state (no dropout here; its backward takes them anyway).
  at::Tensor philox_seed, philox_offset;
};

// q [P, H, L, Dqk], k [P, H, S, Dqk], v [P, H, S, Dv] -> softmax(q k^T * scale) v for each of the P
// independent problems and H heads. L, S >= 1.
FusedForward fused_attention_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale,
                                     FusedKernel kernel);

struct FusedGradients {
  at::Tensor dq, dk, dv;  // the inputs' shapes and dtype
};

// The backward of `forward` with the caller's `out`, `grad_out` [P, H, L, Dv] and forward.lse:
//   P = exp(q k^T * scale - forward.lse), dS = P * (grad_out v^T - rowsum(grad_out * out)),
//   dq = dS k * scale, dk = dS^T q * scale, dv = P^T grad_out.
// With the forward's own out and lse this is the gradient of the attention; SMYRF passes its merged
// output and merged log-sum-exp to differentiate the merge of its hash rounds exactly
// (attention/smyrf.h).
FusedGradients fused_attention_backward(const at::Tensor& grad_out, const at::Tensor& q, const at::Tensor& k,
                                        const at::Tensor& v, const at::Tensor& out, const FusedForward& forward,
                                        double scale);

// The most problems one call of `kernel` takes (CUDA grids: 65,535); larger batches are split into
// calls of at most this many, forward and backward alike. Unlimited (INT64_MAX) on the CPU.
int64_t max_problems_per_call(FusedKernel kernel);

// Lowers every kernel's limit to `limit` for its lifetime, so that tests cover the split on the CPU.
class ScopedProblemLimitForTesting {
 public:
  explicit ScopedProblemLimitForTesting(int64_t limit);
  ~ScopedProblemLimitForTesting();
  ScopedProblemLimitForTesting(const ScopedProblemLimitForTesting&) = delete;
  ScopedProblemLimitForTesting& operator=(const ScopedProblemLimitForTesting&) = delete;

 private:
  int64_t previous_;
};

}  // namespace longgan::kernels

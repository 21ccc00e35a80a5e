#include "kernels/fused_attention.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace longgan::kernels {
namespace {

at::Tensor pad_width(const at::Tensor& t, int64_t width) {
  return t.size(-1) == width ? t : at::constant_pad_nd(t, {0, width - t.size(-1)});
}

int64_t round_up(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

// Softmax statistics of bf16/fp16 inputs are accumulated in fp32, of fp64 inputs in fp64.
at::ScalarType accumulate_type(const at::Tensor& t) {
  return t.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

bool is_float_type(at::ScalarType type) {
  return type == at::kFloat || type == at::kDouble || type == at::kBFloat16 || type == at::kHalf;
}

void check_inputs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  const bool ok = q.dim() == 4 && k.dim() == 4 && v.dim() == 4 && k.size(0) == q.size(0) && v.size(0) == q.size(0) &&
                  k.size(1) == q.size(1) && v.size(1) == q.size(1) && k.size(2) == v.size(2) &&
                  k.size(3) == q.size(3) && q.size(2) > 0 && k.size(2) > 0 && q.scalar_type() == k.scalar_type() &&
                  q.scalar_type() == v.scalar_type() && is_float_type(q.scalar_type());
  if (!ok) {
    throw std::invalid_argument(
        "fused attention: expected floating q [P,H,L,Dqk], k [P,H,S,Dqk], v [P,H,S,Dv] of one dtype with L, S >= 1, "
        "got q " + c10::str(q.sizes(), " ", q.scalar_type()) + ", k " + c10::str(k.sizes(), " ", k.scalar_type()) +
        ", v " + c10::str(v.sizes(), " ", v.scalar_type()));
  }
}

// Gradients of zero-padded inputs, cut back to the widths of q, k and v.
FusedGradients unpadded(const at::Tensor& dq, const at::Tensor& dk, const at::Tensor& dv, const at::Tensor& q,
                        const at::Tensor& k, const at::Tensor& v) {
  return {dq.narrow(-1, 0, q.size(3)), dk.narrow(-1, 0, k.size(3)), dv.narrow(-1, 0, v.size(3))};
}

// --- CPU flash: one head width for q, k and v; zero columns change no logit and no output column
// that is kept.
FusedForward cpu_flash_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale) {
  const int64_t width = std::max(q.size(3), v.size(3));
  auto [out, lse] = at::_scaled_dot_product_flash_attention_for_cpu(
      pad_width(q, width), pad_width(k, width), pad_width(v, width), 0.0, false, std::nullopt, scale);
  return {.out = out.narrow(-1, 0, v.size(3)), .lse = lse, .kernel = FusedKernel::CpuFlash};
}

FusedGradients cpu_flash_backward(const at::Tensor& grad_out, const at::Tensor& q, const at::Tensor& k,
                                  const at::Tensor& v, const at::Tensor& out, const FusedForward& forward,
                                  double scale) {
  const int64_t width = std::max(q.size(3), v.size(3));
  auto [dq, dk, dv] = at::_scaled_dot_product_flash_attention_for_cpu_backward(
      pad_width(grad_out, width), pad_width(q, width), pad_width(k, width), pad_width(v, width), pad_width(out, width),
      forward.lse.contiguous(), 0.0, false, std::nullopt, scale);
  return unpadded(dq, dk, dv, q, k, v);
}

// --- CUDA memory-efficient: head widths padded to 8 elements for the aligned kernels; the kernel
// keeps its log-sum-exp with the query length padded to a multiple of 32 and reads whole blocks of it.
constexpr int64_t kCudaWidthMultiple = 8;
constexpr int64_t kCudaLseMultiple = 32;

FusedForward cuda_efficient_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale) {
  const int64_t dqk = round_up(q.size(3), kCudaWidthMultiple), dv = round_up(v.size(3), kCudaWidthMultiple);
  auto [out, lse, seed, offset] = at::_scaled_dot_product_efficient_attention(
      pad_width(q, dqk).contiguous(), pad_width(k, dqk).contiguous(), pad_width(v, dv).contiguous(), std::nullopt,
      /*compute_log_sumexp=*/true, 0.0, false, scale);
  return {.out = out.narrow(-1, 0, v.size(3)),
          .lse = lse.narrow(-1, 0, q.size(2)),
          .kernel = FusedKernel::CudaEfficient,
          .philox_seed = seed,
          .philox_offset = offset};
}

// forward.lse [P, H, L] as the kernel keeps it: length padded to 32 with +inf (exp(s - inf) = 0, so
// the padded rows, which the kernel reads but never writes back, contribute nothing).
at::Tensor cuda_kernel_lse(const at::Tensor& lse) {
  const int64_t length = lse.size(-1), padded = round_up(length, kCudaLseMultiple);
  if (padded == length && lse.is_contiguous()) return lse;
  auto kernel_lse = at::full({lse.size(0), lse.size(1), padded}, std::numeric_limits<float>::infinity(),
                             lse.options().dtype(at::kFloat));
  kernel_lse.narrow(-1, 0, length).copy_(lse);
  return kernel_lse;
}

FusedGradients cuda_efficient_backward(const at::Tensor& grad_out, const at::Tensor& q, const at::Tensor& k,
                                       const at::Tensor& v, const at::Tensor& out, const FusedForward& forward,
                                       double scale) {
  const int64_t dqk = round_up(q.size(3), kCudaWidthMultiple), dv = round_up(v.size(3), kCudaWidthMultiple);
  auto [dq, dk, dvv, dbias] = at::_scaled_dot_product_efficient_attention_backward(
      pad_width(grad_out, dv).contiguous(), pad_width(q, dqk).contiguous(), pad_width(k, dqk).contiguous(),
      pad_width(v, dv).contiguous(), at::Tensor(), pad_width(out, dv).contiguous(), cuda_kernel_lse(forward.lse),
      forward.philox_seed, forward.philox_offset, 0.0, {true, true, true, false}, false, scale);
  return unpadded(dq, dk, dvv, q, k, v);
}

// --- Math: the same two functions in ATen ops, statistics in the accumulate type.
FusedForward math_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale) {
  const auto type = accumulate_type(q);
  auto logits = at::matmul(q.to(type), k.to(type).transpose(-1, -2)) * scale;
  auto lse = at::logsumexp(logits, -1);
  return {.out = at::matmul(at::exp(logits - lse.unsqueeze(-1)), v.to(type)).to(q.scalar_type()),
          .lse = lse,
          .kernel = FusedKernel::Math};
}

FusedGradients math_backward(const at::Tensor& grad_out, const at::Tensor& q, const at::Tensor& k,
                             const at::Tensor& v, const at::Tensor& out, const FusedForward& forward, double scale) {
  const auto type = accumulate_type(q);
  auto qa = q.to(type), ka = k.to(type), va = v.to(type), go = grad_out.to(type);
  auto probabilities = at::exp(at::matmul(qa, ka.transpose(-1, -2)) * scale - forward.lse.to(type).unsqueeze(-1));
  auto delta = (go * out.to(type)).sum(-1, /*keepdim=*/true);
  auto ds = probabilities * (at::matmul(go, va.transpose(-1, -2)) - delta);
  const auto dtype = q.scalar_type();
  return {(at::matmul(ds, ka) * scale).to(dtype), (at::matmul(ds.transpose(-1, -2), qa) * scale).to(dtype),
          at::matmul(probabilities.transpose(-1, -2), go).to(dtype)};
}

FusedForward forward_call(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale,
                          FusedKernel kernel) {
  switch (kernel) {
    case FusedKernel::CpuFlash: return cpu_flash_forward(q, k, v, scale);
    case FusedKernel::CudaEfficient: return cuda_efficient_forward(q, k, v, scale);
    default: return math_forward(q, k, v, scale);
  }
}

FusedGradients backward_call(const at::Tensor& grad_out, const at::Tensor& q, const at::Tensor& k,
                             const at::Tensor& v, const at::Tensor& out, const FusedForward& forward, double scale) {
  switch (forward.kernel) {
    case FusedKernel::CpuFlash: return cpu_flash_backward(grad_out, q, k, v, out, forward, scale);
    case FusedKernel::CudaEfficient: return cuda_efficient_backward(grad_out, q, k, v, out, forward, scale);
    default: return math_backward(grad_out, q, k, v, out, forward, scale);
  }
}

// CUDA grids hold at most 65,535 blocks in the dimension the memory-efficient kernel puts the
// batch in. The test hook lowers every limit (0: none set).
constexpr int64_t kCudaMaxProblems = 65535;
std::atomic<int64_t> problem_limit_for_testing{0};

// Start and size of each call over `problems` problems, at most `limit` per call.
std::vector<std::pair<int64_t, int64_t>> problem_chunks(int64_t problems, int64_t limit) {
  std::vector<std::pair<int64_t, int64_t>> chunks;
  for (int64_t start = 0; start < problems; start += limit) chunks.emplace_back(start, std::min(limit, problems - start));
  return chunks;
}

}  // namespace

int64_t max_problems_per_call(FusedKernel kernel) {
  const int64_t own = kernel == FusedKernel::CudaEfficient ? kCudaMaxProblems : std::numeric_limits<int64_t>::max();
  const int64_t test = problem_limit_for_testing.load();
  return test > 0 ? std::min(own, test) : own;
}

namespace {
int64_t install_problem_limit(int64_t limit) {
  if (limit < 1) throw std::invalid_argument("ScopedProblemLimitForTesting: limit must be >= 1");
  return problem_limit_for_testing.exchange(limit);
}
}  // namespace

ScopedProblemLimitForTesting::ScopedProblemLimitForTesting(int64_t limit)
    : previous_(install_problem_limit(limit)) {}

ScopedProblemLimitForTesting::~ScopedProblemLimitForTesting() { problem_limit_for_testing.store(previous_); }

const char* fused_kernel_name(FusedKernel kernel) {
  switch (kernel) {
    case FusedKernel::CpuFlash: return "cpu_flash";
    case FusedKernel::CudaEfficient: return "cuda_efficient";
    default: return "math";
  }
}

bool has_library_kernel(const at::Tensor& q) {
  const auto type = q.scalar_type();
  if (q.is_cpu()) return is_float_type(type);
  if (q.is_cuda()) return type == at::kFloat || type == at::kBFloat16 || type == at::kHalf;
  return false;
}

FusedKernel library_kernel_for(const at::Tensor& q) {
  if (!has_library_kernel(q)) return FusedKernel::Math;
  return q.is_cuda() ? FusedKernel::CudaEfficient : FusedKernel::CpuFlash;
}

FusedForward fused_attention_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale,
                                     FusedKernel kernel) {
  check_inputs(q, k, v);
  const int64_t limit = max_problems_per_call(kernel);
  if (q.size(0) <= limit) return forward_call(q, k, v, scale, kernel);
  std::vector<at::Tensor> outs, lses;
  FusedForward chunk;
  for (auto [start, size] : problem_chunks(q.size(0), limit)) {
    chunk = forward_call(q.narrow(0, start, size), k.narrow(0, start, size), v.narrow(0, start, size), scale, kernel);
    outs.push_back(chunk.out);
    lses.push_back(chunk.lse);
  }
  chunk.out = at::cat(outs);
  chunk.lse = at::cat(lses);
  return chunk;  // no dropout: the philox state of any chunk will do
}

FusedGradients fused_attention_backward(const at::Tensor& grad_out, const at::Tensor& q, const at::Tensor& k,
                                        const at::Tensor& v, const at::Tensor& out, const FusedForward& forward,
                                        double scale) {
  check_inputs(q, k, v);
  const int64_t limit = max_problems_per_call(forward.kernel);
  if (q.size(0) <= limit) return backward_call(grad_out, q, k, v, out, forward, scale);
  std::vector<at::Tensor> dq, dk, dv;
  for (auto [start, size] : problem_chunks(q.size(0), limit)) {
    FusedForward chunk = forward;
    chunk.lse = forward.lse.narrow(0, start, size);
    auto g = backward_call(grad_out.narrow(0, start, size), q.narrow(0, start, size), k.narrow(0, start, size),
                           v.narrow(0, start, size), out.narrow(0, start, size), chunk, scale);
    dq.push_back(g.dq);
    dk.push_back(g.dk);
    dv.push_back(g.dv);
  }
  return {at::cat(dq), at::cat(dk), at::cat(dv)};
}

}  // namespace longgan::kernels

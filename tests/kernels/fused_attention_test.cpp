// The fused-kernel wrappers against the formulas they compute: forward output and log-sum-exp, and
// the backward with a caller-chosen `out` and `grad_out` (what SMYRF's round merge relies on).
// CPU kernels on every run; the CUDA kernel on a GPU.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <ATen/CPUGeneratorImpl.h>

#include <string>

#include "kernels/fused_attention.h"

namespace longgan::kernels {
namespace {

at::Tensor randn(at::IntArrayRef sizes, uint64_t seed, at::ScalarType type, at::Device device) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randn(sizes, gen, at::TensorOptions().dtype(at::kFloat)).to(device, type);
}

double max_relative(const at::Tensor& got, const at::Tensor& want) {
  auto g = got.detach().cpu().to(at::kDouble), w = want.detach().cpu().to(at::kDouble);
  EXPECT_EQ(g.sizes(), w.sizes());
  return (g - w).abs().max().item<double>() / std::max(1e-30, w.abs().max().item<double>());
}

struct Case {
  int64_t problems, heads, l, s, dqk, dv;
};

// Forward and backward of `kernel` against the formulas in float64 on the same (rounded) inputs.
void check_kernel(FusedKernel kernel, at::ScalarType type, at::Device device, const Case& c, double tolerance) {
  const std::string what = std::string(fused_kernel_name(kernel)) + " " + c10::toString(type) + " L=" +
                           std::to_string(c.l) + " S=" + std::to_string(c.s) + " Dqk=" + std::to_string(c.dqk) +
                           " Dv=" + std::to_string(c.dv);
  auto q = randn({c.problems, c.heads, c.l, c.dqk}, 1, type, device);
  auto k = randn({c.problems, c.heads, c.s, c.dqk}, 2, type, device);
  auto v = randn({c.problems, c.heads, c.s, c.dv}, 3, type, device);
  const double scale = 0.7;
  auto forward = fused_attention_forward(q, k, v, scale, kernel);
  EXPECT_EQ(forward.kernel, kernel) << what;
  EXPECT_EQ(forward.out.scalar_type(), type) << what;

  auto qd = q.cpu().to(at::kDouble), kd = k.cpu().to(at::kDouble), vd = v.cpu().to(at::kDouble);
  auto logits = at::matmul(qd, kd.transpose(-1, -2)) * scale;
  auto lse = at::logsumexp(logits, -1);
  auto probabilities = at::exp(logits - lse.unsqueeze(-1));
  EXPECT_LT(max_relative(forward.out, at::matmul(probabilities, vd)), tolerance) << what << ": out";
  EXPECT_LT(max_relative(forward.lse, lse), tolerance) << what << ": lse";

  // Backward with an `out` that is not the forward's output: the delta term must use it.
  auto other_out = randn({c.problems, c.heads, c.l, c.dv}, 4, type, device);
  auto grad_out = randn({c.problems, c.heads, c.l, c.dv}, 5, type, device);
  auto grads = fused_attention_backward(grad_out, q, k, v, other_out, forward, scale);
  auto go = grad_out.cpu().to(at::kDouble);
  auto delta = (go * other_out.cpu().to(at::kDouble)).sum(-1, true);
  auto ds = probabilities * (at::matmul(go, vd.transpose(-1, -2)) - delta);
  EXPECT_EQ(grads.dq.scalar_type(), type) << what;
  EXPECT_LT(max_relative(grads.dq, at::matmul(ds, kd) * scale), tolerance) << what << ": dq";
  EXPECT_LT(max_relative(grads.dk, at::matmul(ds.transpose(-1, -2), qd) * scale), tolerance) << what << ": dk";
  EXPECT_LT(max_relative(grads.dv, at::matmul(probabilities.transpose(-1, -2), go)), tolerance) << what << ": dv";

  // Backward with a log-sum-exp that is not the forward's (SMYRF passes the merged one): the
  // probabilities it recomputes must use it.
  FusedForward shifted = forward;
  auto shift = randn({c.problems, c.heads, c.l}, 6, at::kFloat, device).abs().to(forward.lse.scalar_type());
  shifted.lse = forward.lse + shift;
  auto scaled = probabilities * at::exp(-shift.cpu().to(at::kDouble)).unsqueeze(-1);
  auto g2 = fused_attention_backward(grad_out, q, k, v, other_out, shifted, scale);
  auto ds2 = scaled * (at::matmul(go, vd.transpose(-1, -2)) - delta);
  EXPECT_LT(max_relative(g2.dq, at::matmul(ds2, kd) * scale), tolerance) << what << ": dq, caller's lse";
  EXPECT_LT(max_relative(g2.dk, at::matmul(ds2.transpose(-1, -2), qd) * scale), tolerance) << what << ": dk, caller's lse";
  EXPECT_LT(max_relative(g2.dv, at::matmul(scaled.transpose(-1, -2), go)), tolerance) << what << ": dv, caller's lse";
}

const Case kCases[] = {
    {3, 2, 17, 9, 16, 64},  // BigGAN widths: Dqk < Dv
    {2, 1, 40, 33, 24, 8},  // Dqk > Dv
    {1, 3, 1, 1, 5, 5},     // single query, single key, odd width
    {2, 1, 130, 70, 8, 8},  // more rows than one CPU block
};

TEST(FusedAttention, CpuFlashMatchesTheFormulas) {
  for (const auto& c : kCases) {
    check_kernel(FusedKernel::CpuFlash, at::kDouble, at::kCPU, c, 1e-12);
    check_kernel(FusedKernel::CpuFlash, at::kFloat, at::kCPU, c, 2e-5);
    check_kernel(FusedKernel::CpuFlash, at::kBFloat16, at::kCPU, c, 3e-2);
  }
}

TEST(FusedAttention, MathMatchesTheFormulas) {
  for (const auto& c : kCases) {
    check_kernel(FusedKernel::Math, at::kDouble, at::kCPU, c, 1e-12);
    check_kernel(FusedKernel::Math, at::kFloat, at::kCPU, c, 2e-5);
    check_kernel(FusedKernel::Math, at::kBFloat16, at::kCPU, c, 3e-2);
  }
}

TEST(FusedAttention, LibraryKernelPerDeviceAndDtype) {
  auto cpu = at::zeros({1}, at::kFloat);
  EXPECT_EQ(library_kernel_for(cpu), FusedKernel::CpuFlash);
  EXPECT_EQ(library_kernel_for(cpu.to(at::kDouble)), FusedKernel::CpuFlash);
  EXPECT_EQ(library_kernel_for(cpu.to(at::kBFloat16)), FusedKernel::CpuFlash);
  EXPECT_FALSE(has_library_kernel(cpu.to(at::kLong)));
  EXPECT_EQ(library_kernel_for(cpu.to(at::kLong)), FusedKernel::Math);
  if (torch::cuda::is_available()) {
    EXPECT_EQ(library_kernel_for(cpu.cuda()), FusedKernel::CudaEfficient);
    EXPECT_EQ(library_kernel_for(cpu.cuda().to(at::kDouble)), FusedKernel::Math);
  }
}

TEST(FusedAttention, RejectsMismatchedShapesNamingThem) {
  auto q = at::zeros({2, 1, 4, 8}), k = at::zeros({2, 1, 5, 8}), v = at::zeros({2, 1, 6, 8});
  try {
    fused_attention_forward(q, k, v, 1.0, FusedKernel::Math);
    FAIL() << "k and v of different lengths accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("v [2, 1, 6, 8]"), std::string::npos) << e.what();
  }
}

// Batches over a kernel's problem limit (CUDA: 65,535) go in several calls; lowered for the test,
// the split calls give exactly what one call gives, forward and backward.
TEST(FusedAttention, CallsOverTheProblemLimitAreSplitExactly) {
  for (auto kernel : {FusedKernel::CpuFlash, FusedKernel::Math}) {
    auto q = randn({7, 2, 5, 4}, 11, at::kFloat, at::kCPU), k = randn({7, 2, 6, 4}, 12, at::kFloat, at::kCPU);
    auto v = randn({7, 2, 6, 8}, 13, at::kFloat, at::kCPU), go = randn({7, 2, 5, 8}, 14, at::kFloat, at::kCPU);
    auto whole = fused_attention_forward(q, k, v, 0.5, kernel);
    auto whole_grads = fused_attention_backward(go, q, k, v, whole.out, whole, 0.5);
    const ScopedProblemLimitForTesting limit(3);  // 7 problems: calls of 3, 3 and 1
    EXPECT_EQ(max_problems_per_call(kernel), 3);
    auto split = fused_attention_forward(q, k, v, 0.5, kernel);
    auto split_grads = fused_attention_backward(go, q, k, v, split.out, split, 0.5);
    const std::string what = fused_kernel_name(kernel);
    EXPECT_TRUE(at::equal(split.out, whole.out)) << what;
    EXPECT_TRUE(at::equal(split.lse, whole.lse)) << what;
    EXPECT_TRUE(at::equal(split_grads.dq, whole_grads.dq)) << what;
    EXPECT_TRUE(at::equal(split_grads.dk, whole_grads.dk)) << what;
    EXPECT_TRUE(at::equal(split_grads.dv, whole_grads.dv)) << what;
  }
  EXPECT_EQ(max_problems_per_call(FusedKernel::CudaEfficient), 65535);
  EXPECT_THROW(ScopedProblemLimitForTesting(0), std::invalid_argument);
  EXPECT_EQ(max_problems_per_call(FusedKernel::CudaEfficient), 65535);  // a refused limit leaves none behind
}

TEST(FusedAttention, CudaEfficientMatchesTheFormulas) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  for (const auto& c : kCases) {
    check_kernel(FusedKernel::CudaEfficient, at::kFloat, at::kCUDA, c, 1e-4);
    check_kernel(FusedKernel::CudaEfficient, at::kBFloat16, at::kCUDA, c, 3e-2);
    check_kernel(FusedKernel::Math, at::kDouble, at::kCUDA, c, 1e-12);
  }
}

}  // namespace
}  // namespace longgan::kernels

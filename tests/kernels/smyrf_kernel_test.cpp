#include <gtest/gtest.h>
#include <torch/torch.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <stdexcept>

#include "attention/smyrf.h"
#include "kernels/attention_kernels.h"
#include "tests/kernels/kernel_test_util.h"

namespace longgan::kernels {
namespace {

using testing::AttentionFn;
using testing::Inputs;

struct SmyrfCase {
  int64_t b, h, n, m, dqk, dv, hashes, q_cluster, k_cluster;
};

// Kernel vs attention::smyrf_attention_reference on the same projections (outputs and gradients).
void check_against_reference(const SmyrfCase& c, at::ScalarType type, double tolerance) {
  const Inputs in = testing::random_inputs(c.b, c.h, c.n, c.m, c.dqk, c.dv, type, 7);
  const at::Tensor projections = attention::smyrf_draw_projections(
      c.b, c.h, c.hashes, c.dqk, at::make_generator<at::CPUGeneratorImpl>(11), in.q.device());
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.dqk));
  attention::SmyrfOptions options;
  options.hashes = c.hashes;
  options.q_cluster = c.q_cluster;
  options.k_cluster = c.k_cluster;
  const AttentionFn kernel = [&](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
    return smyrf_attention_cuda(q, k, v, c.q_cluster, c.k_cluster, scale, projections);
  };
  // The reference sees fp32 copies of the (bf16-rounded) inputs: same hashes, exact arithmetic.
  const AttentionFn reference = [&](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
    return attention::smyrf_attention_reference(q, k, v, options, scale, projections);
  };
  const auto got = testing::run_with_grads(kernel, in.q, in.k, in.v, in.weight);
  const auto want = testing::run_with_grads(reference, in.q.to(at::kFloat), in.k.to(at::kFloat),
                                            in.v.to(at::kFloat), in.weight);
  EXPECT_EQ(got.out.scalar_type(), type);
  testing::Result want_typed = want;
  want_typed.out = want.out.to(type);
  testing::expect_close(got, want_typed, tolerance, "smyrf " + std::string(c10::toString(type)));
}

TEST(SmyrfKernel, MatchesReferenceFp32) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "needs a CUDA GPU";
  // N, M not divisible by the cluster sizes; clusters span several thread blocks and key tiles.
  check_against_reference({2, 3, 1000, 300, 16, 24, 3, 210, 61}, at::kFloat, 1e-4);
}

TEST(SmyrfKernel, MatchesReferenceFp32WideHeads) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "needs a CUDA GPU";
  check_against_reference({1, 2, 257, 129, 64, 128, 2, 64, 32}, at::kFloat, 1e-4);
  check_against_reference({2, 1, 150, 150, 40, 100, 4, 50, 50}, at::kFloat, 1e-4);
}

TEST(SmyrfKernel, MatchesReferenceBf16) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "needs a CUDA GPU";
  check_against_reference({2, 2, 600, 150, 8, 64, 4, 130, 33}, at::kBFloat16, 2e-2);
}

TEST(SmyrfKernel, OneClusterOneHashEqualsDense) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "needs a CUDA GPU";
  const Inputs in = testing::random_inputs(2, 2, 333, 77, 16, 64, at::kFloat, 3);
  const at::Tensor projections =
      attention::smyrf_draw_projections(2, 2, 1, 16, at::make_generator<at::CPUGeneratorImpl>(5), in.q.device());
  const double scale = 0.25;
  const auto got = testing::run_with_grads(
      [&](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
        return smyrf_attention_cuda(q, k, v, 333, 77, scale, projections);
      },
      in.q, in.k, in.v, in.weight);
  const auto want = testing::run_with_grads(
      [&](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
        return testing::dense_attention(q, k, v, scale);
      },
      in.q, in.k, in.v, in.weight);
  testing::expect_close(got, want, 1e-4, "smyrf one cluster vs dense");
}

TEST(SmyrfKernel, RejectsUnequalClusterCounts) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "needs a CUDA GPU";
  const Inputs in = testing::random_inputs(1, 1, 100, 40, 16, 16, at::kFloat, 1);
  const at::Tensor projections =
      attention::smyrf_draw_projections(1, 1, 2, 16, at::make_generator<at::CPUGeneratorImpl>(5), in.q.device());
  EXPECT_THROW(smyrf_attention_cuda(in.q, in.k, in.v, 10, 20, 0.25, projections), std::invalid_argument);
  EXPECT_THROW(smyrf_attention_cuda(in.q, in.k, in.v, 10, 4, 0.25, projections.narrow(-1, 0, 17)),
               std::invalid_argument);
}

TEST(SmyrfKernel, RefusesCpuTensors) {
  const at::Tensor q = torch::randn({1, 1, 8, 4}), k = torch::randn({1, 1, 8, 4}), v = torch::randn({1, 1, 8, 4});
  EXPECT_FALSE(smyrf_kernel_supports(q, k, v));
  try {
    smyrf_attention_cuda(q, k, v, 4, 4, 0.5, torch::randn({1, 1, 2, 6}));
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("reference backend"), std::string::npos) << error.what();
  }
}

TEST(SmyrfKernel, SupportsOnlyKernelShapesAndTypes) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "needs a CUDA GPU";
  const auto cuda = torch::TensorOptions().device(torch::kCUDA);
  const at::Tensor q = torch::randn({1, 1, 8, 16}, cuda), k = torch::randn({1, 1, 6, 16}, cuda);
  EXPECT_TRUE(smyrf_kernel_supports(q, k, torch::randn({1, 1, 6, 128}, cuda)));
  EXPECT_FALSE(smyrf_kernel_supports(q, k, torch::randn({1, 1, 6, 129}, cuda)));
  EXPECT_FALSE(smyrf_kernel_supports(torch::randn({1, 1, 8, 65}, cuda), torch::randn({1, 1, 6, 65}, cuda),
                                     torch::randn({1, 1, 6, 8}, cuda)));
  EXPECT_FALSE(smyrf_kernel_supports(q.to(at::kHalf), k.to(at::kHalf), torch::randn({1, 1, 6, 8}, cuda).to(at::kHalf)));
  EXPECT_FALSE(smyrf_kernel_supports(q, k.to(at::kBFloat16), torch::randn({1, 1, 6, 8}, cuda)));
}

}  // namespace
}  // namespace longgan::kernels

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <stdexcept>

#include "attention/clustered.h"
#include "kernels/attention_kernels.h"
#include "tests/kernels/kernel_test_util.h"

namespace longgan::kernels {
namespace {

using testing::AttentionFn;
using testing::Inputs;

at::Tensor draw_hyperplanes(const at::Tensor& q, const attention::ClusteredOptions& options, uint64_t seed) {
  return attention::clustered_draw_hyperplanes(q.size(0), q.size(1), options, q.size(3),
                                               at::make_generator<at::CPUGeneratorImpl>(seed), q.device());
}

attention::ClusteredOptions clustering(int64_t clusters, int64_t bits, int64_t iterations) {
  attention::ClusteredOptions options;
  options.clusters = clusters;
  options.bits = bits;
  options.iterations = iterations;
  return options;
}

TEST(ClusteredKernel, AssignmentEqualsReference) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "needs a CUDA GPU";
  for (const auto type : {at::kFloat, at::kBFloat16}) {
    for (const auto& options : {clustering(7, 16, 5), clustering(30, 63, 10), clustering(5, 1, 0)}) {
      const Inputs in = testing::random_inputs(2, 3, 333, 10, 16, 8, type, 21);
      const at::Tensor hyperplanes = draw_hyperplanes(in.q, options, 4);
      const at::Tensor got = clustered_assign_cuda(in.q, hyperplanes, options.clusters, options.iterations);
      const at::Tensor want = attention::clustered_assign(in.q.to(at::kFloat), options, hyperplanes);
      ASSERT_EQ(got.scalar_type(), at::kLong);
      EXPECT_TRUE(at::equal(got.cpu(), want.cpu()))
          << "clusters=" << options.clusters << " bits=" << options.bits << " " << c10::toString(type);
      EXPECT_GE(got.min().item<int64_t>(), 0);
      EXPECT_LT(got.max().item<int64_t>(), options.clusters);
    }
  }
}

// Kernel vs reference (outputs and gradients) on the reference's assignment.
void check_against_reference(bool improved, at::ScalarType type, int64_t dqk, int64_t dv, double tolerance) {
  const int64_t b = 2, h = 2, n = 301, m = 77, clusters = 9, topk = 5;
  const Inputs in = testing::random_inputs(b, h, n, m, dqk, dv, type, 8);
  const auto options = clustering(clusters, 16, 5);
  const at::Tensor assignment =
      attention::clustered_assign(in.q.to(at::kFloat), options, draw_hyperplanes(in.q, options, 2));
  const double scale = 1.0 / std::sqrt(static_cast<double>(dqk));
  const AttentionFn kernel = [&](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
    return improved ? improved_clustered_attention_cuda(q, k, v, clusters, topk, scale, assignment)
                    : clustered_attention_cuda(q, k, v, clusters, scale, assignment);
  };
  const AttentionFn reference = [&](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
    return improved ? attention::improved_clustered_attention_reference(q, k, v, clusters, topk, scale, assignment)
                    : attention::clustered_attention_reference(q, k, v, clusters, scale, assignment);
  };
  const auto got = testing::run_with_grads(kernel, in.q, in.k, in.v, in.weight);
  auto want = testing::run_with_grads(reference, in.q.to(at::kFloat), in.k.to(at::kFloat), in.v.to(at::kFloat),
                                      in.weight);
  want.out = want.out.to(type);
  testing::expect_close(got, want, tolerance,
                        std::string(improved ? "improved_clustered " : "clustered ") + c10::toString(type));
}

TEST(ClusteredKernel, MatchesReferenceFp32) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "needs a CUDA GPU";
  check_against_reference(false, at::kFloat, 16, 24, 1e-4);
}

TEST(ClusteredKernel, MatchesReferenceBf16) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "needs a CUDA GPU";
  check_against_reference(false, at::kBFloat16, 32, 64, 2e-2);
}

TEST(ImprovedClusteredKernel, MatchesReferenceFp32) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "needs a CUDA GPU";
  check_against_reference(true, at::kFloat, 16, 24, 1e-4);
  check_against_reference(true, at::kFloat, 64, 128, 1e-4);
}

TEST(ImprovedClusteredKernel, MatchesReferenceBf16) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "needs a CUDA GPU";
  check_against_reference(true, at::kBFloat16, 8, 100, 2e-2);
}

TEST(ClusteredKernel, OwnClusterPerQueryEqualsDense) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "needs a CUDA GPU";
  const int64_t n = 40;
  const Inputs in = testing::random_inputs(2, 2, n, 23, 16, 32, at::kFloat, 5);
  const at::Tensor assignment = torch::arange(n, torch::kLong).to(torch::kCUDA).expand({2, 2, n}).contiguous();
  const AttentionFn dense = [](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
    return testing::dense_attention(q, k, v, 0.3);
  };
  const auto want = testing::run_with_grads(dense, in.q, in.k, in.v, in.weight);
  const auto plain = testing::run_with_grads(
      [&](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
        return clustered_attention_cuda(q, k, v, n, 0.3, assignment);
      },
      in.q, in.k, in.v, in.weight);
  testing::expect_close(plain, want, 1e-4, "clustered, one query per cluster");
}

TEST(ImprovedClusteredKernel, AllKeysEqualsDense) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "needs a CUDA GPU";
  const int64_t n = 150, m = 37, clusters = 6;
  const Inputs in = testing::random_inputs(2, 2, n, m, 16, 32, at::kFloat, 6);
  const at::Tensor assignment = torch::randint(clusters, {2, 2, n}, torch::kLong).to(torch::kCUDA);
  const auto want = testing::run_with_grads(
      [](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
        return testing::dense_attention(q, k, v, 0.3);
      },
      in.q, in.k, in.v, in.weight);
  const auto got = testing::run_with_grads(
      [&](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
        return improved_clustered_attention_cuda(q, k, v, clusters, m, 0.3, assignment);
      },
      in.q, in.k, in.v, in.weight);
  testing::expect_close(got, want, 1e-4, "improved_clustered, topk = M");
}

TEST(ClusteredKernel, RejectsBadAssignment) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "needs a CUDA GPU";
  const Inputs in = testing::random_inputs(1, 1, 20, 10, 16, 16, at::kFloat, 1);
  const at::Tensor out_of_range = torch::full({1, 1, 20}, 4, torch::kLong).to(torch::kCUDA);
  EXPECT_THROW(clustered_attention_cuda(in.q, in.k, in.v, 4, 0.25, out_of_range), std::invalid_argument);
  EXPECT_THROW(improved_clustered_attention_cuda(in.q, in.k, in.v, 4, 11, 0.25, out_of_range.sub(1)),
               std::invalid_argument);
  EXPECT_THROW(clustered_attention_cuda(in.q, in.k, in.v, 4, 0.25, out_of_range.sub(1).to(at::kInt)),
               std::invalid_argument);
}

TEST(ClusteredKernel, RefusesCpuTensors) {
  const at::Tensor q = torch::randn({1, 1, 8, 4}), k = torch::randn({1, 1, 8, 4}), v = torch::randn({1, 1, 8, 4});
  const at::Tensor assignment = torch::zeros({1, 1, 8}, torch::kLong);
  EXPECT_FALSE(clustered_kernel_supports(q, k, v));
  EXPECT_THROW(clustered_assign_cuda(q, torch::randn({1, 1, 4, 5}), 2, 1), std::invalid_argument);
  EXPECT_THROW(clustered_attention_cuda(q, k, v, 2, 0.5, assignment), std::invalid_argument);
  EXPECT_THROW(improved_clustered_attention_cuda(q, k, v, 2, 3, 0.5, assignment), std::invalid_argument);
}

}  // namespace
}  // namespace longgan::kernels

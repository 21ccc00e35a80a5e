// The CUDA Hamming k-means kernel makes the same choices as its ATen reference (same random draws:
// re-seeded empty clusters and random bits on even splits included). GPU only, but for the errors.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <ATen/CPUGeneratorImpl.h>

#include "attention/clustered.h"
#include "kernels/hamming_kmeans.h"

namespace longgan::kernels {
namespace {

using attention::Backend;
using attention::ClusteredOptions;

TEST(HammingKMeans, KernelEqualsReference) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  for (const auto type : {at::kFloat, at::kBFloat16}) {
    // 1100 clusters > one shared-memory tile of centroids; 3 bits with 40 clusters forces duplicate
    // codes, so empty clusters are re-seeded; 2 queries per cluster give even splits (ties).
    for (const auto& options : {ClusteredOptions{.clusters = 7, .bits = 16, .iterations = 5},
                                ClusteredOptions{.clusters = 40, .bits = 3, .iterations = 6},
                                ClusteredOptions{.clusters = 150, .bits = 63, .iterations = 10},
                                ClusteredOptions{.clusters = 1100, .bits = 24, .iterations = 2},
                                ClusteredOptions{.clusters = 5, .bits = 1, .iterations = 0}}) {
      auto gen = at::make_generator<at::CPUGeneratorImpl>(21);
      auto q = at::randn({2, 3, 2200, 8}, gen, at::TensorOptions().dtype(at::kFloat)).to(at::kCUDA, type);
      auto draws = attention::clustered_draw(2, 3, options, 8, at::make_generator<at::CPUGeneratorImpl>(4),
                                             q.device());
      auto got = attention::clustered_assign_dispatch(q, options, draws, Backend::Auto);
      auto want = attention::clustered_assign(q, options, draws);
      ASSERT_EQ(got.scalar_type(), at::kLong);
      EXPECT_TRUE(at::equal(got.cpu(), want.cpu()))
          << "clusters=" << options.clusters << " bits=" << options.bits << " " << c10::toString(type);
    }
  }
}

TEST(HammingKMeans, RefusesCpuCodesAndBadShapesNamingTheFix) {
  auto codes = at::zeros({1, 1, 8}, at::kLong);
  auto centroids = at::zeros({1, 1, 2}, at::kLong), draws = at::zeros({3, 1, 1, 2}, at::kLong);
  EXPECT_FALSE(hamming_kmeans_supports(codes));
  try {
    hamming_kmeans_cuda(codes, centroids, draws, draws, 4);
    FAIL() << "CPU codes accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("use the reference backend"), std::string::npos) << e.what();
  }
  if (!torch::cuda::is_available()) return;
  auto cuda = [](const at::Tensor& t) { return t.cuda(); };
  EXPECT_THROW(hamming_kmeans_cuda(cuda(codes), cuda(centroids), cuda(draws), cuda(draws.narrow(0, 0, 2)), 4),
               std::invalid_argument);
  EXPECT_THROW(hamming_kmeans_cuda(cuda(codes), cuda(centroids), cuda(draws), cuda(draws), 64), std::invalid_argument);
}

}  // namespace
}  // namespace longgan::kernels

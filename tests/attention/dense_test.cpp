// dense: the naive, chunked and dispatched paths compute the same exact attention.
#include <gtest/gtest.h>

#include "attention/attention.h"
#include "attention_test_support.h"

namespace longgan::attention {
namespace {

using testing::randn;
using testing::relative_error;

TEST(DenseAttention, ChunkedEqualsNaiveForUnevenChunksAndShapes) {
  auto q = randn({2, 3, 37, 5}, 1), k = randn({2, 3, 11, 5}, 2), v = randn({2, 3, 11, 7}, 3);
  auto naive = dense_attention_naive(q, k, v, 0.4);
  for (int64_t chunk : {1, 5, 36, 37, 100}) {
    EXPECT_LT(relative_error(dense_attention_chunked(q, k, v, 0.4, chunk), naive), 1e-6) << chunk;
  }
  EXPECT_LT(relative_error(attend(DenseOptions{}, q, k, v, {.scale = 0.4}), naive), 1e-6);
}

TEST(DenseAttention, NaiveMatchesTheFormulaWrittenOut) {
  auto q = randn({1, 1, 3, 2}, 4), k = randn({1, 1, 4, 2}, 5), v = randn({1, 1, 4, 1}, 6);
  auto out = dense_attention_naive(q, k, v, 1.0);
  for (int64_t i = 0; i < 3; ++i) {
    double denominator = 0, numerator = 0;
    for (int64_t j = 0; j < 4; ++j) {
      double logit = (q[0][0][i] * k[0][0][j]).sum().item<double>();
      denominator += std::exp(logit);
      numerator += std::exp(logit) * v[0][0][j][0].item<double>();
    }
    EXPECT_NEAR(out[0][0][i][0].item<double>(), numerator / denominator, 1e-5);
  }
}

TEST(DenseAttention, DefaultScaleIsInverseSqrtOfQueryWidth) {
  auto q = randn({1, 2, 9, 16}, 7), k = randn({1, 2, 6, 16}, 8), v = randn({1, 2, 6, 4}, 9);
  EXPECT_LT(relative_error(attend(DenseOptions{}, q, k, v), dense_attention_naive(q, k, v, 0.25)), 1e-6);
}

TEST(DenseAttention, GradientsMatchFiniteDifferences) {
  auto f = [](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
    return dense_attention_chunked(q, k, v, 0.7, 2);
  };
  EXPECT_LT(testing::max_gradient_error(f, randn({1, 2, 5, 3}, 10), randn({1, 2, 4, 3}, 11), randn({1, 2, 4, 2}, 12)),
            1e-7);
}

TEST(DenseAttention, GradientsMatchFiniteDifferencesThroughNaiveAndDispatch) {
  auto q = randn({1, 2, 5, 3}, 16), k = randn({1, 2, 4, 3}, 17), v = randn({1, 2, 4, 2}, 18);
  auto naive = [](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
    return dense_attention_naive(q, k, v, 0.7);
  };
  auto dispatched = [](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
    return attend(DenseOptions{}, q, k, v);
  };
  EXPECT_LT(testing::max_gradient_error(naive, q, k, v), 1e-7);
  EXPECT_LT(testing::max_gradient_error(dispatched, q, k, v), 1e-7);
}

TEST(DenseAttention, LongInputsStayExactWithGradientsOnSdpaAndChunkedPaths) {
  // B*H*M = 4096 fp32 logits per query row; 64 MiB holds 4096 rows, so the reference chunks 4500
  // queries; auto runs SDPA's CPU flash kernel (here v zero-padded to the width of q and k).
  auto q = randn({1, 1, 4500, 4}, 19), k = randn({1, 1, 4096, 4}, 20), v = randn({1, 1, 4096, 2}, 21);
  auto qn = q.clone().requires_grad_(true);
  auto naive = dense_attention_naive(qn, k, v, 0.5);
  auto w = randn(naive.sizes(), 22);
  (naive * w).sum().backward();
  for (auto backend : {Backend::Auto, Backend::Reference}) {
    auto qa = q.clone().requires_grad_(true);
    auto out = attend(DenseOptions{}, qa, k, v, {.backend = backend});
    EXPECT_LT(relative_error(out, naive), 1e-5) << backend_name(backend);
    (out * w).sum().backward();
    EXPECT_LT(relative_error(qa.grad(), qn.grad()), 1e-4) << backend_name(backend);
  }
}

TEST(DenseAttention, RunsOnSdpaFlashOnTheCpuForEveryFloatType) {
  auto q = randn({1, 2, 9, 16}, 23), k = randn({1, 2, 6, 16}, 24), v = randn({1, 2, 6, 64}, 25);
  for (auto type : {at::kFloat, at::kDouble, at::kBFloat16, at::kHalf}) {
    EXPECT_EQ(dense_backend(q.to(type), k.to(type), v.to(type)), "flash (padded to 64)") << c10::toString(type);
  }
  EXPECT_EQ(dense_backend(q, k, randn({1, 2, 6, 16}, 26)), "flash");
  auto fused = attend(DenseOptions{}, q, k, v, {.backend = Backend::Fused});
  EXPECT_LT(relative_error(fused, dense_attention_naive(q, k, v, 0.25)), 1e-6);
}

TEST(DenseAttention, ChunkMustBePositive) {
  auto q = randn({1, 1, 4, 2}, 23);
  try {
    dense_attention_chunked(q, q, q, 1.0, 0);
    FAIL() << "chunk=0 accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("chunk must be >= 1, got 0"), std::string::npos) << e.what();
  }
}

TEST(DenseAttention, Bf16StaysWithinToleranceOfFp32) {
  auto q = randn({1, 2, 64, 8}, 13), k = randn({1, 2, 16, 8}, 14), v = randn({1, 2, 16, 8}, 15);
  auto fp32 = attend(DenseOptions{}, q, k, v);
  auto bf16 = attend(DenseOptions{}, q.to(at::kBFloat16), k.to(at::kBFloat16), v.to(at::kBFloat16));
  EXPECT_EQ(bf16.scalar_type(), at::kBFloat16);
  // bf16 keeps 8 bits of mantissa: inputs and output each round at ~0.4%.
  EXPECT_LT(relative_error(bf16, fp32), 2e-2);
}

}  // namespace
}  // namespace longgan::attention

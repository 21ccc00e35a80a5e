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

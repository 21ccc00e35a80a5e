// combiner_axial: equal to a brute-force evaluation from explicit masks over [keys ; summaries]
// on equal, pooled and non-square grids; dense when the keys form one row; gradients; bf16.
#include <gtest/gtest.h>

#include <limits>

#include "attention/attention.h"
#include "attention_test_support.h"

namespace longgan::attention {
namespace {

using testing::randn;
using testing::relative_error;

// The definition in combiner_axial.h evaluated the long way, in float64: summaries from
// explicit loops over key positions, then one masked softmax of every query over all M keys
// and all M summaries.
at::Tensor axial_oracle(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale, Grid qg,
                        Grid kg) {
  auto qd = q.to(at::kDouble), kd = k.to(at::kDouble), vd = v.to(at::kDouble);
  const int64_t n = qg.height * qg.width, m = kg.height * kg.width;
  std::vector<at::Tensor> summaries, row_outputs;
  for (int64_t r = 0; r < kg.height; ++r) {
    auto row_keys = kd.narrow(2, r * kg.width, kg.width), row_values = vd.narrow(2, r * kg.width, kg.width);
    for (int64_t c = 0; c < kg.width; ++c) {
      int64_t representative = (r * qg.height / kg.height) * qg.width + c * qg.width / kg.width;
      auto p = at::softmax(at::matmul(qd.narrow(2, representative, 1), row_keys.transpose(-1, -2)) * scale, -1);
      summaries.push_back(at::matmul(p, row_keys));
      row_outputs.push_back(at::matmul(p, row_values));
    }
  }
  auto all_keys = at::cat({kd, at::cat(summaries, 2)}, 2);       // [B, H, 2M, D]
  auto all_values = at::cat({vd, at::cat(row_outputs, 2)}, 2);   // [B, H, 2M, Dv]
  auto allowed = at::zeros({n, 2 * m}, at::kBool);
  for (int64_t i = 0; i < qg.height; ++i) {
    for (int64_t j = 0; j < qg.width; ++j) {
      int64_t row = i * kg.height / qg.height, col = j * kg.width / qg.width;
      for (int64_t r = 0; r < kg.height; ++r) {
        for (int64_t c = 0; c < kg.width; ++c) {
          allowed[i * qg.width + j][r * kg.width + c] = r == row;
          allowed[i * qg.width + j][m + r * kg.width + c] = c == col && r != row;
        }
      }
    }
  }
  auto logits = at::matmul(qd, all_keys.transpose(-1, -2)) * scale;
  logits = logits.masked_fill(allowed.logical_not(), -std::numeric_limits<double>::infinity());
  return at::matmul(at::softmax(logits, -1), all_values);
}

struct Case {
  Grid query, key;
};

TEST(CombinerAxialAttention, EqualsMaskedBruteForceOnEqualPooledAndNonSquareGrids) {
  const std::vector<Case> cases = {
      {{4, 4}, {4, 4}},  // equal square grids
      {{3, 5}, {3, 5}},  // non-square
      {{4, 6}, {2, 3}},  // keys pooled 2x2
      {{6, 4}, {3, 2}},  // pooled, taller than wide
      {{5, 3}, {2, 2}},  // pooling factors that do not divide
  };
  uint64_t seed = 0;
  for (const auto& [query, key] : cases) {
    const int64_t n = query.height * query.width, m = key.height * key.width;
    auto q = randn({2, 2, n, 4}, ++seed), k = randn({2, 2, m, 4}, ++seed), v = randn({2, 2, m, 3}, ++seed);
    auto out = attend(CombinerAxialOptions{}, q, k, v, {.scale = 0.6, .query_grid = query, .key_grid = key});
    EXPECT_EQ(out.sizes(), at::IntArrayRef({2, 2, n, 3}));
    EXPECT_LT((out - axial_oracle(q, k, v, 0.6, query, key)).abs().max().item<double>(), 1e-5)
        << query.height << "x" << query.width << " over " << key.height << "x" << key.width;
  }
}

TEST(CombinerAxialAttention, SquareGridsAreInferredAndOneKeyRowIsDense) {
  auto q = randn({1, 2, 16, 4}, 20), k = randn({1, 2, 16, 4}, 21), v = randn({1, 2, 16, 2}, 22);
  EXPECT_LT((attend(CombinerAxialOptions{}, q, k, v) - axial_oracle(q, k, v, 0.5, {4, 4}, {4, 4}))
                .abs().max().item<double>(),
            1e-5);
  // Keys on one row: every query attends to all keys directly, and there are no other rows.
  auto out = combiner_axial_attention_reference(q, k, v, 0.5, {4, 4}, {1, 16});
  EXPECT_LT((out - dense_attention_naive(q, k, v, 0.5)).abs().max().item<float>(), 1e-5);
}

TEST(CombinerAxialAttention, GradientsMatchFiniteDifferences) {
  auto f = [](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
    return combiner_axial_attention_reference(q, k, v, 0.7, {4, 2}, {2, 2});
  };
  EXPECT_LT(testing::max_gradient_error(f, randn({1, 1, 8, 3}, 23), randn({1, 1, 4, 3}, 24), randn({1, 1, 4, 2}, 25)),
            1e-7);
}

TEST(CombinerAxialAttention, Bf16StaysWithinToleranceOfFp32) {
  auto q = randn({1, 2, 64, 8}, 26), k = randn({1, 2, 16, 8}, 27), v = randn({1, 2, 16, 8}, 28);
  auto fp32 = attend(CombinerAxialOptions{}, q, k, v);
  auto bf16 = attend(CombinerAxialOptions{}, q.to(at::kBFloat16), k.to(at::kBFloat16), v.to(at::kBFloat16));
  EXPECT_EQ(bf16.scalar_type(), at::kBFloat16);
  EXPECT_LT(relative_error(bf16, fp32), 2e-2);
}

TEST(CombinerAxialAttention, RejectsGridsThatDoNotHoldTheTokensAndFusedBackends) {
  auto q = randn({1, 1, 12, 4}, 29), k = randn({1, 1, 12, 4}, 30), v = randn({1, 1, 12, 4}, 31);
  EXPECT_THROW(attend(CombinerAxialOptions{}, q, k, v), std::invalid_argument);  // 12 is not a square
  EXPECT_THROW(attend(CombinerAxialOptions{}, q, k, v, {.query_grid = {3, 5}, .key_grid = {3, 4}}),
               std::invalid_argument);
  EXPECT_NO_THROW(attend(CombinerAxialOptions{}, q, k, v, {.query_grid = {3, 4}, .key_grid = {2, 6}}));
  for (auto backend : {Backend::Fused, Backend::FusedMath}) {
    EXPECT_THROW(attend(CombinerAxialOptions{}, q, k, v, {.backend = backend, .query_grid = {3, 4}, .key_grid = {3, 4}}),
                 std::invalid_argument);
  }
}

}  // namespace
}  // namespace longgan::attention

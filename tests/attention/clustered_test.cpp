// clustered: hashing and Hamming k-means on hand-built codes, exactness with one query per
// cluster, gradients, approximation error on structured inputs, bf16.
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>

#include "attention/attention.h"
#include "attention_test_support.h"

namespace longgan::attention {
namespace {

using testing::randn;
using testing::relative_error;
using testing::seeded;

at::Tensor longs(std::vector<int64_t> values) { return at::tensor(values, at::kLong); }

// Hyperplanes [1, 1, 3, 4] over [q0, q1, q2, 1]: bit 0 is q0 > 0.5 (bias -0.5), bit 1 is
// q1 > 0, bit 2 is q2 > 0.
at::Tensor axis_hyperplanes() {
  return at::tensor({1.f, 0.f, 0.f, -0.5f, 0.f, 1.f, 0.f, 0.f, 0.f, 0.f, 1.f, 0.f}).view({1, 1, 3, 4});
}

// Queries [1, 1, N, 3] whose codes under axis_hyperplanes() are `codes`.
at::Tensor queries_with_codes(const std::vector<int64_t>& codes) {
  std::vector<float> values;
  for (auto code : codes) {
    values.push_back(code & 1 ? 1.0f : 0.2f);  // 0.2 is positive but below the bias 0.5
    values.push_back(code & 2 ? 1.0f : -1.0f);
    values.push_back(code & 4 ? 1.0f : -1.0f);
  }
  return at::tensor(values).view({1, 1, static_cast<int64_t>(codes.size()), 3});
}

// The bits of `code` as a [bits] uint8 tensor.
at::Tensor code_bits(int64_t code, int64_t bits) {
  std::vector<uint8_t> values;
  for (int64_t b = 0; b < bits; ++b) values.push_back((code >> b) & 1);
  return at::tensor(values, at::kByte);
}

// Draws for the axis hyperplanes: every re-seeded cluster takes `reseed`, every even split the
// bits of `ties`.
ClusteredDraws axis_draws(const ClusteredOptions& options, int64_t reseed, int64_t ties) {
  auto every = [&](int64_t code) {
    return code_bits(code, options.bits).expand({options.iterations, 1, 1, options.clusters, options.bits}).contiguous();
  };
  return {axis_hyperplanes(), every(reseed), every(ties)};
}

at::Tensor assign_codes(const std::vector<int64_t>& codes, int64_t clusters, int64_t iterations, int64_t reseed = 0,
                        int64_t ties = 0) {
  ClusteredOptions options{.clusters = clusters, .bits = 3, .iterations = iterations};
  return clustered_assign(queries_with_codes(codes), options, axis_draws(options, reseed, ties)).view(-1);
}

TEST(ClusteredAssign, HammingKMeansFollowsTheDocumentedStepsOnKnownCodes) {
  // Codes 001 101 110 011 100 100, two clusters. Initial centroids: the codes of queries 0 and
  // 3 (floor(c*6/2)) = 001, 011. Step 1: 101 is at distance 1 | 2, 110 at 3 | 2, 100 at 2 | 3
  // -> [0 0 1 1 0 0]; majority bits give centroids 100 and 010 (even splits, bit 0 of both
  // clusters and bit 2 of cluster 1, take the drawn tie bits: 0 here). Step 2: 001 is at 2 | 2
  // and 110 at 1 | 1 (ties -> cluster 0) -> [0 0 0 1 0 0]; centroids 100 and 011.
  // Final: [1 0 0 1 0 0].
  std::vector<int64_t> codes = {1, 5, 6, 3, 4, 4};
  EXPECT_TRUE(assign_codes(codes, 2, 0).equal(longs({0, 0, 1, 1, 0, 0})));
  EXPECT_TRUE(assign_codes(codes, 2, 1).equal(longs({0, 0, 0, 1, 0, 0})));
  EXPECT_TRUE(assign_codes(codes, 2, 2).equal(longs({1, 0, 0, 1, 0, 0})));
  EXPECT_TRUE(assign_codes(codes, 2, 10).equal(longs({1, 0, 0, 1, 0, 0})));
}

TEST(ClusteredAssign, EvenSplitsTakeTheDrawnTieBits) {
  // As above with tie bits 111: after step 1 the centroids are 101 and 111, so 110 and 011 stay
  // in cluster 1 (distance 1 to 111, 2 to 101).
  std::vector<int64_t> codes = {1, 5, 6, 3, 4, 4};
  EXPECT_TRUE(assign_codes(codes, 2, 1, 0, 7).equal(longs({0, 0, 1, 1, 0, 0})));
  EXPECT_FALSE(assign_codes(codes, 2, 1, 0, 7).equal(assign_codes(codes, 2, 1, 0, 0)));
}

TEST(ClusteredAssign, EmptyClusterIsReseededWithTheDrawnCode) {
  // Codes 011 000 011 000: both initial centroids are 011 (queries 0 and 2), so every query
  // joins cluster 0 (ties). Cluster 0's majority is 000 (2-2 ties, tie bits 0); empty cluster 1
  // takes the drawn code: 011 or 111 win the 011 queries back, 100 does not (distance 3 > 2).
  std::vector<int64_t> codes = {3, 0, 3, 0};
  EXPECT_TRUE(assign_codes(codes, 2, 0).equal(longs({0, 0, 0, 0})));
  EXPECT_TRUE(assign_codes(codes, 2, 1, 3).equal(longs({1, 0, 1, 0})));
  EXPECT_TRUE(assign_codes(codes, 2, 1, 7).equal(longs({1, 0, 1, 0})));
  EXPECT_TRUE(assign_codes(codes, 2, 1, 4).equal(longs({0, 0, 0, 0})));
}

TEST(ClusteredAssign, HashBiasFalseZeroesTheBiasCoordinate) {
  ClusteredOptions options{.bits = 5, .hash_bias = false};
  auto planes = clustered_draw_hyperplanes(2, 3, options, 4, seeded(7), at::kCPU);
  ASSERT_EQ(planes.sizes(), at::IntArrayRef({2, 3, 5, 5}));
  EXPECT_EQ(planes.select(-1, 4).abs().max().item<float>(), 0.0f);
  options.hash_bias = true;
  auto with_bias = clustered_draw_hyperplanes(2, 3, options, 4, seeded(7), at::kCPU);
  EXPECT_TRUE(with_bias.equal(at::randn({2, 3, 5, 5}, seeded(7))));
  EXPECT_TRUE(with_bias.narrow(-1, 0, 4).equal(planes.narrow(-1, 0, 4)));
}

TEST(ClusteredAssign, DeterministicForAFixedGenerator) {
  auto q = randn({2, 2, 40, 6}, 1);
  ClusteredOptions options{.clusters = 5, .bits = 16, .iterations = 3};
  auto draw = [&](uint64_t seed) {
    return clustered_assign(q, options, clustered_draw(2, 2, options, 6, seeded(seed), at::kCPU));
  };
  auto first = draw(3);
  EXPECT_TRUE(first.equal(draw(3)));
  EXPECT_FALSE(first.equal(draw(4)));
  EXPECT_GE(first.min().item<int64_t>(), 0);
  EXPECT_LT(first.max().item<int64_t>(), 5);
  auto k = randn({2, 2, 9, 6}, 2), v = randn({2, 2, 9, 3}, 3);
  auto out = attend(options, q, k, v, {.generator = seeded(3)});
  EXPECT_TRUE(out.equal(attend(options, q, k, v, {.generator = seeded(3)})));
}

TEST(ClusteredAttention, OneQueryPerClusterEqualsDense) {
  auto q = randn({2, 2, 12, 5}, 4), k = randn({2, 2, 7, 5}, 5), v = randn({2, 2, 7, 3}, 6);
  auto dense = dense_attention_naive(q, k, v, 0.6);
  auto identity = at::arange(12, at::kLong).expand({2, 2, 12}).contiguous();
  EXPECT_LT((clustered_attention_reference(q, k, v, 12, 0.6, identity) - dense).abs().max().item<float>(), 1e-5);
  // 63 random hyperplanes give 12 distinct codes, and each code is its own initial centroid.
  ClusteredOptions options{.clusters = 12, .bits = 63};
  EXPECT_TRUE(clustered_assign(q, options, clustered_draw(2, 2, options, 5, seeded(8), at::kCPU)).equal(identity));
  auto out = attend(options, q, k, v, {.scale = 0.6, .generator = seeded(8)});
  EXPECT_LT((out - dense).abs().max().item<float>(), 1e-5);
}

TEST(ClusteredAttention, QueriesOfAClusterShareTheCentroidOutput) {
  auto q = randn({1, 1, 5, 4}, 9), k = randn({1, 1, 6, 4}, 10), v = randn({1, 1, 6, 2}, 11);
  auto assignment = longs({2, 0, 2, 2, 0}).view({1, 1, 5});  // cluster 1 is empty
  auto out = clustered_attention_reference(q, k, v, 3, 0.5, assignment);
  auto centroid0 = (q.narrow(2, 1, 1) + q.narrow(2, 4, 1)) / 2;
  auto centroid2 = (q.narrow(2, 0, 1) + q.narrow(2, 2, 1) + q.narrow(2, 3, 1)) / 3;
  auto expect0 = dense_attention_naive(centroid0, k, v, 0.5);
  auto expect2 = dense_attention_naive(centroid2, k, v, 0.5);
  for (int64_t i : {1, 4}) EXPECT_LT((out.narrow(2, i, 1) - expect0).abs().max().item<float>(), 1e-6) << i;
  for (int64_t i : {0, 2, 3}) EXPECT_LT((out.narrow(2, i, 1) - expect2).abs().max().item<float>(), 1e-6) << i;
}

TEST(ClusteredAttention, GradientsMatchFiniteDifferences) {
  auto assignment = longs({1, 0, 1, 3, 0}).expand({1, 2, 5}).contiguous();  // cluster 2 empty
  auto f = [&](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
    return clustered_attention_reference(q, k, v, 4, 0.7, assignment);
  };
  EXPECT_LT(testing::max_gradient_error(f, randn({1, 2, 5, 3}, 12), randn({1, 2, 4, 3}, 13), randn({1, 2, 4, 2}, 14)),
            1e-7);
}

TEST(ClusteredAttention, ApproximatesDenseOnStructuredInputs) {
  // 4 centres, 256 queries in 16 clusters of 32 hash bits. Measured relative errors over seeds
  // 0..3: 0.05-0.09; the bound leaves margin.
  for (uint64_t seed = 0; seed < 4; ++seed) {
    auto in = testing::structured_inputs(1, 2, 256, 64, 8, 4, 4, seed);
    auto dense = dense_attention_naive(in.q, in.k, in.v, 1.0 / std::sqrt(8.0));
    auto out = attend(ClusteredOptions{.clusters = 16}, in.q, in.k, in.v, {.generator = seeded(seed)});
    double error = relative_error(out, dense);
    EXPECT_LT(error, 0.2) << "seed " << seed;
    std::cout << "clustered relative error, seed " << seed << ": " << error << "\n";
  }
}

TEST(ClusteredAttention, Bf16StaysWithinToleranceOfFp32) {
  auto q = randn({1, 2, 64, 8}, 15), k = randn({1, 2, 16, 8}, 16), v = randn({1, 2, 16, 8}, 17);
  ClusteredOptions options{.clusters = 8};
  auto assignment = clustered_assign(q, options, clustered_draw(1, 2, options, 8, seeded(1), at::kCPU));
  auto fp32 = clustered_attention_reference(q, k, v, 8, 0.35, assignment);
  auto bf16 = clustered_attention_reference(q.to(at::kBFloat16), k.to(at::kBFloat16), v.to(at::kBFloat16), 8, 0.35,
                                            assignment);
  EXPECT_EQ(bf16.scalar_type(), at::kBFloat16);
  EXPECT_LT(relative_error(bf16, fp32), 2e-2);
}

TEST(ClusteredAttention, RejectsBadOptionsAndAssignments) {
  auto q = randn({1, 1, 8, 4}, 18), k = randn({1, 1, 8, 4}, 19), v = randn({1, 1, 8, 4}, 20);
  EXPECT_THROW(attend(ClusteredOptions{.clusters = 9}, q, k, v), std::invalid_argument);
  EXPECT_THROW(attend(ClusteredOptions{.clusters = 2, .bits = 64}, q, k, v), std::invalid_argument);
  EXPECT_THROW(clustered_attention_reference(q, k, v, 2, 1.0, at::zeros({1, 1, 7}, at::kLong)),
               std::invalid_argument);
  try {
    clustered_assign(q, ClusteredOptions{.clusters = 2}, {clustered_draw_hyperplanes(1, 1, {}, 4, seeded(1), at::kCPU)});
    FAIL() << "draws without the k-means bits accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("from clustered_draw"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace longgan::attention

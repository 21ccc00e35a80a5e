// The attention library under a caller's autocast (the trainer's bf16 autocast; here the CPU's,
// which runs on every CI machine): hashing, clustering and merges stay fp32, so sort orders and
// cluster assignments are those of the same inputs without autocast, the kernels run in the inputs'
// dtype, and the caller's autocast state comes back, also after an exception.
#include <gtest/gtest.h>
#include <ATen/autocast_mode.h>

#include <string>

#include "attention/attention.h"
#include "attention_test_support.h"

namespace longgan::attention {
namespace {

using testing::seeded;

// CPU bf16 autocast for the scope (as torch.autocast("cpu", torch.bfloat16)).
class CpuBf16Autocast {
 public:
  CpuBf16Autocast() : was_enabled_(at::autocast::is_autocast_enabled(at::kCPU)) {
    at::autocast::set_autocast_enabled(at::kCPU, true);
    at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
    at::autocast::increment_nesting();
  }
  ~CpuBf16Autocast() {
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(at::kCPU, was_enabled_);
  }

 private:
  bool was_enabled_;
};

// Tokens around shared centres, long enough for hash ties to matter in bf16 (values near each
// other round to the same bf16 hash).
testing::StructuredInputs inputs(at::ScalarType type) {
  auto in = testing::structured_inputs(2, 2, 512, 128, 16, 32, 8, 21);
  return {in.q.to(type), in.k.to(type), in.v.to(type)};
}

TEST(AttentionUnderAutocast, TheAutocastOfTheseTestsIsReal) {
  // Without this the tests below could pass with autocast doing nothing.
  const CpuBf16Autocast autocast;
  auto a = at::ones({4, 4}), b = at::ones({4, 4});
  EXPECT_EQ(at::matmul(a, b).scalar_type(), at::kBFloat16);
}

TEST(AttentionUnderAutocast, SmyrfSortOrdersAreThoseWithoutAutocast) {
  for (auto type : {at::kFloat, at::kBFloat16}) {
    auto in = inputs(type);
    auto projections = smyrf_draw_projections(2, 2, 4, 16, seeded(3), at::kCPU);
    auto plain = smyrf_sort_orders(in.q, in.k, projections);
    const CpuBf16Autocast autocast;
    auto under = smyrf_sort_orders(in.q, in.k, projections);
    EXPECT_TRUE(at::equal(under.queries, plain.queries)) << c10::toString(type);
    EXPECT_TRUE(at::equal(under.keys, plain.keys)) << c10::toString(type);
  }
}

TEST(AttentionUnderAutocast, ClusteredAssignmentsAreThoseWithoutAutocast) {
  const ClusteredOptions options{.clusters = 20, .bits = 32, .iterations = 5};
  for (auto type : {at::kFloat, at::kBFloat16}) {
    auto in = inputs(type);
    auto draws = clustered_draw(2, 2, options, 16, seeded(4), at::kCPU);
    auto plain = clustered_assign(in.q, options, draws);
    auto plain_bits = clustered_hash_bits(in.q, draws.hyperplanes);
    const CpuBf16Autocast autocast;
    EXPECT_TRUE(at::equal(clustered_assign(in.q, options, draws), plain)) << c10::toString(type);
    EXPECT_TRUE(at::equal(clustered_hash_bits(in.q, draws.hyperplanes), plain_bits)) << c10::toString(type);
  }
}

// Every type, on the bf16 tokens an autocast model hands it: the same output with and without the
// caller's autocast (bit for bit), in bf16, within bf16 tolerance of the fp32 reference, with finite
// gradients.
TEST(AttentionUnderAutocast, OutputsAreThoseWithoutAutocastAndCloseToFp32) {
  const std::vector<std::pair<AttentionSpec, double>> cases = {
      {DenseOptions{}, 0.01},
      {SmyrfOptions{.hashes = 2, .q_cluster = 64, .k_cluster = 16}, 0.02},
      {ClusteredOptions{.clusters = 20}, 0.02},
      {ImprovedClusteredOptions{.clustering = {.clusters = 20}, .topk = 16}, 0.02},
  };
  auto fp32 = inputs(at::kFloat);
  auto bf16 = inputs(at::kBFloat16);
  for (const auto& [spec, tolerance] : cases) {
    const std::string what = to_string(spec);
    auto call = [&](const testing::StructuredInputs& in, Backend backend) {
      return attend(spec, in.q, in.k, in.v, {.backend = backend, .generator = seeded(9)});
    };
    auto plain = call(bf16, Backend::Auto);
    at::Tensor under, dq, dk, dv;
    {
      const CpuBf16Autocast autocast;
      auto q = bf16.q.clone().requires_grad_(true), k = bf16.k.clone().requires_grad_(true);
      auto v = bf16.v.clone().requires_grad_(true);
      under = attend(spec, q, k, v, {.generator = seeded(9)});
      under.to(at::kFloat).square().sum().backward();
      dq = q.grad(), dk = k.grad(), dv = v.grad();
    }
    EXPECT_EQ(under.scalar_type(), at::kBFloat16) << what;
    EXPECT_TRUE(at::equal(under.detach(), plain)) << what;
    // The fp32 reference with the same draws (hash orders and clusters of the fp32 tokens).
    auto reference = call(fp32, Backend::Reference);
    EXPECT_LT(testing::relative_error(under.detach(), reference), tolerance) << what;
    for (const auto* grad : {&dq, &dk, &dv}) {
      ASSERT_TRUE(grad->defined()) << what;
      EXPECT_TRUE(at::isfinite(*grad).all().item<bool>()) << what;
      EXPECT_GT(grad->abs().sum().item<double>(), 0.0) << what;
    }
  }
}

TEST(AttentionUnderAutocast, TheCallersAutocastIsRestoredAlsoAfterAnException) {
  auto q = testing::randn({1, 1, 64, 8}, 1), k = testing::randn({1, 1, 16, 8}, 2), v = testing::randn({1, 1, 16, 8}, 3);
  const CpuBf16Autocast autocast;
  // combiner_axial has no fused path: refused inside the type's function, under attend's guard.
  EXPECT_THROW(attend(CombinerAxialOptions{}, q, k, v, {.backend = Backend::Fused}), std::invalid_argument);
  EXPECT_TRUE(at::autocast::is_autocast_enabled(at::kCPU));
  EXPECT_EQ(attend(DenseOptions{}, q, k, v).scalar_type(), at::kFloat);  // fp32 inputs: an fp32 kernel
  EXPECT_TRUE(at::autocast::is_autocast_enabled(at::kCPU));
}

}  // namespace
}  // namespace longgan::attention

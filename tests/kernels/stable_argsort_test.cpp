// The CPU radix sort of SMYRF's hashing against at::sort's stable indices: equal, index for index,
// on random rows, ties, signed zeros, infinities, NaN, subnormals, strided views and odd lengths.
#include <gtest/gtest.h>
#include <ATen/CPUGeneratorImpl.h>

#include <limits>

#include "kernels/stable_argsort.h"

namespace longgan::kernels {
namespace {

at::Generator seeded(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

void expect_same_order(const at::Tensor& values, const std::string& what) {
  const at::Tensor got = stable_argsort(values), want = stable_argsort_reference(values);
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  EXPECT_EQ(got.scalar_type(), at::kLong) << what;
  EXPECT_TRUE(at::equal(got, want)) << what;
}

TEST(StableArgsort, EqualsAtSortOnRandomRows) {
  for (int64_t length : {2, 3, 17, 1024, 4096, 65537}) {
    const at::Tensor values = at::randn({3, 2, length}, seeded(length));
    ASSERT_TRUE(stable_argsort_uses_radix(values));
    expect_same_order(values, "length " + std::to_string(length));
  }
  // Wide range of magnitudes: every digit of the key matters.
  const at::Tensor spread = at::randn({4, 5000}, seeded(7)) * at::pow(10.0, at::randint(-30, 30, {4, 5000}, seeded(8)));
  expect_same_order(spread, "magnitudes 1e-30..1e30");
}

TEST(StableArgsort, KeepsTiesInPositionOrder) {
  // Few distinct values: long runs of ties, whose order only the positions decide.
  expect_same_order(at::randint(-3, 4, {6, 3000}, seeded(1)).to(at::kFloat), "small integers");
  expect_same_order(at::full({2, 100}, 1.5f), "all equal");
  // -0.0 and +0.0 are equal for at::sort: positions decide, not the sign bit.
  const at::Tensor zeros = at::where(at::rand({2, 500}, seeded(2)) < 0.5, at::full({}, -0.0f), at::full({}, 0.0f));
  expect_same_order(zeros, "signed zeros");
}

TEST(StableArgsort, PlacesInfinitiesSubnormalsAndNanAsAtSort) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const float tiny = std::numeric_limits<float>::denorm_min();
  at::Tensor values = at::randn({2, 64}, seeded(3));
  values.index_put_({0, at::indexing::Slice(0, 8)},
                    at::tensor({nan, inf, -inf, tiny, -tiny, nan, -nan, 0.0f}));
  values.index_put_({1, at::indexing::Slice(10, 14)}, at::tensor({-nan, inf, nan, -inf}));
  expect_same_order(values, "special values");
}

TEST(StableArgsort, TakesStridedViewsAndLeavesOtherTensorsToAtSort) {
  const at::Tensor base = at::randn({300, 4}, seeded(4));
  expect_same_order(base.transpose(0, 1), "transposed view");
  expect_same_order(at::randn({5, 7, 33}, seeded(5)).select(1, 2), "selected view");
  const at::Tensor doubles = at::randn({2, 100}, seeded(6), at::TensorOptions().dtype(at::kDouble));
  EXPECT_FALSE(stable_argsort_uses_radix(doubles));
  expect_same_order(doubles, "float64");
  EXPECT_FALSE(stable_argsort_uses_radix(at::randn({4, 1}, seeded(9))));
  expect_same_order(at::randn({4, 1}, seeded(9)), "length 1");
}

}  // namespace
}  // namespace longgan::kernels

// The CPU fused passes of SMYRF's round merge against their ATen references: the merge to a unit
// in the last place per round (its log-sum-exps bit for bit), the sum bit for bit;
// every dtype pair SMYRF uses, rows in any order, several rounds, and the inputs the fused pass
// leaves to the reference.
#include <gtest/gtest.h>
#include <ATen/CPUGeneratorImpl.h>

#include <limits>
#include <string>

#include "kernels/round_merge.h"

namespace longgan::kernels {
namespace {

at::Generator seeded(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

struct RunningMerge {
  at::Tensor out, lse;
  RunningMerge clone() const { return {out.clone(), lse.clone()}; }
};

// A running merge after one round over every row, as SMYRF's round 0 leaves it.
RunningMerge first_round(int64_t rows, int64_t width, at::ScalarType accumulate, uint64_t seed) {
  const auto options = at::TensorOptions().dtype(accumulate);
  return {at::randn({rows, width}, seeded(seed), options), at::randn({rows}, seeded(seed + 1), options) * 4};
}

// Merges `rounds` more rounds of random outputs into copies of `start`, every round covering
// every row once in a random order split into calls of `per_call` rows; fused and reference.
// The log-sum-exps come from the same ATen ops: equal. The outputs may differ by a rounding per
// round (ATen's vectorised addcmul may fuse its multiply-add, the plain loop rounds twice).
void expect_merges_agree(const RunningMerge& start, at::ScalarType out_dtype, int64_t rounds, int64_t per_call,
                         const std::string& what) {
  RunningMerge fused = start.clone(), reference = start.clone();
  const int64_t rows = start.out.size(0), width = start.out.size(1);
  for (int64_t r = 0; r < rounds; ++r) {
    const at::Tensor order = at::randperm(rows, seeded(100 + r));
    const at::Tensor out = at::randn({rows, width}, seeded(200 + r)).to(out_dtype);
    const at::Tensor lse = (at::randn({rows}, seeded(300 + r)) * 4).to(start.lse.scalar_type());
    for (int64_t begin = 0; begin < rows; begin += per_call) {
      const int64_t count = std::min(per_call, rows - begin);
      const at::Tensor call_rows = order.narrow(0, begin, count);
      const at::Tensor call_out = out.narrow(0, begin, count), call_lse = lse.narrow(0, begin, count);
      ASSERT_TRUE(merge_round_rows_uses_fused(fused.out, fused.lse, call_rows, call_out, call_lse)) << what;
      merge_round_rows_(fused.out, fused.lse, call_rows, call_out, call_lse);
      merge_round_rows_reference_(reference.out, reference.lse, call_rows, call_out, call_lse);
    }
  }
  const double eps = start.out.scalar_type() == at::kFloat ? std::numeric_limits<float>::epsilon()
                                                          : std::numeric_limits<double>::epsilon();
  const double bound = 2.0 * static_cast<double>(rounds) * eps * reference.out.abs().max().item<double>();
  EXPECT_LE((fused.out - reference.out).abs().max().item<double>(), bound) << what;
  EXPECT_TRUE(at::equal(fused.lse, reference.lse)) << what;
  // The merge moved nearly every value (the comparison is not of two untouched copies; a row whose
  // new rounds weigh next to nothing may keep its value).
  EXPECT_GT(fused.out.ne(start.out).to(at::kDouble).mean().item<double>(), 0.99) << what;
}

TEST(RoundMerge, FusedMergeAgreesWithTheReference) {
  // float32 outputs and accumulator (CPU fp32 training): 3 more rounds, calls of 100 rows.
  expect_merges_agree(first_round(1000, 16, at::kFloat, 1), at::kFloat, 3, 100, "float32");
  // Calls larger than a thread's share (16,384 values): the rows split over threads.
  expect_merges_agree(first_round(6000, 16, at::kFloat, 5), at::kFloat, 2, 3000, "calls split over threads");
  // One call over every row, and a width of 1.
  expect_merges_agree(first_round(777, 1, at::kFloat, 2), at::kFloat, 1, 777, "width 1, one call");
  // bfloat16 outputs merged in float32 (autocast on the CPU).
  expect_merges_agree(first_round(500, 32, at::kFloat, 3), at::kBFloat16, 2, 64, "bfloat16 into float32");
  // float64 throughout (the gradient checks).
  expect_merges_agree(first_round(300, 8, at::kDouble, 4), at::kDouble, 2, 50, "float64");
}

TEST(RoundMerge, FusedMergeIsTheWeightedSumOfTheRounds) {
  // Two rounds by hand: out = (O0 exp(l0) + O1 exp(l1)) / (exp(l0) + exp(l1)), lse = log of the sum.
  const auto options = at::TensorOptions().dtype(at::kDouble);
  RunningMerge merge{at::tensor({1.0, 2.0, -3.0, 4.0}, options).view({2, 2}), at::tensor({-1.0, -1.0}, options)};
  const at::Tensor out = at::tensor({3.0, -1.0, 0.0, 2.0}, options).view({2, 2});
  const at::Tensor lse = at::tensor({2.0, -1.0}, options);
  merge_round_rows_(merge.out, merge.lse, at::tensor({1, 0}, at::kLong), out, lse);
  // Row 0 got out[1] with lse -1 against -1 (equal weights); row 1 got out[0] with lse 2 against -1.
  const double w = std::exp(2.0) / (std::exp(2.0) + std::exp(-1.0));
  const at::Tensor want =
      at::tensor({0.5, 2.0, 3.0 * w - 3.0 * (1 - w), -1.0 * w + 4.0 * (1 - w)}, options).view({2, 2});
  EXPECT_LE((merge.out - want).abs().max().item<double>(), 1e-15);
  EXPECT_NEAR(merge.lse[0].item<double>(), -1.0 + std::log(2.0), 1e-15);
  EXPECT_NEAR(merge.lse[1].item<double>(), std::log(std::exp(2.0) + std::exp(-1.0)), 1e-14);
}

TEST(RoundMerge, FusedSumEqualsIndexAddBitForBit) {
  for (auto [accumulate, values_dtype] : {std::pair{at::kFloat, at::kFloat}, std::pair{at::kFloat, at::kBFloat16},
                                          std::pair{at::kDouble, at::kDouble}}) {
    const auto options = at::TensorOptions().dtype(accumulate);
    // 2,800 rows of 24 per call: more than one thread's share (16,384 values).
    at::Tensor fused = at::randn({3000, 24}, seeded(5), options), reference = fused.clone();
    for (int64_t round = 0; round < 3; ++round) {
      const at::Tensor rows = at::randperm(3000, seeded(10 + round)).narrow(0, 0, 2800);
      const at::Tensor values = at::randn({2800, 24}, seeded(20 + round)).to(values_dtype);
      ASSERT_TRUE(add_rows_uses_fused(fused, rows, values));
      add_rows_(fused, rows, values);
      add_rows_reference_(reference, rows, values);
    }
    EXPECT_TRUE(at::equal(fused, reference)) << at::toString(accumulate) << " += " << at::toString(values_dtype);
  }
}

TEST(RoundMerge, LeavesOtherInputsToTheReferenceAndRefusesRowsOutOfRange) {
  RunningMerge merge = first_round(10, 4, at::kFloat, 6);
  const at::Tensor rows = at::arange(10, at::kLong), out = at::randn({10, 4}, seeded(7));
  const at::Tensor lse = at::randn({10}, seeded(8));
  // A strided accumulator and an int32 index are not the fused pass's; the reference takes them.
  const at::Tensor strided = at::randn({4, 10}, seeded(9)).t();
  EXPECT_FALSE(merge_round_rows_uses_fused(strided, merge.lse, rows, out, lse));
  EXPECT_FALSE(add_rows_uses_fused(strided, rows, out));
  EXPECT_FALSE(add_rows_uses_fused(merge.out, rows.to(at::kInt), out));
  at::Tensor via_dispatch = strided.clone(at::MemoryFormat::Preserve);
  at::Tensor via_reference = strided.clone(at::MemoryFormat::Preserve);
  add_rows_(via_dispatch, rows, out);
  add_rows_reference_(via_reference, rows, out);
  EXPECT_TRUE(at::equal(via_dispatch, via_reference));
  // A row past the end is an error, not a write outside the accumulator.
  EXPECT_THROW(merge_round_rows_(merge.out, merge.lse, at::tensor({3, 10}, at::kLong), out.narrow(0, 0, 2),
                                 lse.narrow(0, 0, 2)),
               c10::Error);
  EXPECT_THROW(add_rows_(merge.out, at::tensor({-1}, at::kLong), out.narrow(0, 0, 1)), c10::Error);
}

}  // namespace
}  // namespace longgan::kernels

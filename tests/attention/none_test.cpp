// none, the ablation spec: parses and prints like every type, and attends to nothing (zero output).
#include <gtest/gtest.h>

#include "attention/attention.h"
#include "attention_test_support.h"

namespace longgan::attention {
namespace {

TEST(NoneAttention, ParsesPrintsAndRoundTripsThroughJson) {
  const AttentionSpec spec = parse_attention_spec("none");
  EXPECT_TRUE(is_none(spec));
  EXPECT_FALSE(is_none(parse_attention_spec("dense")));
  EXPECT_EQ(to_string(spec), "none");
  EXPECT_EQ(attention_spec_from_json(to_json(spec)), spec);
  EXPECT_THROW(parse_attention_spec("none:hashes=2"), std::invalid_argument);  // it has no options
  // It fits any lengths and is left as it is by the fitting of bare names.
  EXPECT_EQ(fit_if_bare(spec, 3, 1), spec);
}

TEST(NoneAttention, OutputIsZeroOfValueWidthAndGetsNoGradient) {
  const at::Tensor q = testing::randn({2, 3, 10, 4}, 1).requires_grad_(true);
  const at::Tensor k = testing::randn({2, 3, 6, 4}, 2), v = testing::randn({2, 3, 6, 5}, 3);
  const at::Tensor out = attend(NoneOptions{}, q, k, v);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, 3, 10, 5}));
  EXPECT_TRUE(at::equal(out, at::zeros_like(out)));
  EXPECT_FALSE(out.requires_grad());
  // The input checks still apply.
  EXPECT_THROW(attend(NoneOptions{}, q, k, v.narrow(2, 0, 5)), std::invalid_argument);
}

}  // namespace
}  // namespace longgan::attention

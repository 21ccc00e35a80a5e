#include "checkpoints/rng_state.h"

#include <gtest/gtest.h>

namespace longgan::checkpoints {
namespace {

TEST(RngState, RestoreRepeatsTheSameDraws) {
  torch::manual_seed(3);
  TensorMap state = capture_rng_state();
  ASSERT_TRUE(state.count("cpu"));
  auto first = torch::randn({8});
  // Through the on-disk encoding, as a resume does.
  restore_rng_state(deserialize_tensors(serialize_tensors(state), "memory"));
  auto second = torch::randn({8});
  EXPECT_TRUE(torch::equal(first, second));
}

TEST(RngState, UnknownGeneratorIsAnError) {
  EXPECT_ANY_THROW(restore_rng_state({{"tpu", torch::zeros({1}, torch::kUInt8)}}));
}

}  // namespace
}  // namespace longgan::checkpoints

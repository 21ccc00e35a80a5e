#include "gan/sampling.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

namespace longgan::gan {
namespace {

TEST(Sampling, TruncatedNormalStaysWithinThresholdAndIsReproducible) {
  at::Generator a = at::make_generator<at::CPUGeneratorImpl>(5);
  at::Generator b = at::make_generator<at::CPUGeneratorImpl>(5);
  const at::Tensor za = truncated_normal(64, 32, 0.5, a);
  EXPECT_LE(za.abs().max().item<double>(), 0.5);
  EXPECT_TRUE(at::equal(za, truncated_normal(64, 32, 0.5, b)));
  at::Generator c = at::make_generator<at::CPUGeneratorImpl>(5);
  const at::Tensor plain = truncated_normal(64, 32, 0.0, c);
  EXPECT_GT(plain.abs().max().item<double>(), 2.0);  // 2048 normals: max |z| > 2 almost surely
}

TEST(Sampling, LabelsInRange) {
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(1);
  const at::Tensor labels = random_labels(100, 3, g);
  EXPECT_EQ(labels.scalar_type(), at::kLong);
  EXPECT_GE(labels.min().item<int64_t>(), 0);
  EXPECT_LE(labels.max().item<int64_t>(), 2);
}

TEST(Sampling, SeededGlobalGeneratorIsRestored) {
  torch::manual_seed(3);
  const at::Tensor expected = torch::randn({4});
  torch::manual_seed(3);
  at::Tensor inside1, inside2;
  with_seeded_global_generator(11, [&] { inside1 = torch::randn({4}); });
  EXPECT_TRUE(at::equal(torch::randn({4}), expected));
  with_seeded_global_generator(11, [&] { inside2 = torch::randn({4}); });
  EXPECT_TRUE(at::equal(inside1, inside2));
}

}  // namespace
}  // namespace longgan::gan

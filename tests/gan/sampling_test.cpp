#include "gan/sampling.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

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

// Variance of N(0, 1) truncated to [-t, t]: 1 - 2 t phi(t) / (2 Phi(t) - 1).
double truncated_variance(double t) {
  const double phi = std::exp(-0.5 * t * t) / std::sqrt(2 * M_PI);
  const double mass = std::erf(t / std::sqrt(2.0));
  return 1 - 2 * t * phi / mass;
}

TEST(Sampling, TruncatedNormalMomentsMatchTheory) {
  // One threshold on each proposal (uniform below 0.5, normal above) and one near the switch.
  for (double t : {0.05, 0.3, 0.7, 1.5}) {
    at::Generator g = at::make_generator<at::CPUGeneratorImpl>(7);
    const at::Tensor z = truncated_normal(400, 500, t, g).to(at::kDouble);
    const int64_t n = z.numel();
    const double variance = truncated_variance(t);
    EXPECT_LE(z.abs().max().item<double>(), t);
    // Standard errors of the mean (sqrt(var / n)) and of the second moment (sqrt(E z^4 / n) <= t^2 / sqrt(n)).
    EXPECT_NEAR(z.mean().item<double>(), 0.0, 5 * std::sqrt(variance / n)) << "t = " << t;
    EXPECT_NEAR(z.square().mean().item<double>(), variance, 5 * t * t / std::sqrt(static_cast<double>(n)))
        << "t = " << t;
    // The shape, not only the spread: the fraction within t / 2 against the exact one.
    const double inner = std::erf(t / 2 / std::sqrt(2.0)) / std::erf(t / std::sqrt(2.0));
    const double observed = (z.abs() <= t / 2).to(at::kDouble).mean().item<double>();
    EXPECT_NEAR(observed, inner, 5 * std::sqrt(inner * (1 - inner) / n)) << "t = " << t;
  }
}

TEST(Sampling, TinyThresholdsFinishWithinBounds) {
  for (double t : {1e-6, 1e-20, 1e-300}) {
    at::Generator g = at::make_generator<at::CPUGeneratorImpl>(3);
    const at::Tensor z = truncated_normal(64, 128, t, g);
    EXPECT_LE(z.abs().max().item<double>(), t) << "t = " << t;
    EXPECT_TRUE(z.isfinite().all().item<bool>());
  }
  // 1e-6: uniform on the interval up to exp(-t^2/2) ~ 1: variance t^2 / 3.
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(4);
  const at::Tensor z = truncated_normal(200, 500, 1e-6, g).to(at::kDouble) / 1e-6;
  EXPECT_NEAR(z.square().mean().item<double>(), 1.0 / 3, 0.01);
}

TEST(Sampling, NegativeOrNanThresholdIsRejected) {
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(1);
  EXPECT_THROW(truncated_normal(2, 2, -1.0, g), std::invalid_argument);
  EXPECT_THROW(truncated_normal(2, 2, std::nan(""), g), std::invalid_argument);
  EXPECT_EQ(truncated_normal(2, 3, std::numeric_limits<double>::infinity(), g).sizes(), (at::IntArrayRef{2, 3}));
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

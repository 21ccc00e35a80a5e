#include "gan/spectral_norm.h"

#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>

#include <stdexcept>

namespace longgan::gan {
namespace {

double largest_singular_value(const at::Tensor& weight) {
  return at::linalg_svdvals(weight.reshape({weight.size(0), -1}).to(at::kDouble)).max().item<double>();
}

TEST(SpectralNorm, PowerIterationMatchesSvdForConvAndLinear) {
  torch::manual_seed(1);
  SNConv2d conv(6, 10, 3);
  SNLinear linear(12, 7);
  const double conv_sigma = conv->estimate_sigma(50);
  const double linear_sigma = linear->estimate_sigma(50);
  EXPECT_NEAR(conv_sigma / largest_singular_value(conv->weight), 1.0, 1e-3);
  EXPECT_NEAR(linear_sigma / largest_singular_value(linear->weight), 1.0, 1e-3);
}

TEST(SpectralNorm, EpsFloorsTheNormsOfThePowerIteration) {
  torch::manual_seed(7);
  SNLinear plain(12, 7);
  SNLinear floored(12, 7);
  {
    torch::NoGradGuard no_grad;
    plain->weight.mul_(1e-9);  // |W^T u| ~ 1e-9: below a floor of 1e-6, far above the default 1e-12
    floored->weight.copy_(plain->weight);
    floored->u.copy_(plain->u);
  }
  EXPECT_EQ(plain->eps, kDefaultSpectralNormEps);
  floored->eps = 1e-6;
  const double truth = largest_singular_value(plain->weight);
  EXPECT_NEAR(plain->estimate_sigma(50) / truth, 1.0, 1e-3);
  // v = W^T u / 1e-6 is far from unit length, so the estimate collapses (BigGAN's SN_eps does the same).
  EXPECT_LT(floored->estimate_sigma(50), 0.01 * truth);
  EXPECT_EQ(set_spectral_norm_eps(*floored, 1e-8), 1);
  EXPECT_EQ(floored->eps, 1e-8);
  EXPECT_THROW(set_spectral_norm_eps(*floored, 0.0), std::invalid_argument);
}

TEST(SpectralNorm, TrainingForwardUpdatesUEvalDoesNot) {
  torch::manual_seed(2);
  SNLinear linear(5, 4);
  const at::Tensor x = torch::randn({3, 5});
  const at::Tensor u0 = linear->u.clone();
  linear->eval();
  linear->forward(x);
  EXPECT_TRUE(at::equal(linear->u, u0));
  linear->train();
  linear->forward(x);
  EXPECT_FALSE(at::equal(linear->u, u0));
  EXPECT_NEAR(linear->u.norm().item<double>(), 1.0, 1e-6);
}

TEST(SpectralNorm, NormalizedWeightHasUnitSpectralNormAfterConvergence) {
  torch::manual_seed(3);
  SNConv2d conv(4, 8, 1, /*bias=*/false);
  conv->estimate_sigma(100);
  conv->eval();
  const at::Tensor w = conv->normalized_weight();
  EXPECT_NEAR(largest_singular_value(w.detach()), 1.0, 1e-3);
  EXPECT_FALSE(conv->bias.defined());
}

TEST(SpectralNorm, GradientFlowsToWeight) {
  torch::manual_seed(4);
  SNLinear linear(3, 2);
  linear->forward(torch::randn({4, 3})).sum().backward();
  ASSERT_TRUE(linear->weight.grad().defined());
  EXPECT_GT(linear->weight.grad().abs().sum().item<double>(), 0.0);
}

TEST(SpectralNorm, AutocastOffRestoresFlagsAlsoOnException) {
  const bool cuda_before = at::autocast::is_autocast_enabled(at::kCUDA);
  const bool cpu_before = at::autocast::is_autocast_enabled(at::kCPU);
  at::autocast::set_autocast_enabled(at::kCUDA, true);
  at::autocast::set_autocast_enabled(at::kCPU, true);
  {
    const AutocastOff off;
    EXPECT_FALSE(at::autocast::is_autocast_enabled(at::kCUDA));
    EXPECT_FALSE(at::autocast::is_autocast_enabled(at::kCPU));
  }
  EXPECT_TRUE(at::autocast::is_autocast_enabled(at::kCUDA));
  EXPECT_TRUE(at::autocast::is_autocast_enabled(at::kCPU));
  try {
    const AutocastOff off;
    throw std::runtime_error("boom");
  } catch (const std::runtime_error&) {
  }
  EXPECT_TRUE(at::autocast::is_autocast_enabled(at::kCUDA));
  EXPECT_TRUE(at::autocast::is_autocast_enabled(at::kCPU));
  at::autocast::set_autocast_enabled(at::kCUDA, cuda_before);
  at::autocast::set_autocast_enabled(at::kCPU, cpu_before);
}

TEST(SpectralNorm, SigmaIsFp32AndUnchangedUnderCpuAutocast) {
  torch::manual_seed(3);
  const at::Tensor w = torch::randn({6, 5});
  at::Tensor u1 = torch::randn({6});
  at::Tensor u2 = u1.clone();
  const at::Tensor plain = spectral_sigma(w, u1, 2);
  const bool cpu_before = at::autocast::is_autocast_enabled(at::kCPU);
  const at::ScalarType dtype_before = at::autocast::get_autocast_dtype(at::kCPU);
  at::autocast::set_autocast_enabled(at::kCPU, true);
  at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
  const at::Tensor under = spectral_sigma(w, u2, 2);
  EXPECT_TRUE(at::autocast::is_autocast_enabled(at::kCPU));  // the caller's state is back
  at::autocast::set_autocast_enabled(at::kCPU, cpu_before);
  at::autocast::set_autocast_dtype(at::kCPU, dtype_before);
  EXPECT_EQ(under.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(under, plain));
  EXPECT_TRUE(at::equal(u1, u2));
}


TEST(SpectralNorm, BigGanStyleTakesOneStepFromTheStoredUInEvalAndIgnoresItsNorm) {
  torch::manual_seed(3);
  const at::Tensor w = torch::randn({6, 5, 3, 3});
  const at::Tensor flat = w.reshape({6, -1});
  const at::Tensor u0 = torch::randn({6}) * 3.0;  // unnormalized, as BigGAN's init and EMA leave it
  // BigGAN-PyTorch's layers.SN: v = normalize(u W), u' = normalize(v W^T), sigma = v W^T u'^T.
  const at::Tensor v = at::mv(flat.t(), u0) / at::mv(flat.t(), u0).norm();
  const at::Tensor u1 = at::mv(flat, v) / at::mv(flat, v).norm();
  const double expected = at::dot(u1, at::mv(flat, v)).item<double>();

  at::Tensor u = u0.clone();
  const double eval_sigma = spectral_sigma(w, u, 0, 1e-12, SpectralNormStyle::biggan).item<double>();
  EXPECT_NEAR(eval_sigma, expected, 1e-5 * expected);
  EXPECT_TRUE(at::equal(u, u0)) << "eval must not store u";
  at::Tensor scaled = u0 * 0.01;
  EXPECT_NEAR(spectral_sigma(w, scaled, 0, 1e-12, SpectralNormStyle::biggan).item<double>(), expected, 1e-5 * expected);
  // LongGAN's eval estimate from the same unconverged u is another number (and scales with |u|).
  at::Tensor again = u0.clone();
  EXPECT_GT(std::abs(spectral_sigma(w, again, 0).item<double>() - expected), 1e-3 * expected);

  // Training stores u' and, with 2 iterations, steps again from it.
  at::Tensor trained = u0.clone();
  spectral_sigma(w, trained, 1, 1e-12, SpectralNormStyle::biggan);
  EXPECT_TRUE(at::allclose(trained, u1, 1e-5, 1e-6));
  at::Tensor twice = u0.clone();
  const double sigma2 = spectral_sigma(w, twice, 2, 1e-12, SpectralNormStyle::biggan).item<double>();
  at::Tensor from_u1 = u1.clone();
  EXPECT_NEAR(sigma2, spectral_sigma(w, from_u1, 0, 1e-12, SpectralNormStyle::biggan).item<double>(), 1e-5 * sigma2);

  // The style reaches every layer of a module.
  SNConv2d conv(5, 6, 3);
  EXPECT_EQ(set_spectral_norm_style(*conv, SpectralNormStyle::biggan), 1);
  EXPECT_EQ(conv->style, SpectralNormStyle::biggan);
  EXPECT_EQ(spectral_norm_style_from_string("biggan"), SpectralNormStyle::biggan);
  EXPECT_THROW(spectral_norm_style_from_string("BigGAN"), std::invalid_argument);
}

}  // namespace
}  // namespace longgan::gan

// FID and KID math on feature vectors (no network): known answers, symmetry, monotonicity.
#include "gan/fid/fid.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cmath>

namespace longgan::gan {
namespace {

at::Tensor random_features(int64_t n, int64_t d, uint64_t seed) {
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randn({n, d}, generator, at::kDouble);
}

FeatureStats stats_of(at::Tensor mean, at::Tensor cov) { return FeatureStats{std::move(mean), std::move(cov), 100}; }

TEST(FeatureStats, MeanAndUnbiasedCovariance) {
  const at::Tensor x = torch::tensor({1.0, 2.0, 3.0, 6.0, 5.0, 4.0}, at::kFloat).view({3, 2});
  const FeatureStats stats = feature_stats(x);
  EXPECT_EQ(stats.count, 3);
  EXPECT_EQ(stats.mean.scalar_type(), at::kDouble);
  EXPECT_TRUE(at::allclose(stats.mean, torch::tensor({3.0, 4.0}, at::kDouble)));
  // Deviations (-2, -2), (0, 2), (2, 0): sums of products / (3 - 1).
  EXPECT_TRUE(at::allclose(stats.cov, torch::tensor({4.0, 2.0, 2.0, 4.0}, at::kDouble).view({2, 2})));
  EXPECT_THROW(feature_stats(at::zeros({1, 4})), std::invalid_argument);
  EXPECT_THROW(feature_stats(at::zeros({4}, at::kFloat)), std::invalid_argument);
}

TEST(Frechet, SetAgainstItselfIsZero) {
  // Full-rank and rank-deficient (fewer samples than dimensions, as small FID sets are).
  for (auto [n, d] : {std::pair<int64_t, int64_t>{400, 32}, {20, 64}}) {
    const FeatureStats stats = feature_stats(random_features(n, d, 1).abs());  // non-negative, like pool features
    const double scale = 2 * stats.cov.trace().item<double>();
    EXPECT_LE(frechet_distance(stats, stats), 1e-6 * scale) << n << "x" << d;
  }
}

TEST(Frechet, DiagonalCovariancesClosedForm) {
  // Commuting (diagonal) covariances: |mu1 - mu2|^2 + sum (s1 - s2)^2 over the standard deviations.
  const at::Tensor mu1 = torch::tensor({0.0, 1.0, 2.0}, at::kDouble), mu2 = torch::tensor({1.0, 1.0, 0.0}, at::kDouble);
  const at::Tensor sd1 = torch::tensor({1.0, 2.0, 0.5}, at::kDouble), sd2 = torch::tensor({3.0, 2.0, 1.5}, at::kDouble);
  const double expected = 1 + 0 + 4 + (4 + 0 + 1);
  EXPECT_NEAR(frechet_distance(stats_of(mu1, at::diag(sd1 * sd1)), stats_of(mu2, at::diag(sd2 * sd2))), expected, 1e-9);
}

TEST(Frechet, NonCommutingCovariancesClosedForm) {
  // For 2x2 S1 S2 with eigenvalues a, b >= 0: tr sqrt(S1 S2) = sqrt(a) + sqrt(b) = sqrt(tr + 2 sqrt(det)).
  const at::Tensor s1 = torch::tensor({2.0, 1.0, 1.0, 2.0}, at::kDouble).view({2, 2});
  const at::Tensor s2 = torch::tensor({3.0, 0.0, 0.0, 1.0}, at::kDouble).view({2, 2});
  const at::Tensor product = s1.mm(s2);
  const double tr = product.trace().item<double>(), det = at::linalg_det(product).item<double>();
  const double trace_sqrt = std::sqrt(tr + 2 * std::sqrt(det));
  const at::Tensor mu = torch::tensor({0.5, -0.5}, at::kDouble);
  const double expected = 0.5 + 4 + 4 - 2 * trace_sqrt;
  EXPECT_NEAR(frechet_distance(stats_of(mu, s1), stats_of(at::zeros({2}, at::kDouble), s2)), expected, 1e-9);
}

TEST(Frechet, SmallSetFactorsGiveTheEigenDecompositionsAnswer) {
  // Fewer samples than dimensions: the statistics carry a factor and the distance takes the small
  // path; without the factors it takes the [D, D] eigen-decompositions.
  const FeatureStats a = feature_stats(random_features(12, 40, 13).abs());
  const FeatureStats b = feature_stats(random_features(9, 40, 14).abs() * 1.5 + 0.1);
  const FeatureStats big = feature_stats(random_features(90, 40, 15).abs());
  ASSERT_TRUE(a.factor.defined() && b.factor.defined());
  ASSERT_FALSE(big.factor.defined());
  auto without_factor = [](FeatureStats s) {
    s.factor = at::Tensor();
    return s;
  };
  // The eigen path adds the square roots of rounding noise in the null space (~1e-8 relative here).
  const double eigen = frechet_distance(without_factor(a), without_factor(b));
  EXPECT_GT(eigen, 1.0);
  EXPECT_NEAR(frechet_distance(a, b), eigen, 1e-7 * eigen);
  EXPECT_NEAR(frechet_distance(b, a), eigen, 1e-7 * eigen);
  const double mixed = frechet_distance(without_factor(a), big);
  EXPECT_NEAR(frechet_distance(a, big), mixed, 1e-7 * mixed);
  EXPECT_NEAR(frechet_distance(big, a), mixed, 1e-7 * mixed);
}

TEST(Frechet, SampledGaussiansApproachTheirDistance) {
  // N(0, I) against N(m, 4 I) in 8 dimensions: |m|^2 + 8 * (2 - 1)^2.
  const int64_t d = 8, n = 20000;
  const at::Tensor a = random_features(n, d, 2);
  const at::Tensor b = random_features(n, d, 3) * 2 + 0.5;
  const double expected = d * 0.25 + d * 1.0;
  EXPECT_NEAR(frechet_distance(feature_stats(a), feature_stats(b)), expected, 0.05 * expected);
}

TEST(Frechet, SymmetricAndGrowsWithShift) {
  const at::Tensor a = random_features(300, 16, 4);
  const at::Tensor b = random_features(300, 16, 5);
  double previous = -1;
  for (double shift : {0.0, 0.2, 0.5, 1.0}) {
    const FeatureStats sa = feature_stats(a), sb = feature_stats(b + shift);
    const double forward = frechet_distance(sa, sb), backward = frechet_distance(sb, sa);
    EXPECT_NEAR(forward, backward, 1e-9 * std::max(1.0, forward));
    EXPECT_GT(forward, previous) << "shift " << shift;
    previous = forward;
  }
  EXPECT_THROW(frechet_distance(feature_stats(a), feature_stats(random_features(10, 8, 6))), std::invalid_argument);
}

TEST(Frechet, GrowsAsOneSetLosesVariety) {
  // Blurring images pulls their features together: the same set shrunk towards its mean.
  const at::Tensor a = random_features(300, 16, 16).abs(), b = random_features(300, 16, 17).abs();
  const at::Tensor centre = b.mean(0);
  const FeatureStats sa = feature_stats(a);
  auto shrunk = [&](double spread) { return centre + (b - centre) * spread; };
  double previous = -1;
  for (double spread : {1.0, 0.7, 0.4, 0.1}) {
    const double distance = frechet_distance(sa, feature_stats(shrunk(spread)));
    EXPECT_GT(distance, previous) << "spread " << spread;
    previous = distance;
  }
  const KidOptions whole_sets{1, 300, 0};
  const double same = kernel_inception_distance(a, shrunk(1.0), whole_sets).mean;
  const double narrow = kernel_inception_distance(a, shrunk(0.1), whole_sets).mean;
  EXPECT_GT(narrow, 0.0);
  EXPECT_GT(narrow, 3 * std::abs(same)) << "same distribution " << same << ", shrunk " << narrow;
}

// The unbiased MMD^2 of two whole sets with k(x, y) = (x.y / d + 1)^3, by explicit loops.
double mmd_by_loops(const at::Tensor& x, const at::Tensor& y) {
  const int64_t n = x.size(0), d = x.size(1);
  auto k = [d](const at::Tensor& p, const at::Tensor& q) { return std::pow(p.dot(q).item<double>() / d + 1, 3); };
  double xx = 0, yy = 0, xy = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      if (i != j) xx += k(x[i], x[j]), yy += k(y[i], y[j]);
      xy += k(x[i], y[j]);
    }
  }
  return xx / (n * (n - 1)) + yy / (n * (n - 1)) - 2 * xy / (n * n);
}

TEST(Kid, WholeSetsEqualTheUnbiasedMmd) {
  const at::Tensor x = random_features(12, 5, 7), y = random_features(12, 5, 8) + 0.3;
  // One subset as large as the sets: every element, whatever the permutation.
  const KidResult kid = kernel_inception_distance(x, y, KidOptions{1, 1000, 0});
  EXPECT_EQ(kid.subset_size, 12);
  EXPECT_NEAR(kid.mean, mmd_by_loops(x, y), 1e-9);
  EXPECT_EQ(kid.std, 0.0);
}

TEST(Kid, LargeSetsTakeTheSamePath) {
  // Sets above the size where all inner products are precomputed: each subset multiplies its own.
  const at::Tensor x = random_features(4200, 2, 9), y = random_features(4200, 2, 10) + 0.2;
  const KidResult whole = kernel_inception_distance(x, y, KidOptions{1, 5000, 0});
  const at::Tensor kxx = (x.mm(x.t()) / 2 + 1).pow(3), kyy = (y.mm(y.t()) / 2 + 1).pow(3);
  const double pairs = 4200.0 * 4199.0;
  const double expected = (kxx.sum() - kxx.trace()).item<double>() / pairs +
                          (kyy.sum() - kyy.trace()).item<double>() / pairs -
                          2 * (x.mm(y.t()) / 2 + 1).pow(3).mean().item<double>();
  EXPECT_NEAR(whole.mean, expected, 1e-9 * std::abs(expected) + 1e-12);
}

TEST(Kid, SymmetricNearZeroForOneDistributionAndGrowsWithShift) {
  const at::Tensor a = random_features(200, 16, 11), b = random_features(150, 16, 12);
  const KidOptions options{20, 50, 3};
  double previous = -1;
  for (double shift : {0.0, 0.3, 0.6, 1.2}) {
    const KidResult forward = kernel_inception_distance(a, b + shift, options);
    const KidResult backward = kernel_inception_distance(b + shift, a, options);
    EXPECT_NEAR(forward.mean, backward.mean, 1e-12 * std::max(1.0, std::abs(forward.mean)));
    EXPECT_NEAR(forward.std, backward.std, 1e-12 * std::max(1.0, forward.std));
    EXPECT_EQ(forward.subset_size, 50);
    if (shift == 0.0) EXPECT_LT(std::abs(forward.mean), 3 * forward.std + 1e-3);  // unbiased: zero on average
    EXPECT_GT(forward.mean, previous) << "shift " << shift;
    previous = forward.mean;
  }
  // The same seed draws the same subsets.
  EXPECT_EQ(kernel_inception_distance(a, b, options).mean, kernel_inception_distance(a, b, options).mean);
  EXPECT_THROW(kernel_inception_distance(a, b, KidOptions{0, 10, 0}), std::invalid_argument);
  EXPECT_THROW(kernel_inception_distance(a, b, KidOptions{5, 1, 0}), std::invalid_argument);
}

}  // namespace
}  // namespace longgan::gan

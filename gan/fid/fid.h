#pragma once
// Image-quality metrics on feature vectors (DESIGN.md §7): the Fréchet distance between the
// Gaussians fitted to two feature sets (FID when the features are Inception pool features) and
// the kernel inception distance (KID, Binkowski et al. 2018). Everything here works on features
// alone, so the math is tested without running a network.
#include <torch/torch.h>

#include <cstdint>

namespace longgan::gan {

// Mean and covariance of a feature set, in double precision.
struct FeatureStats {
  at::Tensor mean;    // [D] float64
  at::Tensor cov;     // [D, D] float64, unbiased (divides by count - 1), as numpy.cov
  int64_t count = 0;
  at::Tensor factor;  // when count <= D: [D, count] float64 with cov = factor factor^T (centred
                      // features / sqrt(count - 1)); undefined otherwise
};

// Statistics of features [N, D] (any floating dtype, N >= 2; std::invalid_argument otherwise).
FeatureStats feature_stats(const at::Tensor& features);

// |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)), in double precision. With S1 = A1 A1^T
// and S2 = A2 A2^T, the eigenvalues of S1 S2 are the squared singular values of A1^T A2, so the
// trace of the square root is the sum of those singular values: A is a statistics' factor when
// it has one (few samples: a small matrix, exact), otherwise the symmetric square root of its
// covariance from an eigen-decomposition (eigenvalues below zero, rounding noise, clamped).
// When neither side has a factor: the eigenvalues of S1^(1/2) S2 S1^(1/2), clamped, square-rooted
// and summed. Never negative.
double frechet_distance(const FeatureStats& a, const FeatureStats& b);

struct KidOptions {
  int64_t subsets = 100;       // random subsets averaged
  int64_t subset_size = 1000;  // images per subset (capped at the smaller set's size)
  uint64_t seed = 0;           // the subsets drawn: fixed, so a result repeats exactly
  void validate() const;       // std::invalid_argument naming the field
};

struct KidResult {
  double mean = 0;  // mean over subsets of the unbiased MMD^2
  double std = 0;   // its standard deviation over subsets (population, as numpy.std)
  int64_t subsets = 0, subset_size = 0;
};

// The unbiased squared MMD with the cubic polynomial kernel k(x, y) = (x.y / D + 1)^3 between
// random subsets of `a` [N, D] and `b` [M, D], averaged over subsets. Subset i of a set of size S
// is the first min(subset_size, N, M) entries of at::randperm(S) drawn from a CPU generator
// seeded with datasets::mix64(seed ^ datasets::mix64(i)): it depends only on (seed, i, S), so
// kid(a, b) == kid(b, a). Needs N, M >= 2 (std::invalid_argument otherwise).
KidResult kernel_inception_distance(const at::Tensor& a, const at::Tensor& b, const KidOptions& options = {});

}  // namespace longgan::gan

#include "gan/fid/fid.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "datasets/hash.h"

namespace longgan::gan {
namespace {

void check_features(const at::Tensor& features, const char* what) {
  if (!features.defined() || features.dim() != 2 || features.size(0) < 2 || !features.is_floating_point()) {
    throw std::invalid_argument(std::string(what) + " must be floating-point features [N, D] with N >= 2, got " +
                                (features.defined() ? std::to_string(features.dim()) + " dims" : "none"));
  }
}

// The symmetric square root V diag(sqrt(max(l, 0))) V^T of a symmetric PSD matrix.
at::Tensor sqrt_psd(const at::Tensor& s) {
  auto [eigenvalues, eigenvectors] = at::linalg_eigh(s);
  return (eigenvectors * eigenvalues.clamp_min(0).sqrt().unsqueeze(0)).mm(eigenvectors.t());
}

// The sum of the off-diagonal entries of a square matrix.
double off_diagonal_sum(const at::Tensor& k) { return (k.sum() - k.diagonal().sum()).item<double>(); }

}  // namespace

FeatureStats feature_stats(const at::Tensor& features) {
  check_features(features, "feature_stats input");
  const at::Tensor x = features.to(at::kCPU, at::kDouble);
  FeatureStats stats;
  stats.count = x.size(0);
  stats.mean = x.mean(0);
  const at::Tensor centred = x - stats.mean;
  stats.cov = centred.t().mm(centred) / static_cast<double>(stats.count - 1);
  if (stats.count <= x.size(1)) stats.factor = centred.t() / std::sqrt(static_cast<double>(stats.count - 1));
  return stats;
}

double frechet_distance(const FeatureStats& a, const FeatureStats& b) {
  if (!a.mean.defined() || !b.mean.defined() || a.mean.sizes() != b.mean.sizes() || a.cov.sizes() != b.cov.sizes()) {
    throw std::invalid_argument("frechet_distance needs two statistics of the same feature size");
  }
  const at::Tensor s1 = a.cov.to(at::kDouble), s2 = b.cov.to(at::kDouble);
  double trace_sqrt = 0;
  if (a.factor.defined() || b.factor.defined()) {
    // Small sets: singular values of a [K1, K2] matrix instead of [D, D] eigen-decompositions.
    const at::Tensor f1 = a.factor.defined() ? a.factor.to(at::kDouble) : sqrt_psd(s1);
    const at::Tensor f2 = b.factor.defined() ? b.factor.to(at::kDouble) : sqrt_psd(s2);
    trace_sqrt = at::linalg_svdvals(f1.t().mm(f2)).sum().item<double>();
  } else {
    const at::Tensor root1 = sqrt_psd(s1);
    at::Tensor middle = root1.mm(s2).mm(root1);
    middle = (middle + middle.t()) * 0.5;  // exactly symmetric for eigh
    trace_sqrt = at::linalg_eigvalsh(middle).clamp_min(0).sqrt().sum().item<double>();
  }
  const at::Tensor diff = a.mean.to(at::kDouble) - b.mean.to(at::kDouble);
  const double distance =
      diff.dot(diff).item<double>() + s1.trace().item<double>() + s2.trace().item<double>() - 2 * trace_sqrt;
  return std::max(distance, 0.0);
}

void KidOptions::validate() const {
  if (subsets < 1) throw std::invalid_argument("KID subsets must be >= 1, got " + std::to_string(subsets));
  if (subset_size < 2) throw std::invalid_argument("KID subset size must be >= 2, got " + std::to_string(subset_size));
}

KidResult kernel_inception_distance(const at::Tensor& a, const at::Tensor& b, const KidOptions& options) {
  options.validate();
  check_features(a, "KID's first feature set");
  check_features(b, "KID's second feature set");
  if (a.size(1) != b.size(1)) throw std::invalid_argument("KID needs feature sets of the same feature size");
  const at::Tensor x_all = a.to(at::kCPU, at::kDouble), y_all = b.to(at::kCPU, at::kDouble);
  const int64_t n = x_all.size(0), n_other = y_all.size(0);
  const int64_t m = std::min({options.subset_size, n, n_other});
  const double dim = static_cast<double>(x_all.size(1));
  // Up to a few thousand images, the inner products of all pairs are computed once and each
  // subset picks its rows and columns from them (100 subsets of 1,000 then cost one product
  // instead of 300); above that, each subset multiplies its own features.
  constexpr int64_t kGramLimit = 4096;
  const bool gram = std::max(n, n_other) <= kGramLimit;
  at::Tensor xx, yy, xy;
  if (gram) {
    xx = x_all.mm(x_all.t());
    yy = y_all.mm(y_all.t());
    xy = x_all.mm(y_all.t());
  }
  auto kernel = [dim](const at::Tensor& inner) { return (inner / dim + 1).pow(3); };
  auto indices = [m](int64_t size, uint64_t seed) {
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
    return at::randperm(size, generator, at::kLong).narrow(0, 0, m);
  };
  const double pairs = static_cast<double>(m) * static_cast<double>(m - 1);
  std::vector<double> values;
  for (int64_t i = 0; i < options.subsets; ++i) {
    const uint64_t seed = datasets::mix64(options.seed ^ datasets::mix64(static_cast<uint64_t>(i)));
    const at::Tensor ix = indices(n, seed), iy = indices(n_other, seed);
    at::Tensor kxx, kyy, kxy;
    if (gram) {
      kxx = kernel(xx.index_select(0, ix).index_select(1, ix));
      kyy = kernel(yy.index_select(0, iy).index_select(1, iy));
      kxy = kernel(xy.index_select(0, ix).index_select(1, iy));
    } else {
      const at::Tensor x = x_all.index_select(0, ix), y = y_all.index_select(0, iy);
      kxx = kernel(x.mm(x.t()));
      kyy = kernel(y.mm(y.t()));
      kxy = kernel(x.mm(y.t()));
    }
    values.push_back(off_diagonal_sum(kxx) / pairs + off_diagonal_sum(kyy) / pairs - 2 * kxy.mean().item<double>());
  }
  KidResult result;
  result.subsets = options.subsets;
  result.subset_size = m;
  for (double v : values) result.mean += v / static_cast<double>(values.size());
  for (double v : values) result.std += (v - result.mean) * (v - result.mean) / static_cast<double>(values.size());
  result.std = std::sqrt(result.std);
  return result;
}

}  // namespace longgan::gan

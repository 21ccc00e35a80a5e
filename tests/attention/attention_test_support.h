#pragma once
// Inputs and checks shared by the attention tests.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/autograd.h>

#include <functional>

#include "attention/structured_inputs.h"

namespace longgan::attention::testing {

inline at::Generator seeded(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

inline at::Tensor randn(at::IntArrayRef sizes, uint64_t seed, at::ScalarType dtype = at::kFloat) {
  return at::randn(sizes, seeded(seed), at::TensorOptions().dtype(at::kFloat)).to(dtype);
}

// ||a - b|| / ||b|| in float64.
inline double relative_error(const at::Tensor& a, const at::Tensor& b) {
  auto bd = b.to(at::kDouble);
  return (a.to(at::kDouble) - bd).norm().item<double>() / bd.norm().item<double>();
}

using attention::StructuredInputs;
using attention::structured_inputs;

// Largest difference between autograd gradients of sum(f(q, k, v) * w) and central finite
// differences, over every element of q, k and v (float64, tiny shapes only).
inline double max_gradient_error(const std::function<at::Tensor(const at::Tensor&, const at::Tensor&,
                                                                const at::Tensor&)>& f,
                                 at::Tensor q, at::Tensor k, at::Tensor v, double eps = 1e-6) {
  q = q.to(at::kDouble).detach().requires_grad_(true);
  k = k.to(at::kDouble).detach().requires_grad_(true);
  v = v.to(at::kDouble).detach().requires_grad_(true);
  auto w = at::randn(f(q, k, v).sizes(), seeded(99), at::TensorOptions().dtype(at::kDouble));
  auto loss = (f(q, k, v) * w).sum();
  auto grads = torch::autograd::grad({loss}, {q, k, v});
  double worst = 0;
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> inputs = {q, k, v};
  for (size_t t = 0; t < inputs.size(); ++t) {
    auto flat = inputs[t].view(-1);
    auto grad = grads[t].reshape(-1);
    for (int64_t i = 0; i < flat.numel(); ++i) {
      double original = flat[i].item<double>();
      flat[i] = original + eps;
      double plus = (f(q, k, v) * w).sum().item<double>();
      flat[i] = original - eps;
      double minus = (f(q, k, v) * w).sum().item<double>();
      flat[i] = original;
      worst = std::max(worst, std::abs((plus - minus) / (2 * eps) - grad[i].item<double>()));
    }
  }
  return worst;
}

}  // namespace longgan::attention::testing

#include "gan/losses.h"

namespace longgan::gan {
namespace {

// Without the N x N product when W [N, M] has N > M: with G = W W^T and r_i = |w_i|^2,
//   ||G * (1 - I)||^2 = ||W^T W||^2 - sum_i r_i^2   (||W W^T||_F = ||W^T W||_F)
//   (G * (1 - I)) W  = W (W^T W) - diag(r) W
// so both need only the min(N, M)-square Gram matrix and N x M temporaries.
// With N <= M the N x N product is the smaller one and is used directly (no cancellation).
bool rows_are_fewer(const at::Tensor& w) { return w.size(0) <= w.size(1); }

at::Tensor off_diagonal_gram(const at::Tensor& w) {
  return at::mm(w, w.t()) * (1 - at::eye(w.size(0), w.options()));
}

}  // namespace

HingeDLoss hinge_d_loss(const at::Tensor& real_logits, const at::Tensor& fake_logits) {
  return {at::relu(1 - real_logits).mean(), at::relu(1 + fake_logits).mean()};
}

at::Tensor hinge_g_loss(const at::Tensor& fake_logits) { return -fake_logits.mean(); }

at::Tensor ortho_value(const at::Tensor& weight) {
  const at::Tensor w = weight.reshape({weight.size(0), -1});
  if (rows_are_fewer(w)) return off_diagonal_gram(w).pow(2).sum();
  return at::mm(w.t(), w).pow(2).sum() - w.pow(2).sum(1).pow(2).sum();
}

at::Tensor ortho_gradient(const at::Tensor& weight) {
  const at::Tensor w = weight.reshape({weight.size(0), -1});
  if (rows_are_fewer(w)) return (2 * at::mm(off_diagonal_gram(w), w)).view(weight.sizes());
  const at::Tensor r = w.pow(2).sum(1, /*keepdim=*/true);
  return (2 * (at::mm(w, at::mm(w.t(), w)) - r * w)).view(weight.sizes());
}

void apply_ortho_regularization(const std::vector<at::Tensor>& weights, double strength) {
  if (strength == 0) return;
  torch::NoGradGuard no_grad;
  for (const at::Tensor& weight : weights) {
    const at::Tensor step = strength * ortho_gradient(weight.detach());
    at::Tensor grad = weight.mutable_grad();
    if (grad.defined()) {
      grad.add_(step);
    } else {
      weight.mutable_grad() = step.clone();
    }
  }
}

}  // namespace longgan::gan

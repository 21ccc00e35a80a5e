#include "gan/losses.h"

namespace longgan::gan {
namespace {

// (W W^T) * (1 - I) and the flattened W.
std::pair<at::Tensor, at::Tensor> off_diagonal_gram(const at::Tensor& weight) {
  const at::Tensor w = weight.reshape({weight.size(0), -1});
  const at::Tensor gram = at::mm(w, w.t());
  const at::Tensor mask = 1 - at::eye(w.size(0), w.options());
  return {gram * mask, w};
}

}  // namespace

HingeDLoss hinge_d_loss(const at::Tensor& real_logits, const at::Tensor& fake_logits) {
  return {at::relu(1 - real_logits).mean(), at::relu(1 + fake_logits).mean()};
}

at::Tensor hinge_g_loss(const at::Tensor& fake_logits) { return -fake_logits.mean(); }

at::Tensor ortho_value(const at::Tensor& weight) {
  return off_diagonal_gram(weight).first.pow(2).sum();
}

at::Tensor ortho_gradient(const at::Tensor& weight) {
  const auto [gram, w] = off_diagonal_gram(weight);
  return (2 * at::mm(gram, w)).view(weight.sizes());
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

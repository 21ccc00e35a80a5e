#pragma once
// Hinge losses and BigGAN's orthogonal regularization.
#include <torch/torch.h>

#include <vector>

namespace longgan::gan {

struct HingeDLoss {
  at::Tensor real;  // mean(relu(1 - D(x)))
  at::Tensor fake;  // mean(relu(1 + D(G(z))))
};
HingeDLoss hinge_d_loss(const at::Tensor& real_logits, const at::Tensor& fake_logits);
// -mean(D(G(z)))
at::Tensor hinge_g_loss(const at::Tensor& fake_logits);

// ||(W W^T) * (1 - I)||_F^2 with W flattened to [out, -1].
at::Tensor ortho_value(const at::Tensor& weight);
// The gradient BigGAN adds for it: 2 * ((W W^T) * (1 - I)) W, shaped like `weight`.
at::Tensor ortho_gradient(const at::Tensor& weight);
// grad += strength * ortho_gradient(W) for each weight (which must have a gradient; ones
// without are given one). No-op for strength 0.
void apply_ortho_regularization(const std::vector<at::Tensor>& weights, double strength);

}  // namespace longgan::gan

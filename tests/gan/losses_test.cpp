#include "gan/losses.h"

#include <gtest/gtest.h>

namespace longgan::gan {
namespace {

TEST(Losses, HingeOnKnownLogits) {
  const at::Tensor real = torch::tensor({2.0, 0.5, -1.0}, at::kDouble);   // relu(1 - x): 0, 0.5, 2
  const at::Tensor fake = torch::tensor({-3.0, 0.0, 1.5}, at::kDouble);   // relu(1 + x): 0, 1, 2.5
  const HingeDLoss d = hinge_d_loss(real, fake);
  EXPECT_DOUBLE_EQ(d.real.item<double>(), 2.5 / 3);
  EXPECT_DOUBLE_EQ(d.fake.item<double>(), 3.5 / 3);
  EXPECT_DOUBLE_EQ(hinge_g_loss(fake).item<double>(), 1.5 / 3);
}

TEST(Losses, OrthoValueHandComputed) {
  // W = [[1, 2], [3, 4]]: W W^T = [[5, 11], [11, 25]]; off-diagonal squares: 2 * 121.
  EXPECT_DOUBLE_EQ(ortho_value(torch::tensor({1.0, 2.0, 3.0, 4.0}, at::kDouble).view({2, 2})).item<double>(), 242.0);
  // W 3x2 = [[1, 0], [1, 1], [0, 2]]: W W^T off-diagonal entries 1, 0, 2 (each twice): 2 * (1 + 0 + 4).
  const at::Tensor w = torch::tensor({1.0, 0.0, 1.0, 1.0, 0.0, 2.0}, at::kDouble).view({3, 2});
  EXPECT_DOUBLE_EQ(ortho_value(w).item<double>(), 10.0);
  // Flattening: a [3, 1, 1, 2] conv weight is the same matrix.
  EXPECT_DOUBLE_EQ(ortho_value(w.view({3, 1, 1, 2})).item<double>(), 10.0);
  // Orthogonal rows: zero.
  EXPECT_DOUBLE_EQ(ortho_value(torch::eye(3, at::kDouble)).item<double>(), 0.0);
}

TEST(Losses, OrthoGradientIsTheGradientOfOrthoValue) {
  torch::manual_seed(0);
  const at::Tensor w = torch::randn({3, 2, 2}, at::kDouble).requires_grad_();
  ortho_value(w).backward();
  // d/dW ||M * (W W^T)||^2 = 4 (M * W W^T) W; BigGAN's term is half of it: 2 (M * W W^T) W.
  EXPECT_TRUE(at::allclose(ortho_gradient(w.detach()) * 2, w.grad(), 1e-12, 1e-12));
}

TEST(Losses, ApplyOrthoAddsToGradients) {
  const at::Tensor w = torch::tensor({1.0, 2.0, 3.0, 4.0}, at::kDouble).view({2, 2}).requires_grad_();
  w.mutable_grad() = torch::ones({2, 2}, at::kDouble);
  apply_ortho_regularization({w}, 0.5);
  // (W W^T) * (1 - I) = [[0, 11], [11, 0]]; times W = [[33, 44], [11, 22]]; * 2 * 0.5.
  const at::Tensor expected = torch::tensor({34.0, 45.0, 12.0, 23.0}, at::kDouble).view({2, 2});
  EXPECT_TRUE(at::equal(w.grad(), expected));
}

// The naive BigGAN formulas with the N x N product, as the reference.
at::Tensor naive_ortho_value(const at::Tensor& weight) {
  const at::Tensor w = weight.reshape({weight.size(0), -1});
  return (at::mm(w, w.t()) * (1 - at::eye(w.size(0), w.options()))).pow(2).sum();
}
at::Tensor naive_ortho_gradient(const at::Tensor& weight) {
  const at::Tensor w = weight.reshape({weight.size(0), -1});
  return (2 * at::mm(at::mm(w, w.t()) * (1 - at::eye(w.size(0), w.options())), w)).view(weight.sizes());
}

TEST(Losses, OrthoWithoutTheNByNProductMatchesTheNaiveFormula) {
  torch::manual_seed(1);
  // Tall (N > M: the M x M path), wide and square weights, linear and conv shapes.
  for (const std::vector<int64_t>& shape :
       std::vector<std::vector<int64_t>>{{7, 3}, {3, 7}, {5, 5}, {9, 2, 1, 1}, {4, 2, 3, 3}, {40, 6}}) {
    const at::Tensor w = torch::randn(shape, at::kDouble);
    EXPECT_TRUE(at::allclose(ortho_value(w), naive_ortho_value(w), 1e-10, 1e-10)) << w.sizes();
    EXPECT_TRUE(at::allclose(ortho_gradient(w), naive_ortho_gradient(w), 1e-10, 1e-10)) << w.sizes();
    const at::Tensor leaf = w.clone().requires_grad_();
    ortho_value(leaf).backward();
    EXPECT_TRUE(at::allclose(ortho_gradient(w) * 2, leaf.grad(), 1e-10, 1e-10)) << w.sizes();
  }
}

}  // namespace
}  // namespace longgan::gan

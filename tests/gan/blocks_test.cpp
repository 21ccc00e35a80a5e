#include "gan/blocks.h"

#include <gtest/gtest.h>

#include <vector>

namespace longgan::gan {
namespace {

at::Tensor aten_upsample2x(const at::Tensor& x) { return at::upsample_nearest2d(x, {x.size(2) * 2, x.size(3) * 2}); }

double max_difference(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

TEST(Upsample2x, ValuesAndGradientAreAtensExactly) {
  torch::manual_seed(0);
  for (const auto& sizes : std::vector<std::vector<int64_t>>{{2, 3, 4, 4}, {1, 8, 5, 7}, {3, 16, 32, 32}}) {
    const at::Tensor x = torch::randn(sizes);
    const at::Tensor ours_in = x.clone().requires_grad_(), aten_in = x.clone().requires_grad_();
    const at::Tensor ours = upsample2x(ours_in), aten = aten_upsample2x(aten_in);
    EXPECT_TRUE(torch::equal(ours, aten)) << at::IntArrayRef(sizes);
    const at::Tensor grad = torch::randn(aten.sizes());
    ours.backward(grad);
    aten.backward(grad);
    EXPECT_TRUE(torch::equal(ours_in.grad(), aten_in.grad())) << at::IntArrayRef(sizes);
  }
  // Strided input (ATen's own path) and no-grad calls give the same values.
  const at::Tensor wide = torch::randn({2, 4, 6, 12});
  const at::Tensor strided = wide.narrow(3, 2, 6);
  EXPECT_TRUE(torch::equal(upsample2x(strided), aten_upsample2x(strided)));
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(upsample2x(wide), aten_upsample2x(wide)));
}

// The blocks compute BigGAN's shortcuts in another order (1x1 convolution and resampling swapped):
// the same function, to rounding. Eval mode: spectral norm and batch norm change nothing between calls.
TEST(Blocks, ShortcutsInTheirOwnOrderGiveBigGansFunction) {
  torch::manual_seed(0);
  GBlock g(16, 8, /*cond_dim=*/6);
  g->eval();
  const at::Tensor x = torch::randn({3, 16, 8, 8}), cond = torch::randn({3, 6});
  torch::NoGradGuard no_grad;
  at::Tensor h = g->conv1->forward(aten_upsample2x(at::relu(g->cbn1->forward(x, cond))));
  h = g->conv2->forward(at::relu(g->cbn2->forward(h, cond)));
  const at::Tensor g_reference = h + g->conv_sc->forward(aten_upsample2x(x));
  EXPECT_LT(max_difference(g->forward(x, cond), g_reference), 1e-5 * g_reference.abs().max().item<double>());

  for (bool preactivation : {true, false}) {
    DBlock d(8, 16, preactivation, /*downsample=*/true);
    d->eval();
    const at::Tensor in = torch::randn({3, 8, 16, 16});
    const at::Tensor hidden = at::relu(d->conv1->forward(preactivation ? at::relu(in) : in));
    const at::Tensor main = at::avg_pool2d(d->conv2->forward(hidden), {2, 2});
    const at::Tensor shortcut = preactivation ? at::avg_pool2d(d->conv_sc->forward(in), {2, 2})
                                              : d->conv_sc->forward(at::avg_pool2d(in, {2, 2}));
    const at::Tensor d_reference = main + shortcut;
    EXPECT_LT(max_difference(d->forward(in), d_reference), 1e-5 * d_reference.abs().max().item<double>())
        << "preactivation " << preactivation;
  }
}

}  // namespace
}  // namespace longgan::gan

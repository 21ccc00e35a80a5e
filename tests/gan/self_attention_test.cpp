#include "gan/self_attention.h"

#include <gtest/gtest.h>

namespace longgan::gan {
namespace {

TEST(SelfAttention, GammaZeroIsIdentity) {
  torch::manual_seed(0);
  SelfAttention block(16, attention::DenseOptions{});
  const at::Tensor x = torch::randn({2, 16, 8, 8});
  EXPECT_TRUE(at::equal(block->forward(x), x));
}

TEST(SelfAttention, NonzeroGammaChangesOutputAndMatchesManualFormula) {
  torch::manual_seed(1);
  SelfAttention block(16, attention::DenseOptions{}, /*key_pool=*/true, /*heads=*/2);
  block->eval();
  {
    torch::NoGradGuard no_grad;
    block->gamma.fill_(0.5);
  }
  const at::Tensor x = torch::randn({2, 16, 4, 6});
  const at::Tensor out = block->forward(x);
  // Manual: per head, softmax(theta^T phi) g with scale 1.
  const at::Tensor theta = block->theta->forward(x).reshape({2, 2, 1, 24});
  const at::Tensor phi = at::max_pool2d(block->phi->forward(x), {2, 2}).reshape({2, 2, 1, 6});
  const at::Tensor g = at::max_pool2d(block->g->forward(x), {2, 2}).reshape({2, 2, 4, 6});
  const at::Tensor weights = at::softmax(at::matmul(theta.transpose(-1, -2), phi), -1);  // [2,2,24,6]
  const at::Tensor attended = at::matmul(g, weights.transpose(-1, -2)).reshape({2, 8, 4, 6});
  const at::Tensor expected = x + 0.5 * block->o->forward(attended);
  EXPECT_TRUE(at::allclose(out, expected, 1e-5, 1e-5));
  EXPECT_FALSE(at::allclose(out, x));
}

TEST(SelfAttention, WithoutKeyPoolKeepsShape) {
  torch::manual_seed(2);
  SelfAttention block(8, attention::DenseOptions{}, /*key_pool=*/false);
  const at::Tensor x = torch::randn({1, 8, 5, 3});
  EXPECT_EQ(block->forward(x).sizes(), x.sizes());
}

TEST(SelfAttention, RejectsChannelsNotDivisibleByEightTimesHeads) {
  EXPECT_THROW(SelfAttention(12, attention::DenseOptions{}), std::invalid_argument);
  EXPECT_THROW(SelfAttention(16, attention::DenseOptions{}, true, 4), std::invalid_argument);
}

}  // namespace
}  // namespace longgan::gan

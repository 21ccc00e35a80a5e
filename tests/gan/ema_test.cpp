#include "gan/ema.h"

#include <gtest/gtest.h>

namespace longgan::gan {
namespace {

struct Tiny : torch::nn::Module {
  Tiny() {
    weight = register_parameter("weight", torch::zeros({2}));
    stat = register_buffer("stat", torch::zeros({1}));
  }
  at::Tensor weight, stat;
};

TEST(Ema, CopiesBeforeStartAveragesAfterAndCopiesBuffers) {
  Tiny model, ema;
  {
    torch::NoGradGuard no_grad;
    model.weight.copy_(torch::tensor({1.0f, -2.0f}));
    model.stat.fill_(7);
  }
  update_ema(ema, model, 0.9, /*step=*/3, /*start=*/5);
  EXPECT_TRUE(at::equal(ema.weight, model.weight));
  EXPECT_EQ(ema.stat.item<float>(), 7.0f);
  {
    torch::NoGradGuard no_grad;
    model.weight.copy_(torch::tensor({11.0f, 8.0f}));
    model.stat.fill_(9);
  }
  update_ema(ema, model, 0.9, /*step=*/5, /*start=*/5);
  // 0.9 * 1 + 0.1 * 11 = 2; 0.9 * -2 + 0.1 * 8 = -1.
  EXPECT_NEAR(ema.weight[0].item<float>(), 2.0f, 1e-6);
  EXPECT_NEAR(ema.weight[1].item<float>(), -1.0f, 1e-6);
  EXPECT_EQ(ema.stat.item<float>(), 9.0f);
}

struct WithBatchNorm : torch::nn::Module {
  WithBatchNorm() { bn = register_module("bn", torch::nn::BatchNorm2d(2)); }
  torch::nn::BatchNorm2d bn{nullptr};
};

TEST(Ema, AveragesRunningStatisticsWithTheWeightsAndCopiesCounters) {
  WithBatchNorm model, ema;
  {
    torch::NoGradGuard no_grad;
    model.bn->running_mean.fill_(10);
    model.bn->running_var.fill_(3);
    model.bn->num_batches_tracked.fill_(4);
  }
  update_ema(ema, model, 0.9, /*step=*/1, /*start=*/5);  // before start: copies
  EXPECT_TRUE(at::equal(ema.bn->running_mean, model.bn->running_mean));
  {
    torch::NoGradGuard no_grad;
    model.bn->running_mean.fill_(20);
    model.bn->running_var.fill_(1);
    model.bn->num_batches_tracked.fill_(9);
  }
  update_ema(ema, model, 0.9, /*step=*/5, /*start=*/5);
  EXPECT_NEAR(ema.bn->running_mean[0].item<float>(), 0.9f * 10 + 0.1f * 20, 1e-5);
  EXPECT_NEAR(ema.bn->running_var[1].item<float>(), 0.9f * 3 + 0.1f * 1, 1e-6);
  EXPECT_EQ(ema.bn->num_batches_tracked.item<int64_t>(), 9);
}

TEST(Ema, RejectsDifferentModels) {
  Tiny model;
  torch::nn::Linear other(2, 2);
  EXPECT_THROW(update_ema(*other, model, 0.9, 0, 0), std::invalid_argument);
}

}  // namespace
}  // namespace longgan::gan

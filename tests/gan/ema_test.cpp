#include "gan/ema.h"

#include <gtest/gtest.h>

#include <cmath>

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

// G changes from 0 to 1 at once; after `images` images of the half-life form, G_ema holds 1 - (the
// part of the old weights left).
double absorbed_after(double kimg, double rampup, int64_t batch, int64_t images) {
  Tiny model, ema;
  model.to(torch::kDouble);  // float64: the test measures the schedule, not float32 rounding
  ema.to(torch::kDouble);
  {
    torch::NoGradGuard no_grad;
    model.weight.fill_(1);
  }
  for (int64_t seen = 0; seen < images; seen += batch) {
    update_ema(ema, model, half_life_decay(kimg, rampup, seen, batch), /*step=*/1, /*start=*/0);
  }
  return ema.weight[0].item<double>();
}

TEST(Ema, HalfLifeInImagesIsTheSettingWhateverTheBatch) {
  // Half-life 1,600 images, no ramp-up: half of a step change is absorbed after 1,600 images.
  for (int64_t batch : {1, 16, 64, 320}) {
    EXPECT_NEAR(absorbed_after(1.6, 0.0, batch, 1600), 0.5, 1e-9) << "batch " << batch;
    EXPECT_NEAR(absorbed_after(1.6, 0.0, batch, 3200), 0.75, 1e-9) << "batch " << batch;
  }
}

TEST(Ema, RampUpFollowsTheFormulaEarlyAndCapsLater) {
  const double kimg = 10, rampup = 0.05;
  const int64_t batch = 32;
  // Before any image: half-life 0 (floored at 1e-8), so G_ema copies G.
  EXPECT_EQ(half_life_decay(kimg, rampup, 0, batch), 0.0);
  // Early: the half-life is rampup x the images seen.
  for (int64_t seen : {int64_t{640}, int64_t{32000}, int64_t{199968}}) {
    EXPECT_DOUBLE_EQ(half_life_decay(kimg, rampup, seen, batch), std::pow(0.5, 32.0 / (0.05 * static_cast<double>(seen))))
        << seen;
  }
  // From 200,000 images on (10 kimg / 0.05), the cap: 10,000 images.
  const double capped = std::pow(0.5, 32.0 / 10000.0);
  EXPECT_DOUBLE_EQ(half_life_decay(kimg, rampup, 200000, batch), capped);
  EXPECT_DOUBLE_EQ(half_life_decay(kimg, rampup, 5000000, batch), capped);
  // Ramp-up 0: the cap from the first step.
  EXPECT_DOUBLE_EQ(half_life_decay(kimg, 0.0, 0, batch), capped);
  // The decay grows with the images seen and never passes the cap.
  double previous = 0;
  for (int64_t seen = 0; seen <= 400000; seen += 4000) {
    const double decay = half_life_decay(kimg, rampup, seen, batch);
    EXPECT_GE(decay, previous) << seen;
    EXPECT_LE(decay, capped) << seen;
    previous = decay;
  }
}

TEST(Ema, RejectsDifferentModels) {
  Tiny model;
  torch::nn::Linear other(2, 2);
  EXPECT_THROW(update_ema(*other, model, 0.9, 0, 0), std::invalid_argument);
}

}  // namespace
}  // namespace longgan::gan

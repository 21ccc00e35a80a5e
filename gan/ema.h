#pragma once
// Exponential moving average of a model's weights (G_ema) and the two ways of choosing its decay.
#include <torch/torch.h>

#include <cstdint>

namespace longgan::gan {

// For step >= start: ema_p = decay * ema_p + (1 - decay) * p for every parameter and every batch
// norm running statistic (buffers named *running_mean / *running_var: statistics that belong to the
// averaged weights, as BigGAN-PyTorch averages its whole state); before that, ema_p = p. Other
// buffers (batch counters, spectral norm u) are always copied. `ema` and
// `model` must have the same parameter and buffer names (std::invalid_argument otherwise).
void update_ema(torch::nn::Module& ema, const torch::nn::Module& model, double decay, int64_t step,
                int64_t start);

// The decay of one update of the half-life form (stylegan2-ada's G_ema): after a step of
// `batch_images` images, with `images_seen` images trained on before that step,
//   half_life = min(half_life_kimg * 1000, images_seen * rampup)   (rampup 0: no ramp-up)
//   decay     = 0.5 ^ (batch_images / max(half_life, 1e-8))
// so that a change of G is half absorbed after half_life images, whatever the batch.
double half_life_decay(double half_life_kimg, double rampup, int64_t images_seen, int64_t batch_images);

}  // namespace longgan::gan

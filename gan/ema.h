#pragma once
// Exponential moving average of a model's weights (BigGAN's G_ema).
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

}  // namespace longgan::gan

#include "gan/ema.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace longgan::gan {
namespace {

void check_same_names(const torch::OrderedDict<std::string, at::Tensor>& target,
                      const torch::OrderedDict<std::string, at::Tensor>& source) {
  if (target.size() != source.size()) {
    throw std::invalid_argument("update_ema: the EMA model has " + std::to_string(target.size()) +
                                " tensors, the model " + std::to_string(source.size()) +
                                "; build both from the same ModelConfig");
  }
  for (const auto& item : source) {
    if (!target.contains(item.key())) {
      throw std::invalid_argument("update_ema: the EMA model has no tensor \"" + item.key() +
                                  "\"; build both from the same ModelConfig");
    }
  }
}

bool is_running_statistic(const std::string& name) {
  return name.ends_with("running_mean") || name.ends_with("running_var");
}

}  // namespace

void update_ema(torch::nn::Module& ema, const torch::nn::Module& model, double decay, int64_t step,
                int64_t start) {
  torch::NoGradGuard no_grad;
  const auto params = model.named_parameters();
  auto ema_params = ema.named_parameters();
  const auto buffers = model.named_buffers();
  auto ema_buffers = ema.named_buffers();
  check_same_names(ema_params, params);
  check_same_names(ema_buffers, buffers);
  const bool average = step >= start;
  for (const auto& item : params) {
    at::Tensor target = ema_params[item.key()];
    if (average) {
      target.mul_(decay).add_(item.value(), 1 - decay);
    } else {
      target.copy_(item.value());
    }
  }
  for (const auto& item : buffers) {
    at::Tensor target = ema_buffers[item.key()];
    if (average && is_running_statistic(item.key()) && target.is_floating_point()) {
      target.mul_(decay).add_(item.value(), 1 - decay);
    } else {
      target.copy_(item.value());
    }
  }
}

double half_life_decay(double half_life_kimg, double rampup, int64_t images_seen, int64_t batch_images) {
  double half_life = half_life_kimg * 1000.0;
  if (rampup > 0) half_life = std::min(half_life, static_cast<double>(images_seen) * rampup);
  return std::pow(0.5, static_cast<double>(batch_images) / std::max(half_life, 1e-8));
}

}  // namespace longgan::gan

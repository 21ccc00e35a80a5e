#include "gan/adam.h"

#include <cmath>

namespace longgan::gan {

Adam::Adam(std::vector<std::pair<std::string, at::Tensor>> parameters, AdamOptions options)
    : options_(options) {
  for (auto& [name, param] : parameters) {
    slots_.push_back({name, param, at::zeros_like(param), at::zeros_like(param),
                      at::zeros({}, at::TensorOptions().dtype(at::kLong))});
  }
}

void Adam::zero_grad() {
  for (Slot& slot : slots_) slot.param.mutable_grad() = at::Tensor();
}

void Adam::step() {
  torch::NoGradGuard no_grad;
  for (Slot& slot : slots_) {
    const at::Tensor& grad = slot.param.grad();
    if (!grad.defined()) continue;
    slot.step.add_(1);
    const auto t = static_cast<double>(slot.step.item<int64_t>());
    slot.exp_avg.mul_(options_.beta1).add_(grad, 1 - options_.beta1);
    slot.exp_avg_sq.mul_(options_.beta2).addcmul_(grad, grad, 1 - options_.beta2);
    const double correction1 = 1 - std::pow(options_.beta1, t);
    const double correction2 = 1 - std::pow(options_.beta2, t);
    const at::Tensor denom = (slot.exp_avg_sq / correction2).sqrt_().add_(options_.eps);
    slot.param.addcdiv_(slot.exp_avg, denom, -options_.lr / correction1);
  }
}

std::map<std::string, at::Tensor> Adam::state() const {
  std::map<std::string, at::Tensor> state;
  for (const Slot& slot : slots_) {
    state[slot.name + ".exp_avg"] = slot.exp_avg;
    state[slot.name + ".exp_avg_sq"] = slot.exp_avg_sq;
    state[slot.name + ".step"] = slot.step;
  }
  return state;
}

}  // namespace longgan::gan

#include "gan/spectral_norm.h"

#include "attention/call_profile.h"

#include <algorithm>
#include <functional>
#include <utility>
#include <vector>

#include <cmath>
#include <stdexcept>
#include <string>

namespace longgan::gan {
namespace {

at::Tensor unit(const at::Tensor& x, double eps) { return x / x.norm().clamp_min(eps); }

// One power iteration step count per forward in training mode, none in eval.
int64_t iterations_for(const torch::nn::Module& module) { return module.is_training() ? 1 : 0; }

}  // namespace

SpectralNormStyle spectral_norm_style_from_string(const std::string& text) {
  if (text == "longgan") return SpectralNormStyle::longgan;
  if (text == "biggan") return SpectralNormStyle::biggan;
  throw std::invalid_argument("spectral norm style '" + text + "' is not known; use longgan or biggan");
}

std::string to_string(SpectralNormStyle style) { return style == SpectralNormStyle::biggan ? "biggan" : "longgan"; }

at::Tensor spectral_sigma(const at::Tensor& weight, at::Tensor& u, int64_t iterations, double eps,
                          SpectralNormStyle style) {
  const attention::SectionTimer timer(kSectionSpectralNorm);
  const AutocastOff fp32;
  const at::Tensor w = weight.reshape({weight.size(0), -1});
  at::Tensor u_now, v_now;
  {
    torch::NoGradGuard no_grad;
    const at::Tensor w32 = w.detach().to(at::kFloat);
    u_now = u.to(at::kFloat);
    if (style == SpectralNormStyle::biggan) {
      // Eval takes one step from the stored u too; only training stores the new u.
      for (int64_t i = 0; i < std::max<int64_t>(iterations, 1); ++i) {
        v_now = unit(at::mv(w32.t(), u_now), eps);
        u_now = unit(at::mv(w32, v_now), eps);
        if (iterations > 0) u.copy_(u_now);
      }
    } else {
      v_now = unit(at::mv(w32.t(), u_now), eps);
      for (int64_t i = 0; i < iterations; ++i) {
        u_now = unit(at::mv(w32, v_now), eps);
        v_now = unit(at::mv(w32.t(), u_now), eps);
      }
      if (iterations > 0) u.copy_(u_now);
    }
  }
  return at::dot(u_now, at::mv(w.to(at::kFloat), v_now));
}

void init_spectral_layer(at::Tensor& weight, at::Tensor& bias, at::Tensor& u) {
  torch::NoGradGuard no_grad;
  weight.normal_(0.0, 0.02);
  if (bias.defined()) bias.zero_();
  u.normal_();
  u.div_(u.norm());
}

SNConv2dImpl::SNConv2dImpl(int64_t in_channels, int64_t out_channels, int64_t kernel_size, bool with_bias)
    : padding(kernel_size / 2) {
  weight = register_parameter("weight", torch::empty({out_channels, in_channels, kernel_size, kernel_size}));
  if (with_bias) bias = register_parameter("bias", torch::empty({out_channels}));
  u = register_buffer("u", torch::empty({out_channels}));
  init_spectral_layer(weight, bias, u);
}

at::Tensor SNConv2dImpl::normalized_weight() {
  return weight / spectral_sigma(weight, u, iterations_for(*this), eps, style);
}

double SNConv2dImpl::estimate_sigma(int64_t iterations) {
  return spectral_sigma(weight, u, iterations, eps, style).item<double>();
}

at::Tensor SNConv2dImpl::forward(const at::Tensor& x) {
  return at::conv2d(x, normalized_weight(), bias, /*stride=*/1, /*padding=*/padding);
}

SNLinearImpl::SNLinearImpl(int64_t in_features, int64_t out_features, bool with_bias) {
  weight = register_parameter("weight", torch::empty({out_features, in_features}));
  if (with_bias) bias = register_parameter("bias", torch::empty({out_features}));
  u = register_buffer("u", torch::empty({out_features}));
  init_spectral_layer(weight, bias, u);
}

at::Tensor SNLinearImpl::normalized_weight() {
  return weight / spectral_sigma(weight, u, iterations_for(*this), eps, style);
}

double SNLinearImpl::estimate_sigma(int64_t iterations) {
  return spectral_sigma(weight, u, iterations, eps, style).item<double>();
}

at::Tensor SNLinearImpl::forward(const at::Tensor& x) { return at::linear(x, normalized_weight(), bias); }

std::map<std::string, double> watched_sigmas(torch::nn::Module& network) {
  torch::NoGradGuard no_grad;
  std::vector<std::pair<std::string, std::function<double()>>> layers;
  for (const auto& item : network.named_modules()) {
    if (auto* conv = dynamic_cast<SNConv2dImpl*>(item.value().get())) {
      layers.emplace_back(item.key(), [conv] { return conv->estimate_sigma(0); });
    } else if (auto* linear = dynamic_cast<SNLinearImpl*>(item.value().get())) {
      layers.emplace_back(item.key(), [linear] { return linear->estimate_sigma(0); });
    }
  }
  std::map<std::string, double> sigmas;
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& [name, sigma] = layers[i];
    if (i == 0 || i + 1 == layers.size() || name.starts_with("attention.")) sigmas[name] = sigma();
  }
  return sigmas;
}

SNEmbeddingImpl::SNEmbeddingImpl(int64_t classes, int64_t dim) {
  weight = register_parameter("weight", torch::empty({classes, dim}));
  u = register_buffer("u", torch::empty({classes}));
  at::Tensor no_bias;
  init_spectral_layer(weight, no_bias, u);
}

at::Tensor SNEmbeddingImpl::forward(const at::Tensor& labels) {
  const at::Tensor table = weight / spectral_sigma(weight, u, iterations_for(*this), eps, style);
  return at::embedding(table, labels);
}

namespace {

// Calls set(layer) for every spectrally normalized layer in `module` (itself included); returns
// how many there were.
template <class Set>
int64_t for_each_spectral_layer(torch::nn::Module& module, Set&& set) {
  int64_t count = 0;
  module.apply([&](torch::nn::Module& child) {
    if (auto* conv = child.as<SNConv2dImpl>()) set(*conv);
    else if (auto* linear = child.as<SNLinearImpl>()) set(*linear);
    else if (auto* embedding = child.as<SNEmbeddingImpl>()) set(*embedding);
    else return;
    ++count;
  });
  return count;
}

}  // namespace

int64_t set_spectral_norm_eps(torch::nn::Module& module, double eps) {
  if (!(eps > 0 && std::isfinite(eps))) {
    throw std::invalid_argument("spectral norm eps must be finite and > 0 (got " + std::to_string(eps) + ")");
  }
  return for_each_spectral_layer(module, [&](auto& layer) { layer.eps = eps; });
}

int64_t set_spectral_norm_style(torch::nn::Module& module, SpectralNormStyle style) {
  return for_each_spectral_layer(module, [&](auto& layer) { layer.style = style; });
}

}  // namespace longgan::gan

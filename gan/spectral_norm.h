#pragma once
// Spectrally normalized layers (Miyato et al. 2018, as used by BigGAN): the weight, flattened to
// [out, -1], is divided by an estimate of its largest singular value. The estimate keeps a
// persistent left singular vector `u` (a buffer, part of the state dict); each forward in training
// mode runs one power iteration and updates `u`; eval mode uses `u` as stored (no update).
// Every layer has an `eps` (BigGAN's SN_eps): the floor of the norms the power iteration divides
// by when it normalizes u and v, and a `style` (SpectralNormStyle). Both are configuration, not
// state (nothing of them is checkpointed).
#include <torch/torch.h>

#include <map>
#include <string>

#include "attention/autocast_off.h"

namespace longgan::gan {

// The profile section (attention::SectionTimer) of every sigma computed: its time inside the
// training step's passes (longgan bench step).
inline constexpr const char* kSectionSpectralNorm = "spectral norm (inside the passes)";

// The eps of a spectrally normalized layer unless set otherwise (ModelConfig::sn_eps's default).
inline constexpr double kDefaultSpectralNormEps = 1e-12;

// How sigma is estimated from the stored u (both give the largest singular value once u has
// converged; they differ before, by ~1e-3 relative on freshly initialised weights):
//   longgan: v = unit(W^T u), sigma = u^T W v from the stored u; training first runs the power
//            iterations (u = unit(W v), v = unit(W^T u)) and stores u. Eval changes nothing.
//   biggan:  BigGAN-PyTorch's layers.SN: v = unit(W^T u), u' = unit(W v), sigma = u'^T W v, in
//            eval too (one step from the stored u, nothing stored); training repeats the step
//            `iterations` times, each from the u just stored. Independent of |u| (BigGAN's init
//            and its EMA leave u unnormalized). Imported BigGAN-PyTorch models use it.
enum class SpectralNormStyle { longgan, biggan };
// "longgan" / "biggan"; std::invalid_argument naming the accepted values otherwise.
SpectralNormStyle spectral_norm_style_from_string(const std::string& text);
std::string to_string(SpectralNormStyle style);

// The power iteration's `mv` is on autocast's low-precision list, and sigma must be computed in
// fp32: it runs with autocast off (the attention library's guard, which does the same for hashing).
using AutocastOff = attention::AutocastOff;

// sigma(W) from the stored u: v = normalize(W^T u), sigma = u^T W v. With `iterations` > 0
// (training), first runs that many power iterations and writes the new u into `u` (in place).
// u and v are normalized as x / max(|x|, eps). The gradient flows through W only (u, v are treated
// as constants, as in the reference). Always fp32 with autocast off (AutocastOff), whatever the
// caller's autocast state.
at::Tensor spectral_sigma(const at::Tensor& weight, at::Tensor& u, int64_t iterations,
                          double eps = kDefaultSpectralNormEps,
                          SpectralNormStyle style = SpectralNormStyle::longgan);

// Normal(0, 0.02) weights, zero bias, random unit u: the init of every layer here.
void init_spectral_layer(at::Tensor& weight, at::Tensor& bias, at::Tensor& u);

struct SNConv2dImpl : torch::nn::Module {
  SNConv2dImpl(int64_t in_channels, int64_t out_channels, int64_t kernel_size, bool bias = true);
  // x [B, in, H, W] -> [B, out, H, W] ("same" padding, stride 1).
  at::Tensor forward(const at::Tensor& x);
  // weight / sigma, with one power iteration when training.
  at::Tensor normalized_weight();
  // Runs `iterations` power iterations (updating u) and returns the estimate of sigma.
  double estimate_sigma(int64_t iterations);

  int64_t padding;
  double eps = kDefaultSpectralNormEps;
  SpectralNormStyle style = SpectralNormStyle::longgan;
  at::Tensor weight, bias, u;
};
TORCH_MODULE(SNConv2d);

struct SNLinearImpl : torch::nn::Module {
  SNLinearImpl(int64_t in_features, int64_t out_features, bool bias = true);
  // x [B, in] -> [B, out].
  at::Tensor forward(const at::Tensor& x);
  at::Tensor normalized_weight();
  double estimate_sigma(int64_t iterations);

  double eps = kDefaultSpectralNormEps;
  SpectralNormStyle style = SpectralNormStyle::longgan;
  at::Tensor weight, bias, u;
};
TORCH_MODULE(SNLinear);

// Sigma of the spectrally normalized layers worth watching in `network` (BigGAN logs them): the
// first and the last SNConv2d/SNLinear and every one under "attention.", named as in
// named_modules(). Computed from the stored u without updating it (training is unchanged).
std::map<std::string, double> watched_sigmas(torch::nn::Module& network);

// Class embedding whose table [classes, dim] is spectrally normalized (BigGAN's D projection).
struct SNEmbeddingImpl : torch::nn::Module {
  SNEmbeddingImpl(int64_t classes, int64_t dim);
  // labels [B] int64 -> [B, dim].
  at::Tensor forward(const at::Tensor& labels);

  double eps = kDefaultSpectralNormEps;
  SpectralNormStyle style = SpectralNormStyle::longgan;
  at::Tensor weight, u;
};
TORCH_MODULE(SNEmbedding);

// Sets `eps` of every spectrally normalized layer in `module` (itself included); returns how many.
// std::invalid_argument unless eps is finite and > 0.
int64_t set_spectral_norm_eps(torch::nn::Module& module, double eps);
// Sets `style` of every spectrally normalized layer in `module` (itself included); returns how many.
int64_t set_spectral_norm_style(torch::nn::Module& module, SpectralNormStyle style);

}  // namespace longgan::gan

#include "gan/sampling.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <mutex>
#include <stdexcept>
#include <string>

namespace longgan::gan {

namespace {

// Rounds of redrawing before giving up. Every proposal is accepted with probability >= 0.38 (see
// below), so an entry is still outside after 256 rounds with probability < 1e-53: the bound exists
// so that no input can loop forever, not because it is ever reached.
constexpr int kMaxRounds = 256;

// Below this threshold the proposal is uniform on [-t, t] instead of the normal itself.
constexpr double kUniformProposalBelow = 0.5;

}  // namespace

at::Tensor truncated_normal(int64_t batch, int64_t dim, double threshold, at::Generator& generator) {
  if (std::isnan(threshold) || threshold < 0) {
    throw std::invalid_argument("truncation threshold must be >= 0 (0: none), got " + std::to_string(threshold));
  }
  const auto float_options = at::TensorOptions().dtype(at::kFloat);
  if (threshold == 0 || std::isinf(threshold)) return at::normal(0.0, 1.0, {batch, dim}, generator, float_options);
  // Exact sampling of N(0, 1) restricted to [-t, t], by rejection with a proposal that is accepted
  // often whatever t is:
  //  - t >= 0.5: the normal itself, redrawn where |z| > t (acceptance P(|z| <= t) >= 0.38);
  //    this is also the historical behaviour, so the latents of t >= 0.5 are unchanged.
  //  - t < 0.5: uniform on [-t, t], accepted with probability exp(-z^2 / 2) (>= exp(-1/8) = 0.88):
  //    density proportional to the normal's on the interval, however tiny t is (1e-6 or 1e-300).
  // The largest float not above t bounds the result also after rounding to float.
  float bound = static_cast<float>(threshold);
  if (static_cast<double>(bound) > threshold) bound = std::nextafter(bound, 0.0F);
  at::Tensor z;
  if (threshold >= kUniformProposalBelow) {
    z = at::normal(0.0, 1.0, {batch, dim}, generator, float_options);
    for (int round = 0;; ++round) {
      const at::Tensor outside = z.abs() > threshold;
      const int64_t count = outside.sum().item<int64_t>();
      if (count == 0) break;
      if (round == kMaxRounds) throw std::runtime_error("truncated_normal: no accepted draw in 256 rounds");
      z.masked_scatter_(outside, at::normal(0.0, 1.0, {count}, generator, float_options));
    }
  } else {
    const auto double_options = at::TensorOptions().dtype(at::kDouble);
    at::Tensor values = at::empty({batch * dim}, double_options);
    at::Tensor pending = at::ones({batch * dim}, at::TensorOptions().dtype(at::kBool));
    for (int round = 0;; ++round) {
      const int64_t count = pending.sum().item<int64_t>();
      if (count == 0) break;
      if (round == kMaxRounds) throw std::runtime_error("truncated_normal: no accepted draw in 256 rounds");
      const at::Tensor proposal = (at::rand({count}, generator, double_options) * 2 - 1) * threshold;
      const at::Tensor accept = at::rand({count}, generator, double_options) < at::exp(-0.5 * proposal * proposal);
      const at::Tensor slots = pending.nonzero().squeeze(1);
      const at::Tensor taken = slots.masked_select(accept);
      values.index_put_({taken}, proposal.masked_select(accept));
      pending.index_put_({taken}, false);
    }
    z = values.to(at::kFloat).view({batch, dim});
  }
  return z.clamp_(-bound, bound);
}

at::Tensor random_labels(int64_t batch, int64_t n_classes, at::Generator& generator) {
  return at::randint(n_classes, {batch}, generator, at::TensorOptions().dtype(at::kLong));
}

}  // namespace longgan::gan

namespace longgan::gan {

void with_seeded_global_generator(uint64_t seed, const std::function<void()>& build) {
  at::Generator global = at::detail::getDefaultCPUGenerator();
  at::Tensor saved;
  {
    std::lock_guard<std::mutex> lock(global.mutex());
    saved = global.get_state();
    global.set_current_seed(seed);
  }
  try {
    build();
  } catch (...) {
    std::lock_guard<std::mutex> lock(global.mutex());
    global.set_state(saved);
    throw;
  }
  std::lock_guard<std::mutex> lock(global.mutex());
  global.set_state(saved);
}

}  // namespace longgan::gan

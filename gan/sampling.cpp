#include "gan/sampling.h"

#include <ATen/CPUGeneratorImpl.h>

#include <mutex>

namespace longgan::gan {

at::Tensor truncated_normal(int64_t batch, int64_t dim, double threshold, at::Generator& generator) {
  at::Tensor z = at::normal(0.0, 1.0, {batch, dim}, generator, at::TensorOptions().dtype(at::kFloat));
  if (threshold <= 0) return z;
  while (true) {
    const at::Tensor outside = z.abs() > threshold;
    const int64_t count = outside.sum().item<int64_t>();
    if (count == 0) return z;
    z.masked_scatter_(outside, at::normal(0.0, 1.0, {count}, generator, at::TensorOptions().dtype(at::kFloat)));
  }
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

#pragma once
// Latent and label sampling from an explicit generator (reproducible: always drawn on the CPU).
#include <torch/torch.h>

#include <cstdint>

namespace longgan::gan {

// [batch, dim] standard normal truncated to |z| <= threshold (truncation trick), exact and in
// bounded time for any threshold > 0 (1e-6 included). threshold 0 or +inf: plain normal;
// negative or NaN: std::invalid_argument.
at::Tensor truncated_normal(int64_t batch, int64_t dim, double threshold, at::Generator& generator);

// [batch] int64 uniform in [0, n_classes).
at::Tensor random_labels(int64_t batch, int64_t n_classes, at::Generator& generator);

}  // namespace longgan::gan

#include <functional>

namespace longgan::gan {

// Runs `build` with the global CPU generator seeded with `seed`, then restores the global
// generator's previous state (module initialisation that is reproducible and side-effect free).
void with_seeded_global_generator(uint64_t seed, const std::function<void()>& build);

}  // namespace longgan::gan

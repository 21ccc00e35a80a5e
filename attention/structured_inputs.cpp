#include "attention/structured_inputs.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

namespace longgan::attention {

StructuredInputs structured_inputs(int64_t batch, int64_t heads, int64_t n, int64_t m, int64_t d, int64_t dv,
                                   int64_t centres, uint64_t seed, double spread, double noise) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto opts = at::TensorOptions().dtype(at::kFloat);
  auto centre = at::randn({batch, heads, centres, d}, gen, opts) * spread;
  auto centre_value = at::randn({batch, heads, centres, dv}, gen, opts);
  auto pick = [&](const at::Tensor& table, const at::Tensor& index) {
    auto dim = table.size(3);
    auto chosen = at::gather(table, 2, index.unsqueeze(-1).expand({batch, heads, index.size(2), dim}));
    return chosen + at::randn({batch, heads, index.size(2), dim}, gen, opts) * noise;
  };
  auto q_centre = at::randint(centres, {batch, heads, n}, gen, opts.dtype(at::kLong));
  auto k_centre = at::randint(centres, {batch, heads, m}, gen, opts.dtype(at::kLong));
  return {pick(centre, q_centre), pick(centre, k_centre), pick(centre_value, k_centre)};
}

}  // namespace longgan::attention

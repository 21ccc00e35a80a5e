#pragma once
// Queries and keys drawn around a few shared centres: the structure efficient attention exploits
// and real attention inputs have. Each token is a centre plus small noise, and a key's value is its
// centre's value plus noise, so attending to any keys of the right centre gives the right output.
// Used to measure approximation error (tests, `longgan bench attention`); on unstructured random
// inputs dense attention averages nearly everything and every approximation looks poor.
#include <ATen/Tensor.h>

#include <cstdint>

namespace longgan::attention {

struct StructuredInputs {
  at::Tensor q, k, v;  // [B, H, N, D], [B, H, M, D], [B, H, M, Dv], float32 on the CPU
};

StructuredInputs structured_inputs(int64_t batch, int64_t heads, int64_t n, int64_t m, int64_t d, int64_t dv,
                                   int64_t centres, uint64_t seed, double spread = 3.0, double noise = 0.3);

}  // namespace longgan::attention

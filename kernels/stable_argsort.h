#pragma once
// The stable ascending order along the last dimension, what SMYRF's hashing spends most of its
// time on: at::sort is a comparison sort on the CPU, where an LSD radix sort of 32-bit keys is
// several times faster for rows of thousands; CUDA's at::sort already is a radix sort (cub).
#include <ATen/ATen.h>

namespace longgan::kernels {

// at::sort(values, /*stable=*/true, /*dim=*/-1).indices, exactly: int64, same shape. NaN sorts
// last, -0.0 equals +0.0, ties keep their positions' order. float32 CPU tensors take a radix sort
// of the values' order-preserving bit patterns (rows in parallel); anything else takes at::sort.
at::Tensor stable_argsort(const at::Tensor& values);

// The ATen reference the fast path is held equal to: at::sort's stable indices.
at::Tensor stable_argsort_reference(const at::Tensor& values);

// Whether stable_argsort takes the radix sort for `values`.
bool stable_argsort_uses_radix(const at::Tensor& values);

}  // namespace longgan::kernels

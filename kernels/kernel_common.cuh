#pragma once
// Helpers shared by the .cu files: element loads, launch checks, head-dimension dispatch.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "kernels/launch.h"

namespace longgan::kernels::detail {

template <typename T>
__device__ __forceinline__ float to_float(T x);
template <>
__device__ __forceinline__ float to_float<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 x) {
  return __bfloat162float(x);
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Throws when the last launch failed (bad configuration, missing device code, ...).
inline void check_launch(const char* what) {
  const cudaError_t error = cudaGetLastError();
  if (error != cudaSuccess) {
    throw std::runtime_error(std::string("kernels/") + what + ": CUDA launch failed: " + cudaGetErrorString(error));
  }
}

inline void check_grid(int64_t blocks, const char* what) {
  if (blocks > 2147483647LL) {
    throw std::runtime_error(std::string("kernels/") + what + ": " + std::to_string(blocks) +
                             " thread blocks exceed the CUDA grid limit; split the batch");
  }
}

// Runs Launcher<T, DQK, DV>::run(args...) for the element type and the smallest head-dimension
// buckets holding a.dqk (16, 32, 64) and a.dv (64, 128). Padded dimensions are zero in the kernels.
template <template <typename, int, int> class Launcher, typename T, typename... Args>
void dispatch_dims(const QkvArgs& a, Args&&... args) {
  if (a.dqk > kMaxDqk || a.dv > kMaxDv || a.dqk < 1 || a.dv < 1) {
    throw std::invalid_argument("kernels: head dims Dqk=" + std::to_string(a.dqk) + ", Dv=" + std::to_string(a.dv) +
                                " outside the kernels' range (Dqk <= 64, Dv <= 128)");
  }
  const bool small_v = a.dv <= 64;
  if (a.dqk <= 16) {
    small_v ? Launcher<T, 16, 64>::run(args...) : Launcher<T, 16, 128>::run(args...);
  } else if (a.dqk <= 32) {
    small_v ? Launcher<T, 32, 64>::run(args...) : Launcher<T, 32, 128>::run(args...);
  } else {
    small_v ? Launcher<T, 64, 64>::run(args...) : Launcher<T, 64, 128>::run(args...);
  }
}

template <template <typename, int, int> class Launcher, typename... Args>
void dispatch(const QkvArgs& a, Args&&... args) {
  if (a.type == ElementType::BFloat16) {
    dispatch_dims<Launcher, __nv_bfloat16>(a, args...);
  } else {
    dispatch_dims<Launcher, float>(a, args...);
  }
}

// Loads `count` values of row `row` (width `width`) into r[0, D), zero beyond `width`.
template <typename T, int D>
__device__ __forceinline__ void load_row(float (&r)[D], const T* base, int64_t row, int64_t width, bool valid) {
#pragma unroll
  for (int d = 0; d < D; ++d) r[d] = (valid && d < width) ? to_float(base[row * width + d]) : 0.0f;
}

template <int D>
__device__ __forceinline__ void load_row_f32(float (&r)[D], const float* base, int64_t row, int64_t width,
                                             bool valid) {
#pragma unroll
  for (int d = 0; d < D; ++d) r[d] = (valid && d < width) ? base[row * width + d] : 0.0f;
}

template <int D>
__device__ __forceinline__ void store_row(float* base, int64_t row, int64_t width, const float (&r)[D],
                                          float factor) {
#pragma unroll
  for (int d = 0; d < D; ++d) {
    if (d < width) base[row * width + d] = r[d] * factor;
  }
}

}  // namespace longgan::kernels::detail

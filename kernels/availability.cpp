#include "kernels/availability.h"

#include <torch/cuda.h>
#include <ATen/Context.h>

#include "longgan/build_config.h"

#if LONGGAN_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace longgan::kernels {

bool cuda_kernels_built() { return LONGGAN_HAVE_CUDA != 0; }

bool cuda_device_available() { return cuda_kernels_built() && torch::cuda::is_available(); }

std::string cuda_description() {
  if (!cuda_kernels_built()) return "CUDA off";
  if (!torch::cuda::is_available()) return "CUDA on (no GPU visible)";
#if LONGGAN_HAVE_CUDA
  cudaDeviceProp prop{};
  int device = 0;
  cudaGetDevice(&device);
  if (cudaGetDeviceProperties(&prop, device) == cudaSuccess) {
    return std::string("CUDA on (") + prop.name + ", sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ")";
  }
#endif
  return "CUDA on (GPU visible)";
}

}  // namespace longgan::kernels

#pragma once
// What the kernels layer can run: whether this build has CUDA kernels and a GPU is visible.
#include <string>

namespace longgan::kernels {

// True when this build compiled the CUDA kernels.
bool cuda_kernels_built();
// True when kernels were built and at least one CUDA device is visible.
bool cuda_device_available();
// "CUDA on (NVIDIA H100 80GB HBM3, sm_90)", "CUDA on (no GPU visible)" or "CUDA off".
std::string cuda_description();

}  // namespace longgan::kernels

#pragma once
// Argument checks shared by the kernel wrappers (torch side; never included by .cu files).
#include <ATen/ATen.h>

#include <string>

#include "longgan/build_config.h"
#if LONGGAN_HAVE_CUDA
#include "kernels/launch.h"
#endif

namespace longgan::kernels {

// Why q, k, v cannot run on the kernels ("" when they can): CUDA build, CUDA tensors on one
// device, one dtype (fp32 or bf16), shapes [B,H,N,Dqk], [B,H,M,Dqk], [B,H,M,Dv] with
// Dqk <= 64 and Dv <= 128.
std::string kernel_input_problem(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);

// Throws std::invalid_argument "<what>: <problem>; use the reference backend" when there is one.
void require_kernel_inputs(const char* what, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);

// Throws std::invalid_argument unless `tensor` is on q's device with the given dtype and shape.
void require_tensor(const char* what, const char* name, const at::Tensor& tensor, const at::Tensor& q,
                    at::ScalarType dtype, at::IntArrayRef shape);

#if LONGGAN_HAVE_CUDA
// Pointers and sizes of contiguous q, k, v for the launch functions.
QkvArgs qkv_args(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale);
// The current CUDA stream of q's device.
cudaStream_t current_stream(const at::Tensor& q);
#endif

}  // namespace longgan::kernels

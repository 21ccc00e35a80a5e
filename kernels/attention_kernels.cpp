#include "kernels/attention_kernels.h"

#include <sstream>
#include <stdexcept>
#include <string>

#include "kernels/kernel_inputs.h"
#include "longgan/build_config.h"
#if LONGGAN_HAVE_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

namespace longgan::kernels {

std::string kernel_input_problem(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  if (!LONGGAN_HAVE_CUDA) return "no CUDA kernels in this build";
  if (!q.defined() || !k.defined() || !v.defined()) return "q, k and v must be defined";
  if (!q.is_cuda() || k.device() != q.device() || v.device() != q.device()) {
    return "q, k and v must be CUDA tensors on one device";
  }
  const auto type = q.scalar_type();
  if ((type != at::kFloat && type != at::kBFloat16) || k.scalar_type() != type || v.scalar_type() != type) {
    return "q, k and v must all be float32 or all bfloat16";
  }
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4) return "q, k and v must be 4-D [B, H, length, dim]";
  if (k.size(0) != q.size(0) || v.size(0) != q.size(0) || k.size(1) != q.size(1) || v.size(1) != q.size(1) ||
      k.size(2) != v.size(2) || k.size(3) != q.size(3)) {
    return "shapes must be q [B,H,N,Dqk], k [B,H,M,Dqk], v [B,H,M,Dv]";
  }
  if (q.size(2) < 1 || k.size(2) < 1) return "N and M must be >= 1";
  if (q.size(3) < 1 || q.size(3) > 64 || v.size(3) < 1 || v.size(3) > 128) {
    return "head dims must be Dqk in [1, 64] and Dv in [1, 128]";
  }
  return "";
}

void require_kernel_inputs(const char* what, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  const std::string problem = kernel_input_problem(q, k, v);
  if (!problem.empty()) {
    throw std::invalid_argument(std::string(what) + " kernel: " + problem + "; use the reference backend");
  }
}

void require_tensor(const char* what, const char* name, const at::Tensor& tensor, const at::Tensor& q,
                    at::ScalarType dtype, at::IntArrayRef shape) {
  if (!tensor.defined() || tensor.device() != q.device() || tensor.scalar_type() != dtype ||
      tensor.sizes() != shape) {
    std::ostringstream message;
    message << what << " kernel: " << name << " must be a " << c10::toString(dtype) << " tensor of shape " << shape
            << " on " << q.device();
    if (tensor.defined()) message << ", got " << c10::toString(tensor.scalar_type()) << " " << tensor.sizes()
                                  << " on " << tensor.device();
    throw std::invalid_argument(message.str());
  }
}

#if LONGGAN_HAVE_CUDA
QkvArgs qkv_args(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale) {
  QkvArgs args;
  args.q = q.data_ptr();
  args.k = k.data_ptr();
  args.v = v.data_ptr();
  args.type = q.scalar_type() == at::kBFloat16 ? ElementType::BFloat16 : ElementType::Float32;
  args.bh = q.size(0) * q.size(1);
  args.n = q.size(2);
  args.m = k.size(2);
  args.dqk = q.size(3);
  args.dv = v.size(3);
  args.scale = static_cast<float>(scale);
  return args;
}

cudaStream_t current_stream(const at::Tensor& q) {
  return at::cuda::getCurrentCUDAStream(q.device().index()).stream();
}
#endif

bool smyrf_kernel_supports(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  return kernel_input_problem(q, k, v).empty();
}

bool clustered_kernel_supports(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  return kernel_input_problem(q, k, v).empty();
}

}  // namespace longgan::kernels

#include "kernels/attention_kernels.h"

#include <stdexcept>

// Placeholder until the CUDA kernels land: nothing is supported, every call is refused.
namespace longgan::kernels {
namespace {
[[noreturn]] void unsupported(const char* what) {
  throw std::runtime_error(std::string(what) + ": no CUDA kernel in this build; use the reference backend");
}
}  // namespace

bool smyrf_kernel_supports(const at::Tensor&, const at::Tensor&, const at::Tensor&) { return false; }
at::Tensor smyrf_attention_cuda(const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t, int64_t, double,
                                const at::Tensor&) {
  unsupported("smyrf");
}
bool clustered_kernel_supports(const at::Tensor&, const at::Tensor&, const at::Tensor&) { return false; }
at::Tensor clustered_assign_cuda(const at::Tensor&, const at::Tensor&, int64_t, int64_t) { unsupported("clustered"); }
at::Tensor clustered_attention_cuda(const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t, double,
                                    const at::Tensor&) {
  unsupported("clustered");
}
at::Tensor improved_clustered_attention_cuda(const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t,
                                             int64_t, double, const at::Tensor&) {
  unsupported("improved_clustered");
}

}  // namespace longgan::kernels

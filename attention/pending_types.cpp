// Weak placeholders for attention types whose implementation has not landed yet; the real
// (strong) definitions replace them at link time. Removed once every type is in.
#include <stdexcept>

#include "attention/clustered.h"
#include "attention/combiner_axial.h"
#include "attention/smyrf.h"

namespace longgan::attention {
namespace {
[[noreturn]] void pending(const char* type) { throw std::runtime_error(std::string("attention type ") + type + " is not implemented yet"); }
}  // namespace

__attribute__((weak)) at::Tensor smyrf_attention(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                                 const SmyrfOptions&, const CallOptions&) { pending("smyrf"); }
__attribute__((weak)) at::Tensor clustered_attention(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                                     const ClusteredOptions&, const CallOptions&) { pending("clustered"); }
__attribute__((weak)) at::Tensor improved_clustered_attention(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                                              const ImprovedClusteredOptions&, const CallOptions&) {
  pending("improved_clustered");
}
__attribute__((weak)) at::Tensor combiner_axial_attention(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                                          const CombinerAxialOptions&, const CallOptions&) {
  pending("combiner_axial");
}

}  // namespace longgan::attention

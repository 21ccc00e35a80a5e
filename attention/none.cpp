#include "attention/none.h"

namespace longgan::attention {

at::Tensor none_attention(const at::Tensor& q, const at::Tensor& /*k*/, const at::Tensor& v,
                          const NoneOptions& /*options*/, const CallOptions& /*call*/) {
  return at::zeros({q.size(0), q.size(1), q.size(2), v.size(3)}, v.options());
}

}  // namespace longgan::attention

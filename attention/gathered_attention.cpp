#include "attention/gathered_attention.h"

#include "attention/call_profile.h"

#include <torch/autograd.h>

#include <stdexcept>
#include <string>

namespace longgan::attention {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Accumulation type of gradients summed over problems (fp32 for bf16/fp16 inputs).
at::ScalarType accumulate_type(const at::Tensor& t) { return compute_dtype(t); }

class GatheredAttentionFunction : public torch::autograd::Function<GatheredAttentionFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q_table, const at::Tensor& k_table,
                            const at::Tensor& v_table, const at::Tensor& query_rows, const at::Tensor& key_rows,
                            double scale, int64_t kernel) {
    const int64_t rows = q_table.size(0);
    at::Tensor qg, kg, vg;
    {
      PhaseTimer phase(kPhaseGather);
      // Empty slots read the last row (any finite row will do) and write to a dropped extra row.
      qg = gather_problems(q_table, query_rows.clamp_max(rows - 1));
      kg = gather_problems(k_table, key_rows);
      vg = gather_problems(v_table, key_rows);
    }
    kernels::FusedForward forward;
    {
      PhaseTimer phase(kPhaseKernel);
      forward = kernels::fused_attention_forward(qg, kg, vg, scale, static_cast<kernels::FusedKernel>(kernel));
    }
    PhaseTimer phase(kPhaseMerge);
    auto out = at::zeros({rows + 1, v_table.size(1)}, v_table.options());
    out.index_copy_(0, query_rows.reshape(-1), forward.out.reshape({-1, v_table.size(1)}));
    ctx->save_for_backward({q_table, k_table, v_table, query_rows, key_rows, forward.out, forward.lse,
                            forward.philox_seed, forward.philox_offset});
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["kernel"] = kernel;
    return out.narrow(0, 0, rows).clone();
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &q_table = saved[0], &k_table = saved[1], &v_table = saved[2], &query_rows = saved[3];
    const auto& key_rows = saved[4];
    kernels::FusedForward forward;
    forward.out = saved[5];
    forward.lse = saved[6];
    forward.philox_seed = saved[7];
    forward.philox_offset = saved[8];
    forward.kernel = static_cast<kernels::FusedKernel>(ctx->saved_data["kernel"].toInt());
    const double scale = ctx->saved_data["scale"].toDouble();
    variable_list result(7);
    if (!grads[0].defined()) return result;

    const int64_t rows = q_table.size(0), problems = query_rows.size(0), length = query_rows.size(1);
    at::Tensor grad_out, qg, kg, vg;
    {
      PhaseTimer phase(kPhaseBackwardGather);
      auto readable = query_rows.clamp_max(rows - 1);
      // Empty slots get a zero output gradient, so they add nothing to any key or value gradient.
      auto valid = query_rows.lt(rows).to(grads[0].scalar_type()).view({problems, 1, length, 1});
      grad_out = gather_problems(grads[0].contiguous(), readable) * valid;
      qg = gather_problems(q_table, readable);
      kg = gather_problems(k_table, key_rows);
      vg = gather_problems(v_table, key_rows);
    }
    kernels::FusedGradients gradients;
    {
      PhaseTimer phase(kPhaseBackwardKernel);
      gradients = kernels::fused_attention_backward(grad_out, qg, kg, vg, forward.out, forward, scale);
    }

    PhaseTimer phase(kPhaseBackwardMerge);
    const auto type = accumulate_type(q_table);
    auto dq = at::zeros({rows + 1, q_table.size(1)}, q_table.options().dtype(type));
    dq.index_add_(0, query_rows.reshape(-1), gradients.dq.reshape({-1, q_table.size(1)}).to(type));
    auto dk = at::zeros({k_table.size(0), k_table.size(1)}, k_table.options().dtype(type));
    dk.index_add_(0, key_rows.reshape(-1), gradients.dk.reshape({-1, k_table.size(1)}).to(type));
    auto dv = at::zeros({v_table.size(0), v_table.size(1)}, v_table.options().dtype(type));
    dv.index_add_(0, key_rows.reshape(-1), gradients.dv.reshape({-1, v_table.size(1)}).to(type));
    result[0] = dq.narrow(0, 0, rows).to(q_table.scalar_type());
    result[1] = dk.to(k_table.scalar_type());
    result[2] = dv.to(v_table.scalar_type());
    return result;
  }
};

}  // namespace

kernels::FusedKernel fused_kernel_for_call(const CallOptions& call, const at::Tensor& q, const char* type) {
  if (call.backend == Backend::FusedMath) return kernels::FusedKernel::Math;
  if (call.backend == Backend::Fused && !kernels::has_library_kernel(q)) {
    throw std::invalid_argument(std::string("attention ") + type + ": backend=fused has no library kernel for " +
                                c10::toString(q.scalar_type()) + " tensors on " + q.device().str() +
                                "; use backend=auto (plain-ATen kernel) or backend=reference");
  }
  return kernels::library_kernel_for(q);
}

at::Tensor row_table(const at::Tensor& t) { return t.reshape({-1, t.size(-1)}); }

at::Tensor table_rows(const at::Tensor& index, int64_t length) {
  const int64_t groups = index.size(0) * index.size(1);
  std::vector<int64_t> shape(index.dim(), 1);
  shape[0] = index.size(0);
  shape[1] = index.size(1);
  auto offsets = at::arange(groups, index.options().dtype(at::kLong)).mul(length).view(shape);
  return index + offsets;
}

at::Tensor gather_problems(const at::Tensor& table, const at::Tensor& rows) {
  return table.index_select(0, rows.reshape(-1)).view({rows.size(0), 1, rows.size(1), table.size(1)});
}

at::Tensor gathered_attention(const at::Tensor& q_table, const at::Tensor& k_table, const at::Tensor& v_table,
                              const at::Tensor& query_rows, const at::Tensor& key_rows, double scale,
                              kernels::FusedKernel kernel) {
  return GatheredAttentionFunction::apply(q_table, k_table, v_table, query_rows, key_rows, scale,
                                          static_cast<int64_t>(kernel));
}

}  // namespace longgan::attention

// smyrf on CUDA: XBOX+ hashing and stable sorts in ATen, in-cluster attention of every hash round
// in the kernels (an autograd function whose backward is a kernel), rounds merged by their lse in ATen.
#include <torch/autograd.h>

#include <stdexcept>
#include <string>

#include "kernels/attention_kernels.h"
#include "kernels/kernel_inputs.h"
#include "longgan/build_config.h"

#if LONGGAN_HAVE_CUDA
#include <c10/cuda/CUDAGuard.h>
#endif

namespace longgan::kernels {

#if LONGGAN_HAVE_CUDA
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// For every round, the original index of each sorted position: int32 [B, H, R, N] and [B, H, R, M].
// The hashes follow the reference: F(q) = [q, 0, sqrt(MQ^2 + MK^2 - |q|^2)], G(k) = [k, sqrt(...), 0],
// projected on each round's vector and sorted ascending (stable).
std::pair<at::Tensor, at::Tensor> sorted_orders(const at::Tensor& q, const at::Tensor& k,
                                                const at::Tensor& projections) {
  at::NoGradGuard no_grad;
  // Same ATen ops as attention::smyrf_attention_reference, so the orders agree bit for bit.
  const at::Tensor qf = q.to(at::kFloat), kf = k.to(at::kFloat);
  const at::Tensor q_norm2 = qf.square().sum(-1), k_norm2 = kf.square().sum(-1);  // [B, H, N], [B, H, M]
  const at::Tensor extent = q_norm2.amax(-1, true) + k_norm2.amax(-1, true);
  const at::Tensor zeros_q = at::zeros_like(q_norm2).unsqueeze(-1), zeros_k = at::zeros_like(k_norm2).unsqueeze(-1);
  const at::Tensor fq = at::cat({qf, zeros_q, (extent - q_norm2).clamp_min(0).sqrt().unsqueeze(-1)}, -1);
  const at::Tensor gk = at::cat({kf, (extent - k_norm2).clamp_min(0).sqrt().unsqueeze(-1), zeros_k}, -1);
  const at::Tensor a = projections.transpose(-2, -1);  // [B, H, D + 2, R]
  // std::optional spelling: sort(true, -1) would pick the sort(dim, descending) overload.
  const at::Tensor q_order =
      std::get<1>(at::sort(at::matmul(fq, a).transpose(-2, -1), std::optional<bool>(true), /*dim=*/-1));
  const at::Tensor k_order =
      std::get<1>(at::sort(at::matmul(gk, a).transpose(-2, -1), std::optional<bool>(true), /*dim=*/-1));
  return {q_order.to(at::kInt).contiguous(), k_order.to(at::kInt).contiguous()};
}

SmyrfArgs smyrf_args(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& q_order,
                     const at::Tensor& k_order, int64_t q_cluster, int64_t k_cluster, double scale) {
  SmyrfArgs args;
  args.qkv = qkv_args(q, k, v, scale);
  args.q_order = q_order.data_ptr<int32_t>();
  args.k_order = k_order.data_ptr<int32_t>();
  args.rounds = q_order.size(2);
  args.q_cluster = q_cluster;
  args.k_cluster = k_cluster;
  args.clusters = (q.size(2) + q_cluster - 1) / q_cluster;
  return args;
}

// Inputs: contiguous q, k, v and the int32 orders. Outputs: out_r [B,H,R,N,Dv], lse_r [B,H,R,N] fp32.
class SmyrfRoundsFunction : public torch::autograd::Function<SmyrfRoundsFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               const at::Tensor& q_order, const at::Tensor& k_order, int64_t q_cluster,
                               int64_t k_cluster, double scale) {
    const c10::cuda::CUDAGuard guard(q.device());
    const int64_t b = q.size(0), h = q.size(1), n = q.size(2), rounds = q_order.size(2);
    const auto options = q.options().dtype(at::kFloat);
    at::Tensor out_r = at::empty({b, h, rounds, n, v.size(3)}, options);
    at::Tensor lse_r = at::empty({b, h, rounds, n}, options);
    smyrf_forward(smyrf_args(q, k, v, q_order, k_order, q_cluster, k_cluster, scale), out_r.data_ptr<float>(),
                  lse_r.data_ptr<float>(), current_stream(q));
    ctx->save_for_backward({q, k, v, q_order, k_order, out_r, lse_r});
    ctx->saved_data["q_cluster"] = q_cluster;
    ctx->saved_data["k_cluster"] = k_cluster;
    ctx->saved_data["scale"] = scale;
    return {out_r, lse_r};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &q_order = saved[3], &k_order = saved[4];
    const at::Tensor &out_r = saved[5], &lse_r = saved[6];
    const c10::cuda::CUDAGuard guard(q.device());
    const at::Tensor grad_out =
        grads[0].defined() ? grads[0].to(at::kFloat).contiguous() : at::zeros_like(out_r);
    const at::Tensor grad_lse = grads[1].defined() ? grads[1].to(at::kFloat) : at::zeros_like(lse_r);
    // d lse_i / d s_ij = p_ij, so the lse gradient enters as a shift of delta.
    const at::Tensor delta = ((grad_out * out_r).sum(-1) - grad_lse).contiguous();
    const int64_t b = q.size(0), h = q.size(1), rounds = q_order.size(2);
    const auto options = q.options().dtype(at::kFloat);
    at::Tensor dq_r = at::empty({b, h, rounds, q.size(2), q.size(3)}, options);
    at::Tensor dk_r = at::empty({b, h, rounds, k.size(2), k.size(3)}, options);
    at::Tensor dv_r = at::empty({b, h, rounds, v.size(2), v.size(3)}, options);
    const SmyrfArgs args = smyrf_args(q, k, v, q_order, k_order, ctx->saved_data["q_cluster"].toInt(),
                                      ctx->saved_data["k_cluster"].toInt(), ctx->saved_data["scale"].toDouble());
    smyrf_backward(args, grad_out.data_ptr<float>(), lse_r.data_ptr<float>(), delta.data_ptr<float>(),
                   dq_r.data_ptr<float>(), dk_r.data_ptr<float>(), dv_r.data_ptr<float>(), current_stream(q));
    const auto type = q.scalar_type();
    return {dq_r.sum(2).to(type), dk_r.sum(2).to(type), dv_r.sum(2).to(type), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor smyrf_attention_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t q_cluster,
                                int64_t k_cluster, double scale, const at::Tensor& projections) {
  require_kernel_inputs("smyrf", q, k, v);
  const int64_t n = q.size(2), m = k.size(2);
  if (q_cluster < 1 || k_cluster < 1 || (n + q_cluster - 1) / q_cluster != (m + k_cluster - 1) / k_cluster) {
    throw std::invalid_argument("smyrf kernel: q_cluster=" + std::to_string(q_cluster) + " and k_cluster=" +
                                std::to_string(k_cluster) + " must be >= 1 and give equal cluster counts for N=" +
                                std::to_string(n) + ", M=" + std::to_string(m));
  }
  if (projections.dim() != 4 || projections.size(2) < 1) {
    throw std::invalid_argument("smyrf kernel: projections must be [B, H, hashes, Dqk + 2] with hashes >= 1");
  }
  require_tensor("smyrf", "projections", projections, q, at::kFloat,
                 {q.size(0), q.size(1), projections.size(2), q.size(3) + 2});
  const c10::cuda::CUDAGuard guard(q.device());
  const auto [q_order, k_order] = sorted_orders(q, k, projections);
  const variable_list rounds = SmyrfRoundsFunction::apply(q.contiguous(), k.contiguous(), v.contiguous(), q_order,
                                                          k_order, q_cluster, k_cluster, scale);
  // Rounds weighted by softmax over their lse (gradients flow through the weights too).
  const at::Tensor weights = at::softmax(rounds[1], 2).unsqueeze(-1);  // [B, H, R, N, 1]
  return (weights * rounds[0]).sum(2).to(q.scalar_type());
}

#else

at::Tensor smyrf_attention_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t, int64_t,
                                double, const at::Tensor&) {
  require_kernel_inputs("smyrf", q, k, v);  // always throws in a build without CUDA
  throw std::logic_error("smyrf kernel: unreachable");
}

#endif

}  // namespace longgan::kernels

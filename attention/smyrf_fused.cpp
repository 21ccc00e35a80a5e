// smyrf on a fused attention kernel (see smyrf_attention_fused in smyrf.h).
#include <torch/autograd.h>

#include <vector>

#include "attention/gathered_attention.h"
#include "attention/smyrf.h"

namespace longgan::attention {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Clusters of one round that share a shape, as one batch: `clusters` consecutive clusters of
// q_size sorted queries from q_begin and k_size sorted keys from k_begin.
struct ClusterBatch {
  int64_t clusters, q_begin, q_size, k_begin, k_size;
};

// The full clusters in one batch and, when N or M does not divide, the last cluster in another:
// it holds the remaining N - (C-1)*q_cluster queries and M - (C-1)*k_cluster keys (>= 1 each,
// since both lengths give C clusters), which is the reference's padded cluster without its padding.
std::vector<ClusterBatch> cluster_batches(int64_t n, int64_t m, int64_t q_cluster, int64_t k_cluster) {
  const int64_t clusters = (n + q_cluster - 1) / q_cluster;
  if (n == clusters * q_cluster && m == clusters * k_cluster) return {{clusters, 0, q_cluster, 0, k_cluster}};
  std::vector<ClusterBatch> batches;
  const int64_t full = clusters - 1;
  if (full > 0) batches.push_back({full, 0, q_cluster, 0, k_cluster});
  batches.push_back({1, full * q_cluster, n - full * q_cluster, full * k_cluster, m - full * k_cluster});
  return batches;
}

// Table rows of a batch's queries (or keys): sorted positions [begin, begin + clusters * size) of
// every (b, h) of one round's rows [BH, L] -> [BH * clusters, size].
at::Tensor batch_rows(const at::Tensor& round_rows, int64_t clusters, int64_t begin, int64_t size) {
  return round_rows.narrow(1, begin, clusters * size).reshape({-1, size});
}

// What the backward keeps of one kernel call.
constexpr int kSavedPerCall = 4;  // lse, kernel_lse, philox_seed, philox_offset
constexpr int kSavedFixed = 7;    // q, k, v, query rows, key rows, out, merged lse

class SmyrfFusedFunction : public torch::autograd::Function<SmyrfFusedFunction> {
 public:
  // q_rows [R, BH, N] and k_rows [R, BH, M]: table rows of each round's hash order.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& q_rows, const at::Tensor& k_rows, int64_t q_cluster,
                            int64_t k_cluster, double scale, int64_t kernel_id) {
    const auto kernel = static_cast<kernels::FusedKernel>(kernel_id);
    const int64_t n = q.size(2), m = k.size(2), dv = v.size(3), rows = q_rows.size(1) * n;
    const auto type = compute_dtype(q);
    auto q_table = row_table(q), k_table = row_table(k), v_table = row_table(v);
    const auto batches = cluster_batches(n, m, q_cluster, k_cluster);

    std::vector<at::Tensor> saved = {q, k, v, q_rows, k_rows};
    std::vector<at::Tensor> per_call;
    at::Tensor merged, merged_lse;  // [rows, Dv], [rows] in the accumulate type
    for (int64_t r = 0; r < q_rows.size(0); ++r) {
      auto out_r = at::empty({rows, dv}, v.options());
      auto lse_r = at::empty({rows}, q.options().dtype(type));
      for (const auto& b : batches) {
        auto qr = batch_rows(q_rows[r], b.clusters, b.q_begin, b.q_size);
        auto kr = batch_rows(k_rows[r], b.clusters, b.k_begin, b.k_size);
        auto f = kernels::fused_attention_forward(gather_problems(q_table, qr), gather_problems(k_table, kr),
                                                  gather_problems(v_table, kr), scale, kernel);
        out_r.index_copy_(0, qr.reshape(-1), f.out.reshape({-1, dv}));
        lse_r.index_copy_(0, qr.reshape(-1), f.lse.reshape(-1).to(type));
        per_call.insert(per_call.end(), {f.lse, f.kernel_lse, f.philox_seed, f.philox_offset});
      }
      // Online merge, in place: after round r, merged = sum_{s<=r} exp(lse_s - merged_lse) out_s.
      if (r == 0) {
        merged = out_r.to(type);
        merged_lse = lse_r;
      } else {
        auto total = at::logaddexp(merged_lse, lse_r);
        merged.mul_(at::exp(merged_lse - total).unsqueeze(-1));
        merged.addcmul_(out_r, at::exp(lse_r - total).unsqueeze(-1));
        merged_lse = total;
      }
    }
    // A tensor of its own, not a view of an intermediate: it is the function's output.
    auto out = at::empty({q.size(0), q.size(1), n, dv}, q.options());
    out.view({-1, dv}).copy_(merged);
    saved.push_back(out);
    saved.push_back(merged_lse);
    saved.insert(saved.end(), per_call.begin(), per_call.end());
    ctx->save_for_backward(saved);
    ctx->saved_data["q_cluster"] = q_cluster;
    ctx->saved_data["k_cluster"] = k_cluster;
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["kernel"] = kernel_id;
    return out;
  }

  // out = sum_r w_r O_r with w_r = exp(lse_r - merged_lse). For round r's logits S_r (probabilities P_r):
  // dL/dO_r = w_r dO and dL/dlse_r = w_r (dO.O_r - dO.out), so
  //   dS_r = P_r * (w_r dO v^T - w_r dO.O_r) + P_r * dL/dlse_r = P_r * (w_r dO v^T - w_r dO.out):
  // the kernel's backward with grad_out = w_r dO and out in place of O_r.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2], &q_rows = saved[3], &k_rows = saved[4];
    const auto &out = saved[5], &merged_lse = saved[6];
    const int64_t q_cluster = ctx->saved_data["q_cluster"].toInt(), k_cluster = ctx->saved_data["k_cluster"].toInt();
    const double scale = ctx->saved_data["scale"].toDouble();
    const auto kernel = static_cast<kernels::FusedKernel>(ctx->saved_data["kernel"].toInt());
    variable_list result(9);
    if (!grads[0].defined()) return result;

    const int64_t n = q.size(2), m = k.size(2), dqk = q.size(3), dv = v.size(3);
    const auto type = compute_dtype(q);
    auto q_table = row_table(q), k_table = row_table(k), v_table = row_table(v);
    auto out_table = row_table(out), grad_table = row_table(grads[0].contiguous());
    auto dq = at::zeros({q_table.size(0), dqk}, q.options().dtype(type));
    auto dk = at::zeros({k_table.size(0), dqk}, k.options().dtype(type));
    auto dvv = at::zeros({v_table.size(0), dv}, v.options().dtype(type));
    const auto batches = cluster_batches(n, m, q_cluster, k_cluster);
    size_t call = 0;
    for (int64_t r = 0; r < q_rows.size(0); ++r) {
      for (const auto& b : batches) {
        const size_t base = kSavedFixed + kSavedPerCall * call++;
        kernels::FusedForward f;
        f.lse = saved[base];
        f.kernel_lse = saved[base + 1];
        f.philox_seed = saved[base + 2];
        f.philox_offset = saved[base + 3];
        f.kernel = kernel;
        auto qr = batch_rows(q_rows[r], b.clusters, b.q_begin, b.q_size);
        auto kr = batch_rows(k_rows[r], b.clusters, b.k_begin, b.k_size);
        auto weights = at::exp(f.lse.to(type) - gather_problems(merged_lse.unsqueeze(-1), qr).squeeze(-1));
        // In the inputs' dtype: the kernel takes grad_out in it (bf16 rounds the weights first).
        auto grad_out = gather_problems(grad_table, qr).mul_(weights.to(q.scalar_type()).unsqueeze(-1));
        auto g = kernels::fused_attention_backward(grad_out, gather_problems(q_table, qr),
                                                   gather_problems(k_table, kr), gather_problems(v_table, kr),
                                                   gather_problems(out_table, qr), f, scale);
        dq.index_add_(0, qr.reshape(-1), g.dq.reshape({-1, dqk}).to(type));
        dk.index_add_(0, kr.reshape(-1), g.dk.reshape({-1, dqk}).to(type));
        dvv.index_add_(0, kr.reshape(-1), g.dv.reshape({-1, dv}).to(type));
      }
    }
    result[0] = dq.to(q.scalar_type()).view(q.sizes());
    result[1] = dk.to(k.scalar_type()).view(k.sizes());
    result[2] = dvv.to(v.scalar_type()).view(v.sizes());
    return result;
  }
};

}  // namespace

at::Tensor smyrf_attention_fused(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 const SmyrfOptions& options, double scale, const SmyrfOrders& orders,
                                 kernels::FusedKernel kernel) {
  options.validate_lengths(q.size(2), k.size(2));
  // [B, H, R, L] positions -> [R, B*H, L] table rows.
  auto rows = [](const at::Tensor& order, int64_t length) {
    return table_rows(order, length).permute({2, 0, 1, 3}).reshape({order.size(2), -1, order.size(3)});
  };
  return SmyrfFusedFunction::apply(q, k, v, rows(orders.queries, q.size(2)), rows(orders.keys, k.size(2)),
                                   options.q_cluster, options.k_cluster, scale, static_cast<int64_t>(kernel));
}

}  // namespace longgan::attention

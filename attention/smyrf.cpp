#include "attention/smyrf.h"

#include "attention/autocast_off.h"
#include "attention/call_profile.h"
#include "attention/gathered_attention.h"
#include "kernels/stable_argsort.h"

#include <limits>
#include <stdexcept>
#include <string>

namespace longgan::attention {

void SmyrfOptions::validate() const {
  if (hashes < 1 || hashes > 64) {
    throw std::invalid_argument("attention smyrf: hashes must be in [1, 64], got " + std::to_string(hashes));
  }
  if (q_cluster < 1) {
    throw std::invalid_argument("attention smyrf: q_cluster must be >= 1, got " + std::to_string(q_cluster));
  }
  if (k_cluster < 1) {
    throw std::invalid_argument("attention smyrf: k_cluster must be >= 1, got " + std::to_string(k_cluster));
  }
}

void SmyrfOptions::validate_lengths(int64_t n, int64_t m) const {
  if (q_cluster > n) {
    throw std::invalid_argument("attention smyrf: q_cluster=" + std::to_string(q_cluster) +
                                " is larger than the " + std::to_string(n) + " queries; use q_cluster in [1, " +
                                std::to_string(n) + "]");
  }
  if (k_cluster > m) {
    throw std::invalid_argument("attention smyrf: k_cluster=" + std::to_string(k_cluster) +
                                " is larger than the " + std::to_string(m) + " keys; use k_cluster in [1, " +
                                std::to_string(m) + "]");
  }
  int64_t q_clusters = (n + q_cluster - 1) / q_cluster, k_clusters = (m + k_cluster - 1) / k_cluster;
  if (q_clusters != k_clusters) {
    throw std::invalid_argument("attention smyrf: " + std::to_string(n) + " queries / q_cluster=" +
                                std::to_string(q_cluster) + " gives " + std::to_string(q_clusters) +
                                " clusters but " + std::to_string(m) + " keys / k_cluster=" +
                                std::to_string(k_cluster) + " gives " + std::to_string(k_clusters) +
                                "; choose sizes with N/q_cluster == M/k_cluster");
  }
}

at::Tensor smyrf_draw_projections(int64_t batch, int64_t heads, int64_t hashes, int64_t dqk, at::Generator generator,
                                  at::Device device) {
  auto projections = at::randn({batch, heads, hashes, dqk + 2}, generator, at::TensorOptions().dtype(at::kFloat));
  return projections.to(device);
}

namespace {

// Pads each round's order at the end with `pad_index` (the index of an appended zero row) to
// `padded` entries: [B, H, R, padded].
at::Tensor padded_order(const at::Tensor& order, int64_t padded, int64_t pad_index) {
  int64_t missing = padded - order.size(-1);
  if (missing == 0) return order;
  auto sizes = order.sizes().vec();
  sizes.back() = missing;
  return at::cat({order, at::full(sizes, pad_index, order.options())}, -1);
}


// rows [B, H, L, D] with a zero row appended, gathered per round by `order` [B, H, R, P]
// -> [B, H, R, P, D].
at::Tensor gather_rows(const at::Tensor& rows, const at::Tensor& order) {
  auto padded = at::cat({rows, at::zeros_like(rows.narrow(2, 0, 1))}, 2);
  auto expanded = padded.unsqueeze(2).expand({rows.size(0), rows.size(1), order.size(2), padded.size(2), rows.size(3)});
  auto index = order.unsqueeze(-1).expand({order.size(0), order.size(1), order.size(2), order.size(3), rows.size(3)});
  return at::gather(expanded, 3, index);
}

}  // namespace

namespace {

// Steps 1-2 of the reference with `sort`, the stable ascending order of each round's hash values
// [B, H, R, L].
SmyrfOrders hash_orders(const at::Tensor& q, const at::Tensor& k, const at::Tensor& projections,
                        at::Tensor (*sort)(const at::Tensor&)) {
  TORCH_CHECK(projections.dim() == 4 && projections.size(0) == q.size(0) && projections.size(1) == q.size(1) &&
                  projections.size(3) == q.size(3) + 2,
              "smyrf: projections must be [B, H, hashes, Dqk + 2]");
  at::NoGradGuard no_grad;
  const AutocastOff fp32;  // a bf16 hash orders long runs of ties by position, not by similarity
  const auto dtype = compute_dtype(q);
  auto qf = q.to(dtype), kf = k.to(dtype);
  const int64_t d = q.size(3);
  auto q_norm2 = qf.square().sum(-1), k_norm2 = kf.square().sum(-1);
  auto extent = q_norm2.amax(-1, true) + k_norm2.amax(-1, true);
  auto a = projections.to(q.device(), dtype);  // [B, H, R, D+2]
  // a_r . F(q) = a_r[:D] . q + a_r[D+1] sqrt(extent - |q|^2) and a_r . G(k) = a_r[:D] . k +
  // a_r[D] sqrt(extent - |k|^2), without building F and G: one product straight into the
  // [B, H, R, L] rows the sort takes, then the extra coordinate's term added in place.
  auto hashes = [&](const at::Tensor& x, const at::Tensor& norm2, int64_t extra) {
    auto h = at::matmul(a.narrow(-1, 0, d), x.transpose(-2, -1));  // [B, H, R, L]
    return h.addcmul_(a.select(-1, extra).unsqueeze(-1), (extent - norm2).clamp_min(0).sqrt().unsqueeze(-2));
  };
  return {sort(hashes(qf, q_norm2, d + 1)), sort(hashes(kf, k_norm2, d))};
}

}  // namespace

// The kernels layer's radix sort on the CPU (the same indices as at::sort, measured faster), at::sort elsewhere.
SmyrfOrders smyrf_sort_orders(const at::Tensor& q, const at::Tensor& k, const at::Tensor& projections) {
  return hash_orders(q, k, projections, kernels::stable_argsort);
}

// Per batch element and head.
// Computed in fp32 (fp64 for fp64 inputs):
//  1. XBOX+ transform: F(q) = [q, 0, sqrt(MQ^2 + MK^2 - |q|^2)], G(k) = [k, sqrt(MQ^2 + MK^2 - |k|^2), 0]
//     with MQ, MK the largest query and key norms (no gradient through the hashing).
//  2. Round r hashes h = a_r . F(q) and a_r . G(k); stable ascending sort of each.
//  3. C = ceil(N / q_cluster) clusters; sorted queries and keys padded at the end to C*q_cluster
//     and C*k_cluster; query cluster c attends to key cluster c; padded keys get -inf logits and
//     padded queries are dropped, so padding neither gives nor receives probability.
//  4. Exact softmax attention inside each cluster, with each query's log-sum-exp.
//  5. Rounds merged by out = sum_r softmax_r(lse_r) * out_r.
at::Tensor smyrf_attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                     const SmyrfOptions& options, double scale, const at::Tensor& projections) {
  const int64_t batch = q.size(0), heads = q.size(1), n = q.size(2), m = k.size(2);
  const int64_t rounds = projections.size(2);
  const int64_t clusters = (n + options.q_cluster - 1) / options.q_cluster;
  const int64_t n_padded = clusters * options.q_cluster, m_padded = clusters * options.k_cluster;
  const auto dtype = compute_dtype(q);
  auto qf = q.to(dtype), kf = k.to(dtype), vf = v.to(dtype);
  auto orders = hash_orders(q, k, projections, kernels::stable_argsort_reference);
  auto q_order = padded_order(orders.queries, n_padded, n), k_order = padded_order(orders.keys, m_padded, m);
  auto q_sorted = gather_rows(qf, q_order).view({batch, heads, rounds, clusters, options.q_cluster, -1});
  auto k_sorted = gather_rows(kf, k_order).view({batch, heads, rounds, clusters, options.k_cluster, -1});
  auto v_sorted = gather_rows(vf, k_order).view({batch, heads, rounds, clusters, options.k_cluster, -1});
  auto key_is_padding = (k_order == m).view({batch, heads, rounds, clusters, 1, options.k_cluster});

  auto logits = at::matmul(q_sorted, k_sorted.transpose(-2, -1)) * scale;
  logits = logits.masked_fill(key_is_padding, -std::numeric_limits<float>::infinity());
  auto lse = at::logsumexp(logits, -1, /*keepdim=*/true);
  auto out_sorted = at::matmul(at::exp(logits - lse), v_sorted);

  // Back to the original query order; the padded tail of the sorted order is dropped.
  auto inverse = at::argsort(q_order.narrow(-1, 0, n), /*stable=*/true, -1);  // [B, H, R, N]
  auto out_rounds = at::gather(out_sorted.view({batch, heads, rounds, n_padded, -1}).narrow(3, 0, n), 3,
                               inverse.unsqueeze(-1).expand({batch, heads, rounds, n, v.size(3)}));
  auto lse_rounds = at::gather(lse.view({batch, heads, rounds, n_padded}).narrow(3, 0, n), 3, inverse);
  auto weights = at::softmax(lse_rounds, 2).unsqueeze(-1);
  return (weights * out_rounds).sum(2).to(q.scalar_type());
}

at::Tensor smyrf_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const SmyrfOptions& options,
                           const CallOptions& call) {
  options.validate();
  options.validate_lengths(q.size(2), k.size(2));
  double scale = resolve_scale(call, q.size(3));
  if (call.backend == Backend::Reference) {
    record_implementation("aten reference");
    auto projections = smyrf_draw_projections(q.size(0), q.size(1), options.hashes, q.size(3),
                                              resolve_generator(call), q.device());
    return smyrf_attention_reference(q, k, v, options, scale, projections);
  }
  auto kernel = fused_kernel_for_call(call, q, "smyrf");
  record_implementation(std::string("fused ") + kernels::fused_kernel_name(kernel));
  SmyrfOrders orders;
  {
    PhaseTimer phase(kPhaseHash);
    auto projections = smyrf_draw_projections(q.size(0), q.size(1), options.hashes, q.size(3),
                                              resolve_generator(call), q.device());
    orders = smyrf_sort_orders(q, k, projections);
  }
  return smyrf_attention_fused(q, k, v, options, scale, orders, kernel);
}

}  // namespace longgan::attention

// smyrf on a fused attention kernel (see smyrf_attention_fused in smyrf.h).
#include <torch/autograd.h>

#include <algorithm>
#include <vector>

#include "attention/call_profile.h"
#include "attention/gathered_attention.h"
#include "attention/smyrf.h"
#include "kernels/round_merge.h"

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

// One kernel call: problems of query rows [P, q_size] and key rows [P, k_size] of the tables.
struct KernelCall {
  at::Tensor q_rows, k_rows;
};

// Query rows gathered per kernel call: bounds the gathered copies and the kernel's temporaries
// (the peak memory of a call) on the CPU; on CUDA large enough that the BigGAN shapes take one
// call per batch (B=8 x 65,536 queries = 2^19 rows), for parallelism.
int64_t max_query_rows_per_call(const at::Tensor& q) { return q.is_cuda() ? int64_t{1} << 21 : int64_t{8192}; }

// The kernel calls of round r, in a fixed order (the backward replays it): every batch of
// `batches`, its problems (all (b, h) x its clusters) in chunks of at most `max_rows` query rows.
// q_rows [BH, N] and k_rows [BH, M] hold the round's table rows in hash order.
std::vector<KernelCall> round_calls(const at::Tensor& q_rows, const at::Tensor& k_rows,
                                    const std::vector<ClusterBatch>& batches, int64_t max_rows) {
  std::vector<KernelCall> calls;
  for (const auto& b : batches) {
    auto qr = q_rows.narrow(1, b.q_begin, b.clusters * b.q_size).reshape({-1, b.q_size});
    auto kr = k_rows.narrow(1, b.k_begin, b.clusters * b.k_size).reshape({-1, b.k_size});
    const int64_t per_call = std::max<int64_t>(1, max_rows / b.q_size);
    for (int64_t start = 0; start < qr.size(0); start += per_call) {
      const int64_t count = std::min(per_call, qr.size(0) - start);
      calls.push_back({qr.narrow(0, start, count), kr.narrow(0, start, count)});
    }
  }
  return calls;
}

// What the backward keeps of one kernel call: the CUDA kernel's random-number state.
constexpr int kSavedPerCall = 2;  // philox_seed, philox_offset
constexpr int kSavedFixed = 7;    // q, k, v, query rows, key rows, out, merged lse

// SMYRF's hash rounds as they arrive, one kernel call at a time; every round covers every row
// exactly once (SmyrfRoundMerge in smyrf.h says when each way is used).
//   Online: a running merge in the accumulate type, updated by each call on the rows it covers
//     (memory: one accumulator; each update touches only the call's rows, which stay in cache when
//     calls are small, as on the CPU).
//   Buffered: rounds 0..R-2 go once into per-row slots [rows, R-1, ...] in the inputs' dtype; each
//     call of the last round reads the slots of its rows, merges them with one batched product and
//     writes the rows un-permuted (the fewest bytes moved when a call covers a whole round, as on CUDA).

// The merged output out = sum_r w_r O_r, w_r = exp(lse_r - LSE), LSE = logsumexp_r lse_r.
class RoundOutputs {
 public:
  RoundOutputs(SmyrfRoundMerge mode, int64_t rows, int64_t rounds, int64_t width, const at::TensorOptions& options,
               at::ScalarType accumulate)
      : mode_(mode), rounds_(rounds), dtype_(options.dtype().toScalarType()), lse_(at::empty({rows}, options.dtype(accumulate))) {
    if (mode == SmyrfRoundMerge::Online) {
      out_ = at::empty({rows, width}, options.dtype(accumulate));
      return;
    }
    out_ = at::empty({rows, width}, options);
    if (rounds > 1) {
      out_slots_ = at::empty({rows, rounds - 1, width}, options);
      lse_slots_ = at::empty({rows, rounds - 1}, options.dtype(accumulate));
    }
  }

  // Round `round`'s output rows [n, width] (inputs' dtype) and log-sum-exps [n] of table rows `rows` [n].
  void add(int64_t round, const at::Tensor& rows, const at::Tensor& out, const at::Tensor& lse) {
    const auto lse_c = lse.to(lse_.scalar_type());
    if (round == 0 && (mode_ == SmyrfRoundMerge::Online || rounds_ == 1)) {
      out_.index_copy_(0, rows, out.to(out_.scalar_type()));
      lse_.index_copy_(0, rows, lse_c);
    } else if (mode_ == SmyrfRoundMerge::Online) {
      kernels::merge_round_rows_(out_, lse_, rows, out, lse_c);  // sum_{s<=r} exp(lse_s - total) O_s
    } else if (round < rounds_ - 1) {
      out_slots_.select(1, round).index_copy_(0, rows, out);
      lse_slots_.select(1, round).index_copy_(0, rows, lse_c);
    } else {
      auto all_lse = at::cat({lse_slots_.index_select(0, rows), lse_c.unsqueeze(1)}, 1);  // [n, R]
      auto merged_lse = at::logsumexp(all_lse, 1);
      auto weights = at::exp(all_lse - merged_lse.unsqueeze(1)).to(dtype_);
      // [1 x R-1] x [R-1 x width] per row (accumulated in fp32 inside the product), then the last round.
      auto merged = at::bmm(weights.narrow(1, 0, rounds_ - 1).unsqueeze(1), out_slots_.index_select(0, rows)).squeeze(1);
      merged.addcmul_(out, weights.narrow(1, rounds_ - 1, 1));
      out_.index_copy_(0, rows, merged);
      lse_.index_copy_(0, rows, merged_lse);
    }
  }

  // The merged output in the inputs' dtype, and LSE in the accumulate type.
  at::Tensor out() const { return out_.scalar_type() == dtype_ ? out_ : out_.to(dtype_); }
  const at::Tensor& lse() const { return lse_; }

 private:
  SmyrfRoundMerge mode_;
  int64_t rounds_;
  at::ScalarType dtype_;
  at::Tensor out_, lse_, out_slots_, lse_slots_;
};

// The sum over rounds of per-row gradients, accumulated in `accumulate` and rounded once.
//   Online: added into an accumulator (kernels::add_rows_). Buffered: per-round slots, summed by the last round.
class RoundSums {
 public:
  RoundSums(SmyrfRoundMerge mode, int64_t rows, int64_t rounds, int64_t width, const at::TensorOptions& options,
            at::ScalarType accumulate)
      : mode_(mode), rounds_(rounds), dtype_(options.dtype().toScalarType()), accumulate_(accumulate) {
    if (mode == SmyrfRoundMerge::Online) {
      sum_ = at::zeros({rows, width}, options.dtype(accumulate));
      return;
    }
    sum_ = at::empty({rows, width}, options);
    if (rounds > 1) slots_ = at::empty({rows, rounds - 1, width}, options);
  }

  void add(int64_t round, const at::Tensor& rows, const at::Tensor& values) {
    if (mode_ == SmyrfRoundMerge::Online) {
      kernels::add_rows_(sum_, rows, values);
    } else if (round < rounds_ - 1) {
      slots_.select(1, round).index_copy_(0, rows, values);
    } else if (rounds_ == 1) {
      sum_.index_copy_(0, rows, values);
    } else {
      auto total = at::sum(slots_.index_select(0, rows), {1}, false, accumulate_).add_(values);
      sum_.index_copy_(0, rows, total.to(dtype_));
    }
  }

  at::Tensor sum() const { return sum_.scalar_type() == dtype_ ? sum_ : sum_.to(dtype_); }

 private:
  SmyrfRoundMerge mode_;
  int64_t rounds_;
  at::ScalarType dtype_, accumulate_;
  at::Tensor sum_, slots_;
};

class SmyrfFusedFunction : public torch::autograd::Function<SmyrfFusedFunction> {
 public:
  // q_rows [R, BH, N] and k_rows [R, BH, M]: table rows of each round's hash order.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& q_rows, const at::Tensor& k_rows, int64_t q_cluster,
                            int64_t k_cluster, double scale, int64_t kernel_id, int64_t merge_id) {
    const auto kernel = static_cast<kernels::FusedKernel>(kernel_id);
    const auto mode = static_cast<SmyrfRoundMerge>(merge_id);
    const int64_t n = q.size(2), m = k.size(2), dv = v.size(3), rows = q_rows.size(1) * n;
    const int64_t rounds = q_rows.size(0);
    const auto type = compute_dtype(q);
    auto q_table = row_table(q), k_table = row_table(k), v_table = row_table(v);
    const auto batches = cluster_batches(n, m, q_cluster, k_cluster);

    RoundOutputs merged(mode, rows, rounds, dv, q.options(), type);
    std::vector<at::Tensor> per_call;
    for (int64_t r = 0; r < rounds; ++r) {
      for (const auto& call : round_calls(q_rows[r], k_rows[r], batches, max_query_rows_per_call(q))) {
        at::Tensor qg, kg, vg;
        {
          PhaseTimer phase(kPhaseGather);
          qg = gather_problems(q_table, call.q_rows);
          kg = gather_problems(k_table, call.k_rows);
          vg = gather_problems(v_table, call.k_rows);
        }
        kernels::FusedForward f;
        {
          PhaseTimer phase(kPhaseKernel);
          f = kernels::fused_attention_forward(qg, kg, vg, scale, kernel);
        }
        PhaseTimer phase(kPhaseMerge);
        merged.add(r, call.q_rows.reshape(-1), f.out.reshape({-1, dv}), f.lse.reshape(-1));
        per_call.insert(per_call.end(), {f.philox_seed, f.philox_offset});
      }
    }
    auto out = merged.out().view({q.size(0), q.size(1), n, dv});
    std::vector<at::Tensor> saved = {q, k, v, q_rows, k_rows, out, merged.lse()};
    saved.insert(saved.end(), per_call.begin(), per_call.end());
    ctx->save_for_backward(saved);
    ctx->saved_data["q_cluster"] = q_cluster;
    ctx->saved_data["k_cluster"] = k_cluster;
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["kernel"] = kernel_id;
    ctx->saved_data["merge"] = merge_id;
    return out;
  }

  // out = sum_r w_r O_r = sum_r exp(S_r - LSE) v_r: one softmax over every round's logits S_r
  // together. Its gradient is the attention gradient with P_r replaced by exp(S_r - LSE) and the
  // delta term rowsum(dO * out): exactly the kernel's backward of round r fed the merged LSE in
  // place of lse_r, the merged out and the raw dO. Each round's dq, dk, dv go once into the row's
  // slot of its round; the last round's calls add them up (RoundSums).
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2], &q_rows = saved[3], &k_rows = saved[4];
    const auto &out = saved[5], &merged_lse = saved[6];
    const int64_t q_cluster = ctx->saved_data["q_cluster"].toInt(), k_cluster = ctx->saved_data["k_cluster"].toInt();
    const double scale = ctx->saved_data["scale"].toDouble();
    const auto kernel = static_cast<kernels::FusedKernel>(ctx->saved_data["kernel"].toInt());
    const auto mode = static_cast<SmyrfRoundMerge>(ctx->saved_data["merge"].toInt());
    variable_list result(10);
    if (!grads[0].defined()) return result;

    const int64_t n = q.size(2), m = k.size(2), dqk = q.size(3), dv = v.size(3), rounds = q_rows.size(0);
    auto q_table = row_table(q), k_table = row_table(k), v_table = row_table(v);
    auto out_table = row_table(out), grad_table = row_table(grads[0].to(q.scalar_type()).contiguous());
    auto lse_table = merged_lse.unsqueeze(-1);
    const auto type = compute_dtype(q);
    RoundSums dq(mode, q_table.size(0), rounds, dqk, q.options(), type);
    RoundSums dk(mode, k_table.size(0), rounds, dqk, k.options(), type);
    RoundSums dvv(mode, v_table.size(0), rounds, dv, v.options(), type);
    const auto batches = cluster_batches(n, m, q_cluster, k_cluster);
    size_t call_index = 0;
    for (int64_t r = 0; r < rounds; ++r) {
      for (const auto& call : round_calls(q_rows[r], k_rows[r], batches, max_query_rows_per_call(q))) {
        const size_t base = kSavedFixed + kSavedPerCall * call_index++;
        kernels::FusedForward f;
        at::Tensor qg, kg, vg, outg, dog;
        {
          PhaseTimer phase(kPhaseBackwardGather);
          f.lse = gather_problems(lse_table, call.q_rows).squeeze(-1);
          f.philox_seed = saved[base];
          f.philox_offset = saved[base + 1];
          f.kernel = kernel;
          qg = gather_problems(q_table, call.q_rows);
          kg = gather_problems(k_table, call.k_rows);
          vg = gather_problems(v_table, call.k_rows);
          outg = gather_problems(out_table, call.q_rows);
          dog = gather_problems(grad_table, call.q_rows);
        }
        kernels::FusedGradients g;
        {
          PhaseTimer phase(kPhaseBackwardKernel);
          g = kernels::fused_attention_backward(dog, qg, kg, vg, outg, f, scale);
        }
        PhaseTimer phase(kPhaseBackwardMerge);
        dq.add(r, call.q_rows.reshape(-1), g.dq.reshape({-1, dqk}));
        dk.add(r, call.k_rows.reshape(-1), g.dk.reshape({-1, dqk}));
        dvv.add(r, call.k_rows.reshape(-1), g.dv.reshape({-1, dv}));
      }
    }
    result[0] = dq.sum().view(q.sizes());
    result[1] = dk.sum().view(k.sizes());
    result[2] = dvv.sum().view(v.sizes());
    return result;
  }
};

}  // namespace

SmyrfRoundMerge default_round_merge(kernels::FusedKernel kernel) {
  return kernel == kernels::FusedKernel::CudaEfficient ? SmyrfRoundMerge::Buffered : SmyrfRoundMerge::Online;
}

at::Tensor smyrf_attention_fused(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 const SmyrfOptions& options, double scale, const SmyrfOrders& orders,
                                 kernels::FusedKernel kernel, std::optional<SmyrfRoundMerge> merge) {
  options.validate_lengths(q.size(2), k.size(2));
  const SmyrfRoundMerge mode = merge.value_or(default_round_merge(kernel));
  // [B, H, R, L] positions -> [R, B*H, L] table rows.
  auto rows = [](const at::Tensor& order, int64_t length) {
    return table_rows(order, length).permute({2, 0, 1, 3}).reshape({order.size(2), -1, order.size(3)});
  };
  return SmyrfFusedFunction::apply(q, k, v, rows(orders.queries, q.size(2)), rows(orders.keys, k.size(2)),
                                   options.q_cluster, options.k_cluster, scale, static_cast<int64_t>(kernel),
                                   static_cast<int64_t>(mode));
}

}  // namespace longgan::attention

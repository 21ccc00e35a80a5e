#include "attention/combiner_axial.h"

#include "attention/call_profile.h"

#include <limits>
#include <stdexcept>
#include <string>

namespace longgan::attention {
namespace {

// floor(x * to / from) for x = 0..count-1, as an int64 index tensor on `device`.
at::Tensor scaled_indices(int64_t count, int64_t to, int64_t from, at::Device device) {
  return at::arange(count, at::TensorOptions().dtype(at::kLong).device(device)).mul(to).div(from, "floor");
}

}  // namespace

at::Tensor combiner_axial_attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                              double scale, Grid query_grid, Grid key_grid) {
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4) {
    throw std::invalid_argument("combiner_axial_attention_reference: q, k, v must be 4-D [B, H, length, features]");
  }
  query_grid = resolve_grid(query_grid, q.size(2), "attention combiner_axial: query");
  key_grid = resolve_grid(key_grid, k.size(2), "attention combiner_axial: key");
  const auto type = compute_dtype(q);
  const int64_t b = q.size(0), h = q.size(1), d = q.size(3), dv = v.size(3);
  const int64_t hq = query_grid.height, wq = query_grid.width, hk = key_grid.height, wk = key_grid.width;
  const auto device = q.device();

  auto qg = q.to(type).view({b, h, hq, wq, d});
  auto kg = k.to(type).view({b, h, hk, wk, d});
  auto vg = v.to(type).view({b, h, hk, wk, dv});
  auto row_of_query = scaled_indices(hq, hk, hq, device);  // row(i)
  auto col_of_query = scaled_indices(wq, wk, wq, device);  // col(j)

  // 1. Row summaries s, rv [B, H, Hk, Wk, *] from the representative queries qhat.
  auto qhat = qg.index_select(2, scaled_indices(hk, hq, hk, device)).index_select(3, scaled_indices(wk, wq, wk, device));
  auto row_weights = at::softmax(at::matmul(qhat, kg.transpose(-1, -2)) * scale, -1);  // [B, H, Hk, Wk, Wk]
  auto summaries = at::matmul(row_weights, kg);
  auto row_outputs = at::matmul(row_weights, vg);

  // 2a. Logits against the keys of the query's own key row: [B, H, Hq, Wq, Wk].
  auto own_keys = kg.index_select(2, row_of_query);  // [B, H, Hq, Wk, D]
  auto own_values = vg.index_select(2, row_of_query);
  auto direct_logits = at::matmul(qg, own_keys.transpose(-1, -2)) * scale;

  // 2b. Logits against the summaries of column col(j) of every key row: [B, H, Hq, Wq, Hk],
  // computed column-major ([B, H, Wq, Hq, Hk]) so that the summaries are one matmul operand.
  auto column_summaries = summaries.index_select(3, col_of_query).transpose(2, 3);     // [B, H, Wq, Hk, D]
  auto column_outputs = row_outputs.index_select(3, col_of_query).transpose(2, 3);     // [B, H, Wq, Hk, Dv]
  auto qt = qg.transpose(2, 3);                                                        // [B, H, Wq, Hq, D]
  auto summary_logits = (at::matmul(qt, column_summaries.transpose(-1, -2)) * scale).transpose(2, 3);
  auto own_row = row_of_query.unsqueeze(-1).eq(at::arange(hk, row_of_query.options()));  // [Hq, Hk]
  summary_logits = summary_logits.masked_fill(own_row.unsqueeze(1), -std::numeric_limits<double>::infinity());

  // One softmax over both sets (the direct part is never empty, so no row is all -inf).
  auto weights = at::softmax(at::cat({direct_logits, summary_logits}, -1), -1);
  auto direct_weights = weights.narrow(-1, 0, wk);
  auto summary_weights = weights.narrow(-1, wk, hk);
  auto out = at::matmul(direct_weights, own_values) +
             at::matmul(summary_weights.transpose(2, 3), column_outputs).transpose(2, 3);
  return out.reshape({b, h, hq * wq, dv}).to(q.scalar_type());
}

at::Tensor combiner_axial_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                    const CombinerAxialOptions& options, const CallOptions& call) {
  options.validate();
  options.validate_lengths(q.size(2), k.size(2));
  // Its joint softmax mixes each query's own key row with column summaries that exclude that row,
  // which no batch of plain attentions expresses: the reference (batched ATen matmuls, O(N (Hk + Wk))
  // memory) is its only path.
  if (call.backend == Backend::Fused || call.backend == Backend::FusedMath) {
    throw std::invalid_argument(
        "attention combiner_axial: there is no fused path for combiner_axial; use backend=auto or backend=reference");
  }
  record_implementation("aten reference");
  PhaseTimer phase(kPhaseKernel);
  return combiner_axial_attention_reference(q, k, v, resolve_scale(call, q.size(3)), call.query_grid, call.key_grid);
}

}  // namespace longgan::attention

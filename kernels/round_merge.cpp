#include "kernels/round_merge.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>

namespace longgan::kernels {
namespace {

// Rows per thread task: enough elements that a task outweighs its scheduling.
int64_t grain_rows(int64_t width) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, width)); }

bool is_accumulate_type(at::ScalarType type) { return type == at::kFloat || type == at::kDouble; }

bool fusable_rows(const at::Tensor& target, const at::Tensor& rows, const at::Tensor& values) {
  return target.device().is_cpu() && rows.device().is_cpu() && values.device().is_cpu() && target.dim() == 2 &&
         target.is_contiguous() && is_accumulate_type(target.scalar_type()) && rows.dim() == 1 &&
         rows.scalar_type() == at::kLong && values.dim() == 2 && values.size(0) == rows.size(0) &&
         values.size(1) == target.size(1) && at::isFloatingType(values.scalar_type());
}

// The merge's per-row weights, by ATen's vectorised ops on [n] vectors; both spellings of the
// merge use them, so they agree on the weights and the merged log-sum-exps exactly.
// index_select checks the rows' range before anything is written.
struct MergeWeights {
  at::Tensor total, keep, take;  // logaddexp(a, b), exp(a - total), exp(b - total)
};

MergeWeights merge_weights(const at::Tensor& lse_so_far, const at::Tensor& rows, const at::Tensor& lse) {
  const at::Tensor before = lse_so_far.index_select(0, rows);
  at::Tensor total = at::logaddexp(before, lse);
  return {total, at::exp(before - total), at::exp(lse - total)};
}

}  // namespace

bool merge_round_rows_uses_fused(const at::Tensor& out_so_far, const at::Tensor& lse_so_far, const at::Tensor& rows,
                                 const at::Tensor& out, const at::Tensor& lse) {
  return fusable_rows(out_so_far, rows, out) && lse_so_far.device().is_cpu() && lse.device().is_cpu() &&
         lse_so_far.dim() == 1 && lse_so_far.is_contiguous() && lse_so_far.size(0) == out_so_far.size(0) &&
         lse_so_far.scalar_type() == out_so_far.scalar_type() && lse.dim() == 1 && lse.size(0) == rows.size(0) &&
         lse.scalar_type() == out_so_far.scalar_type();
}

void merge_round_rows_reference_(const at::Tensor& out_so_far, const at::Tensor& lse_so_far, const at::Tensor& rows,
                                 const at::Tensor& out, const at::Tensor& lse) {
  const MergeWeights weights = merge_weights(lse_so_far, rows, lse);
  auto merged = out_so_far.index_select(0, rows).mul_(weights.keep.unsqueeze(-1));
  merged.addcmul_(out, weights.take.unsqueeze(-1));
  out_so_far.index_copy_(0, rows, merged);
  lse_so_far.index_copy_(0, rows, weights.total);
}

void merge_round_rows_(const at::Tensor& out_so_far, const at::Tensor& lse_so_far, const at::Tensor& rows,
                       const at::Tensor& out, const at::Tensor& lse) {
  if (!merge_round_rows_uses_fused(out_so_far, lse_so_far, rows, out, lse)) {
    merge_round_rows_reference_(out_so_far, lse_so_far, rows, out, lse);
    return;
  }
  const at::Tensor row_index = rows.contiguous(), values = out.contiguous();
  const int64_t n = row_index.size(0), width = out_so_far.size(1);
  const int64_t* index = row_index.const_data_ptr<int64_t>();
  // The weights as the reference computes them; the pass below does the [n, width] part: gather,
  // scale, add and scatter at once.
  const MergeWeights weights = merge_weights(lse_so_far, row_index, lse);
  AT_DISPATCH_FLOATING_TYPES(out_so_far.scalar_type(), "merge_round_rows_", [&] {
    using acc_t = scalar_t;
    acc_t* acc = out_so_far.mutable_data_ptr<acc_t>();
    acc_t* acc_lse = lse_so_far.mutable_data_ptr<acc_t>();
    const acc_t *keep_of = weights.keep.const_data_ptr<acc_t>(), *take_of = weights.take.const_data_ptr<acc_t>();
    const acc_t* total_of = weights.total.const_data_ptr<acc_t>();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, values.scalar_type(), "merge_round_rows_values", [&] {
      const scalar_t* in = values.const_data_ptr<scalar_t>();
      at::parallel_for(0, n, grain_rows(width), [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          const int64_t r = index[i];
          const acc_t keep_i = keep_of[i], take_i = take_of[i];
          acc_t* to = acc + r * width;
          const scalar_t* from = in + i * width;
          for (int64_t j = 0; j < width; ++j) to[j] = to[j] * keep_i + static_cast<acc_t>(from[j]) * take_i;
          acc_lse[r] = total_of[i];
        }
      });
    });
  });
}

bool add_rows_uses_fused(const at::Tensor& sum, const at::Tensor& rows, const at::Tensor& values) {
  return fusable_rows(sum, rows, values);
}

void add_rows_reference_(const at::Tensor& sum, const at::Tensor& rows, const at::Tensor& values) {
  sum.index_add_(0, rows, values.to(sum.scalar_type()));
}

void add_rows_(const at::Tensor& sum, const at::Tensor& rows, const at::Tensor& values) {
  if (!add_rows_uses_fused(sum, rows, values)) {
    add_rows_reference_(sum, rows, values);
    return;
  }
  const at::Tensor row_index = rows.contiguous(), in_values = values.contiguous();
  const int64_t n = row_index.size(0), width = sum.size(1), rows_total = sum.size(0);
  const int64_t* index = row_index.const_data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(sum.scalar_type(), "add_rows_", [&] {
    using acc_t = scalar_t;
    acc_t* to_base = sum.mutable_data_ptr<acc_t>();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, in_values.scalar_type(), "add_rows_values", [&] {
      const scalar_t* in = in_values.const_data_ptr<scalar_t>();
      at::parallel_for(0, n, grain_rows(width), [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          const int64_t r = index[i];
          TORCH_CHECK(r >= 0 && r < rows_total, "add_rows_: row ", r, " out of range [0, ", rows_total, ")");
          acc_t* to = to_base + r * width;
          const scalar_t* from = in + i * width;
          for (int64_t j = 0; j < width; ++j) to[j] += static_cast<acc_t>(from[j]);
        }
      });
    });
  });
}

}  // namespace longgan::kernels

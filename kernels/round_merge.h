#pragma once
// SMYRF's online merge of its hash rounds, one kernel call's rows at a time, on the CPU as one
// parallel pass over the rows: the ATen spelling (the reference below) takes eleven ops, each a
// pass over the call's rows with its own temporaries, which cost as much as a third of the
// attention kernel's time at 64x64 (bench/RESULTS.md). Other devices and dtypes take the reference.
#include <ATen/ATen.h>

namespace longgan::kernels {

// For every i, with r = rows[i], a = lse_so_far[r], b = lse[i], t = logaddexp(a, b):
//   out_so_far[r] = out_so_far[r] * exp(a - t) + out[i] * exp(b - t),   lse_so_far[r] = t.
// out_so_far [rows, width] and lse_so_far [rows]: the running merge, contiguous, float or double
// (the accumulate type); rows [n] int64, distinct; out [n, width] of any floating dtype; lse [n]
// of the accumulate type. The weights come from the reference's own ATen ops on [n] vectors; the
// fused pass does the [n, width] gather, multiply-add and scatter, which may round once more per
// element than ATen's vectorised addcmul (which can fuse the multiply-add): a unit in the last place.
void merge_round_rows_(const at::Tensor& out_so_far, const at::Tensor& lse_so_far, const at::Tensor& rows,
                       const at::Tensor& out, const at::Tensor& lse);
void merge_round_rows_reference_(const at::Tensor& out_so_far, const at::Tensor& lse_so_far, const at::Tensor& rows,
                                 const at::Tensor& out, const at::Tensor& lse);
bool merge_round_rows_uses_fused(const at::Tensor& out_so_far, const at::Tensor& lse_so_far, const at::Tensor& rows,
                                 const at::Tensor& out, const at::Tensor& lse);

// sum[rows[i]] += values[i] (converted to sum's dtype), rows distinct: the backward's sum of each
// round's gradients. The fused pass splits the rows over threads (distinct rows allow it) and does
// the reference's additions (at::index_add_ of values converted to sum's dtype, without the copy).
void add_rows_(const at::Tensor& sum, const at::Tensor& rows, const at::Tensor& values);
void add_rows_reference_(const at::Tensor& sum, const at::Tensor& rows, const at::Tensor& values);
bool add_rows_uses_fused(const at::Tensor& sum, const at::Tensor& rows, const at::Tensor& values);

}  // namespace longgan::kernels

#pragma once
// The glue of the fused paths: queries, keys and values of a [B, H, L, D] input seen as one table
// of B*H*L rows, gathered by row indices into batches of independent exact-attention problems
// for one call of a fused kernel (kernels/fused_attention.h), and scattered back. The same code
// runs on the CPU and on CUDA; only the kernel differs.
#include <ATen/ATen.h>

#include "attention/call_options.h"
#include "kernels/fused_attention.h"

namespace longgan::attention {

// The kernel the fused path of `type` uses for this call (Backend::Auto, Fused, FusedMath);
// std::invalid_argument for Backend::Fused when no library kernel serves q's device and dtype.
kernels::FusedKernel fused_kernel_for_call(const CallOptions& call, const at::Tensor& q, const char* type);

// A [B, H, L, D] tensor as its [B*H*L, D] table of rows (a view where the layout allows).
at::Tensor row_table(const at::Tensor& t);

// Per-(b, h) positions `index` [B, H, ..., L] (values in [0, length)) as rows of the table:
// index + (b * H + h) * length.
at::Tensor table_rows(const at::Tensor& index, int64_t length);

// Rows `rows` [P, L] of `table` [R, D] as a batch of P problems of one head: [P, 1, L, D].
at::Tensor gather_problems(const at::Tensor& table, const at::Tensor& rows);

// Exact attention of gathered problems, differentiable in q, k and v (the kernel's own backward):
// problem p attends its queries query_rows[p] [P, Lq] to its keys key_rows[p] [P, Lk]. A query row
// appears in at most one problem; the value q_table.size(0) marks an empty slot (padding, dropped).
// Returns [Rq, Dv] in the inputs' dtype; rows in no problem get zeros.
at::Tensor gathered_attention(const at::Tensor& q_table, const at::Tensor& k_table, const at::Tensor& v_table,
                              const at::Tensor& query_rows, const at::Tensor& key_rows, double scale,
                              kernels::FusedKernel kernel);

}  // namespace longgan::attention

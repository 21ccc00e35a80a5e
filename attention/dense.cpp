#include "attention/dense.h"

#include <algorithm>

namespace longgan::attention {
namespace {

// Logits of one chunk stay below this many fp32 values (64 MiB).
constexpr int64_t kChunkLogits = int64_t{16} << 20;

bool fits_sdpa(const at::Tensor& q, const at::Tensor& v) {
  // ATen's fused kernels need a CUDA tensor and equal q/v head widths of a supported size.
  return q.is_cuda() && q.size(3) == v.size(3) && q.size(3) % 8 == 0 && q.size(3) <= 256 &&
         (q.scalar_type() == at::kFloat || q.scalar_type() == at::kBFloat16 || q.scalar_type() == at::kHalf);
}

}  // namespace

at::Tensor dense_attention_naive(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale) {
  const auto dtype = compute_dtype(q);
  auto logits = at::matmul(q.to(dtype), k.to(dtype).transpose(-2, -1)) * scale;
  return at::matmul(at::softmax(logits, -1), v.to(dtype)).to(q.scalar_type());
}

at::Tensor dense_attention_chunked(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale,
                                   int64_t chunk) {
  TORCH_CHECK(chunk > 0, "dense_attention_chunked: chunk must be positive");
  const auto dtype = compute_dtype(q);
  auto kf = k.to(dtype).transpose(-2, -1);
  auto vf = v.to(dtype);
  std::vector<at::Tensor> outputs;
  for (int64_t start = 0; start < q.size(2); start += chunk) {
    auto qc = q.narrow(2, start, std::min(chunk, q.size(2) - start)).to(dtype);
    // softmax is max-subtracted internally: exact and stable per row.
    outputs.push_back(at::matmul(at::softmax(at::matmul(qc, kf) * scale, -1), vf));
  }
  return at::cat(outputs, 2).to(q.scalar_type());
}

at::Tensor dense_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const DenseOptions& /*options*/, const CallOptions& call) {
  double scale = resolve_scale(call, q.size(3));
  if (fits_sdpa(q, v)) {
    return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0, /*is_causal=*/false,
                                            scale);
  }
  int64_t rows_per_chunk = std::max<int64_t>(1, kChunkLogits / std::max<int64_t>(1, q.size(0) * q.size(1) * k.size(2)));
  if (rows_per_chunk >= q.size(2)) return dense_attention_naive(q, k, v, scale);
  return dense_attention_chunked(q, k, v, scale, rows_per_chunk);
}

}  // namespace longgan::attention

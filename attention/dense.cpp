#include "attention/dense.h"

#include "attention/call_profile.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

namespace longgan::attention {
namespace {

// Logits of one chunk stay below this many fp32 values (64 MiB).
constexpr int64_t kChunkLogits = int64_t{16} << 20;

constexpr int64_t kSdpaMath = 0;

// CUDA's memory-efficient and flash kernels want head widths in multiples of 8 elements.
constexpr int64_t kCudaWidthMultiple = 8;

// SDPA's backend for q, k, v (at::SDPBackend as an integer); 0 is its materializing math path.
int64_t sdpa_choice(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale) {
  return at::_fused_sdp_choice(q, k, v, /*attn_mask=*/{}, 0.0, false, scale);
}

// What SDPA is given for q, k, v: each with its last dimension contiguous (the fused kernels need
// stride 1 there; other strides are taken as they are), on the CPU zero-padded to one head width
// (its flash kernel needs it), on CUDA padded to multiples of 8 where only that makes a fused kernel
// take them. Zero columns change no logit and no output column that is kept.
struct SdpaInputs {
  at::Tensor q, k, v;
  int64_t choice = kSdpaMath;
};
SdpaInputs sdpa_inputs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale) {
  auto unit_stride = [](const at::Tensor& t) { return t.stride(-1) == 1 ? t : t.contiguous(); };
  auto pad = [](const at::Tensor& t, int64_t width) {
    return t.size(3) == width ? t : at::constant_pad_nd(t, {0, width - t.size(3)});
  };
  if (q.is_cpu()) {
    const int64_t width = std::max(q.size(3), v.size(3));
    SdpaInputs in{unit_stride(pad(q, width)), unit_stride(pad(k, width)), unit_stride(pad(v, width))};
    in.choice = sdpa_choice(in.q, in.k, in.v, scale);
    return in;
  }
  SdpaInputs in{unit_stride(q), unit_stride(k), unit_stride(v)};
  in.choice = sdpa_choice(in.q, in.k, in.v, scale);
  if (in.choice != kSdpaMath) return in;
  auto round_up = [](int64_t x) { return (x + kCudaWidthMultiple - 1) / kCudaWidthMultiple * kCudaWidthMultiple; };
  const int64_t dqk = round_up(q.size(3)), dv = round_up(v.size(3));
  SdpaInputs padded{pad(in.q, dqk), pad(in.k, dqk), pad(in.v, dv)};
  padded.choice = sdpa_choice(padded.q, padded.k, padded.v, scale);
  return padded.choice == kSdpaMath ? in : padded;
}

std::string backend_label(const SdpaInputs& in, const at::Tensor& q, const at::Tensor& v) {
  std::string name;
  switch (in.choice) {
    case 1: name = "flash"; break;
    case 2: name = "efficient"; break;
    case 3: name = "cudnn"; break;
    case 4: name = "overrideable"; break;
    default: return "chunked";
  }
  if (in.q.size(3) != q.size(3) || in.v.size(3) != v.size(3)) {
    name += " (padded to " + std::to_string(in.q.size(3)) +
            (in.q.size(3) == in.v.size(3) ? "" : "/" + std::to_string(in.v.size(3))) + ")";
  }
  return name;
}


// Chunks of at most kChunkLogits logits; a single chunk is the naive formula.
at::Tensor chunked_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale) {
  int64_t rows_per_chunk =
      std::max<int64_t>(1, kChunkLogits / std::max<int64_t>(1, q.size(0) * q.size(1) * k.size(2)));
  if (rows_per_chunk >= q.size(2)) return dense_attention_naive(q, k, v, scale);
  return dense_attention_chunked(q, k, v, scale, rows_per_chunk);
}

}  // namespace

at::Tensor dense_attention_naive(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale) {
  const auto dtype = compute_dtype(q);
  auto logits = at::matmul(q.to(dtype), k.to(dtype).transpose(-2, -1)) * scale;
  return at::matmul(at::softmax(logits, -1), v.to(dtype)).to(q.scalar_type());
}

at::Tensor dense_attention_chunked(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale,
                                   int64_t chunk) {
  if (chunk < 1) {
    throw std::invalid_argument("dense_attention_chunked: chunk must be >= 1, got " + std::to_string(chunk));
  }
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
  const double scale = resolve_scale(call, q.size(3));
  if (call.backend == Backend::Reference || call.backend == Backend::FusedMath) {
    record_implementation("aten chunked");
    PhaseTimer phase(kPhaseKernel);
    return chunked_reference(q, k, v, scale);
  }
  SdpaInputs in;
  {
    PhaseTimer phase(kPhaseGather);
    in = sdpa_inputs(q, k, v, scale);
  }
  if (in.choice == kSdpaMath) {
    if (call.backend == Backend::Fused) {
      throw std::invalid_argument("attention dense: backend=fused but no fused SDPA kernel takes " +
                                  std::string(c10::toString(q.scalar_type())) + " inputs on " + q.device().str() +
                                  "; use backend=auto (chunked exact path) or backend=reference");
    }
    record_implementation("aten chunked");
    PhaseTimer phase(kPhaseKernel);
    return chunked_reference(q, k, v, scale);
  }
  record_implementation("sdpa " + backend_label(in, q, v));
  at::Tensor out;
  {
    PhaseTimer phase(kPhaseKernel);
    out = at::scaled_dot_product_attention(in.q, in.k, in.v, /*attn_mask=*/{}, /*dropout_p=*/0.0,
                                           /*is_causal=*/false, scale);
  }
  return out.size(3) == v.size(3) ? out : out.narrow(3, 0, v.size(3));
}

std::string dense_backend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  return backend_label(sdpa_inputs(q, k, v, resolve_scale({}, q.size(3))), q, v);
}

}  // namespace longgan::attention

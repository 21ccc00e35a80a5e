#pragma once
// What every attention call takes besides q, k, v and the type's own options.
#include <ATen/ATen.h>

#include <optional>
#include <string_view>

namespace longgan::attention {

// Which implementation runs.
//   Auto: the fused path (hashing/clustering in ATen, clusters gathered into batches for LibTorch's
//         fused attention kernel of the device: CPU flash, CUDA memory-efficient), with the plain-ATen
//         kernel where no library kernel serves the dtype (CUDA fp64); types without a fused path
//         (combiner_axial) run their reference.
//   Reference: the plain-ATen specification of the type (the test oracle).
//   Fused: the fused path on the library kernel; std::invalid_argument where there is none.
//   FusedMath: the fused path's gathering and merging with the plain-ATen kernel (tests the glue).
enum class Backend { Auto, Reference, Fused, FusedMath };

// "auto", "reference", "fused", "fused_math"; parse_backend throws std::invalid_argument naming them.
const char* backend_name(Backend backend);
Backend parse_backend(std::string_view name);

// A 2-D layout of a token sequence (row-major). Zero height/width: infer a square grid.
struct Grid {
  int64_t height = 0;
  int64_t width = 0;
};

struct CallOptions {
  // Softmax scale; default 1/sqrt(Dqk).
  std::optional<double> scale;
  Backend backend = Backend::Auto;
  // Source of the random projections / hyperplanes of the hashing types. They are always
  // drawn on the CPU and moved to the input's device, so the CPU reference and the CUDA
  // kernel see the same hashes for the same generator state. Default: the global CPU generator.
  std::optional<at::Generator> generator;
  // Token layouts, used by combiner_axial (queries may be on a finer grid than pooled keys).
  Grid query_grid;
  Grid key_grid;
};

// The dtype the references compute in: float64 for float64 inputs (gradient checks), else
// float32 (softmax statistics of bf16/fp16 inputs are always accumulated in fp32).
inline at::ScalarType compute_dtype(const at::Tensor& t) {
  return t.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

// The scale a call uses for queries of width dqk.
double resolve_scale(const CallOptions& call, int64_t dqk);

// The generator a call draws from (the given one or the global CPU generator).
at::Generator resolve_generator(const CallOptions& call);

// The grid of `length` tokens: the given one (checked), or the square one (error if none).
Grid resolve_grid(const Grid& grid, int64_t length, const char* what);

}  // namespace longgan::attention

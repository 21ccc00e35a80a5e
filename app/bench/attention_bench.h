#pragma once
// Measures attention types against dense in one run: time (forward, forward+backward),
// peak memory and error vs dense, on random or recorded q/k/v.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "app/bench/bench_timing.h"
#include "attention/attention.h"

namespace longgan::app {

struct AttentionBenchCase {
  std::string label;  // as the user wrote it: "smyrf" or "smyrf:hashes=2,..."
  std::optional<attention::AttentionSpec> spec;  // unset: the type's defaults for the length
  std::string type;
  attention::Backend backend = attention::Backend::Auto;
};

struct AttentionBenchInputs {
  at::Tensor q, k, v;  // [B, H, N, Dqk], [B, H, M, Dqk], [B, H, M, Dv]
  std::string source;  // "structured", "random" or the file
  // Token layouts for combiner_axial (zero: square grids inferred; others need none).
  attention::Grid query_grid, key_grid;
};

struct AttentionBenchSettings {
  int warmup = 2;
  int repeats = 5;
  bool backward = true;
};

struct AttentionBenchRow : BenchMeasurement {
  std::string type, spec, backend;
  std::string kernel;  // what the call ran: "sdpa flash (padded to 64)", "fused cpu_flash", "aten reference", ...
  std::string dtype;   // of the inputs that ran: "fp32", "bf16", ...
  int64_t batch = 0, heads = 0, n = 0, m = 0, dqk = 0, dv = 0;
};

// The spec a bare type name gets at these lengths: the budget a user would pick
// (smyrf: 4 hashes, up to 2048 queries per cluster and at least 8 clusters; clustered: 100
// clusters; improved_clustered: + top-32), always valid for (n, m).
attention::AttentionSpec default_bench_spec(const std::string& type, int64_t n, int64_t m);

// Generated inputs (fixed seed) of the given shape: "structured" (tokens around 32 shared centres,
// attention::structured_inputs, so the error column means something) or "random" (plain normal).
AttentionBenchInputs generated_bench_inputs(const std::string& kind, int64_t batch, int64_t heads, int64_t n, int64_t m,
                                            int64_t dqk, int64_t dv, at::Device device, at::ScalarType dtype);
// "fp32", "bf16", "fp16", "fp64" (else the ATen name).
std::string dtype_label(at::ScalarType type);
// The grid of "HxW" (std::invalid_argument naming `option` and the expected form).
attention::Grid parse_grid(const std::string& text, const std::string& option);
// Key grid for pooled keys: the query grid when M == N, halved per side when M == N / 4.
attention::Grid derived_key_grid(const attention::Grid& query_grid, int64_t n, int64_t m);

// q, k, v from a file written by Python torch.save({'q':..,'k':..,'v':..}) or torch::pickle_save.
AttentionBenchInputs load_bench_inputs(const std::string& path, at::Device device,
                                       std::optional<at::ScalarType> dtype);

// Runs dense first (the baseline), then every case; failures are recorded per row, not thrown.
std::vector<AttentionBenchRow> run_attention_bench(const std::vector<AttentionBenchCase>& cases,
                                                   const AttentionBenchInputs& inputs,
                                                   const AttentionBenchSettings& settings);

std::string format_bench_table(const std::vector<AttentionBenchRow>& rows);
// Per row, the phases of the forward and of the forward+backward (--phases).
std::string format_bench_phases(const std::vector<AttentionBenchRow>& rows);
nlohmann::json bench_rows_to_json(const std::vector<AttentionBenchRow>& rows);

}  // namespace longgan::app

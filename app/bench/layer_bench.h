#pragma once
// longgan bench layer: G's self-attention block as training runs it (spectrally normalized 1x1
// projections, key pooling, heads, output projection, gamma; CUDA under bf16 autocast), one row
// per attention type against the dense block in the same run: time, peak memory, the kernel the
// attention call actually ran, and where the time goes (phases).
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "app/bench/bench_timing.h"
#include "attention/attention.h"

namespace longgan::app {

struct LayerBenchSettings {
  at::Device device = at::kCPU;
  int64_t resolution = 128;  // side of the feature map the block sees: N = resolution^2 queries
  int64_t channels = 64;     // the block's input channels (Dqk = C/8, Dv = C/2 per head)
  int64_t batch = 8;
  int64_t heads = 1;
  bool key_pool = true;
  // Autocast dtype of the run: kBFloat16 (autocast on, the trainer's CUDA default) or kFloat (off).
  at::ScalarType autocast = at::kFloat;
  int warmup = 2;
  int repeats = 5;
  bool backward = true;
};

struct LayerBenchCase {
  std::string label;            // as the user wrote it
  attention::AttentionSpec spec;  // bare type names are fitted by the block, as in training
};

struct LayerBenchRow : BenchMeasurement {
  std::string type, spec, kernel, dtype;
  int64_t batch = 0, channels = 0, resolution = 0, n = 0, m = 0, dqk = 0, dv = 0, heads = 0;
  // relative_error: of the attention branch gamma * o(attn) against the dense block's.
};

// The channels of G's attention block at the top of a G of `resolution` with channel multiplier
// `ch` (the last block's output channels); std::invalid_argument for unsupported resolutions.
int64_t generator_attention_channels(int64_t resolution, int64_t ch);

// Dense first (the baseline), then every case, on one block whose weights every case shares (the
// attention type is configuration). Failures are recorded per row, not thrown.
std::vector<LayerBenchRow> run_layer_bench(const std::vector<LayerBenchCase>& cases,
                                           const LayerBenchSettings& settings);

std::string format_layer_table(const std::vector<LayerBenchRow>& rows);
std::string format_layer_phases(const std::vector<LayerBenchRow>& rows);
nlohmann::json layer_rows_to_json(const std::vector<LayerBenchRow>& rows);

}  // namespace longgan::app

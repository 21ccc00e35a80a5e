#pragma once
// What the benchmarks share: timing by the median of repeats, the peak memory of one call, and
// the phases of the attention calls (attention/call_profile.h) of one profiled run.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "attention/call_profile.h"

namespace longgan::app {

struct TimingSettings {
  int warmup = 2;
  int repeats = 5;
};

// What one row of a benchmark measured (the rows of bench attention and bench layer extend it).
struct BenchMeasurement {
  double forward_ms = 0, forward_backward_ms = 0;        // medians; backward skipped: 0
  double forward_ratio = 0, forward_backward_ratio = 0;  // time / the first row's (dense) in this run
  std::optional<double> peak_mb;                         // CUDA: allocator peak; CPU: peak RSS growth
  double relative_error = 0;                             // ||out - dense|| / ||dense||
  // Phases of one profiled run each (profile_phases): ms per phase, "other" and "total".
  std::map<std::string, double> forward_phases, forward_backward_phases;
  std::string error;                                     // non-empty: the row failed with this message
};

// Sets every row's ratios to the first row's times (the dense baseline of the run).
template <class Row>
void set_ratios_to_first(std::vector<Row>& rows) {
  if (rows.empty()) return;
  const BenchMeasurement first = rows.front();
  for (BenchMeasurement& row : rows) {
    if (first.forward_ms > 0) row.forward_ratio = row.forward_ms / first.forward_ms;
    if (first.forward_backward_ms > 0) row.forward_backward_ratio = row.forward_backward_ms / first.forward_backward_ms;
  }
}

// The measured columns of a table row: "fwd ms, x dense, fwd+bwd ms, x dense, peak MiB, rel err",
// or "failed: <error>"; and their header.
std::string measurement_header();
std::string measurement_columns(const BenchMeasurement& m);

// The measurement as JSON fields ({"error": ...} for a failed row).
nlohmann::json measurement_json(const BenchMeasurement& m);

// The median of `values` (0 for none).
double median(std::vector<double> values);
// Milliseconds since `start`.
double elapsed_ms(std::chrono::steady_clock::time_point start);

// Waits for the device's queued work (CUDA); nothing on the CPU.
void synchronize(const at::Device& device);

// Milliseconds of `work`: the median of `repeats` runs after `warmup` untimed ones.
double time_ms(const at::Device& device, const TimingSettings& settings, const std::function<void()>& work);

// Peak memory of one run of `work` in MiB above what was in use before it. CUDA: the caching
// allocator's peak. CPU: growth of the resident set's high-water mark (large blocks from fresh
// mappings from then on, so call it after the timings); unset where it cannot be read.
std::optional<double> peak_mb(const at::Device& device, const std::function<void()>& work);

// One run of `work` with the attention calls' phases recorded (synchronized on CUDA). `phases`
// gets each phase's milliseconds, "other" (the rest of the run) and "total"; returns what computed
// the first attention call ("" when none ran).
std::string profile_phases(const at::Device& device, const std::function<void()>& work,
                           std::map<std::string, double>& phases);

// "hash 1.20 (12%), gather 0.40 (4%), ..., other 3.00 (30%) of 10.00 ms" in phase order.
std::string format_phases(const std::map<std::string, double>& phases);

}  // namespace longgan::app

#include "app/bench/bench_timing.h"

#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <vector>

#include <malloc.h>

#include "longgan/build_config.h"

#if LONGGAN_HAVE_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace longgan::app {

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : 0.5 * (values[mid - 1] + values[mid]);
}

double elapsed_ms(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

namespace {

std::optional<int64_t> read_status_kib(const char* field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field, 0) == 0) return std::stoll(line.substr(std::string(field).size()));
  }
  return std::nullopt;
}

}  // namespace

void synchronize(const at::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

double time_ms(const at::Device& device, const TimingSettings& settings, const std::function<void()>& work) {
  for (int i = 0; i < settings.warmup; ++i) work();
  synchronize(device);
  std::vector<double> times;
  for (int i = 0; i < std::max(1, settings.repeats); ++i) {
    auto start = std::chrono::steady_clock::now();
    work();
    synchronize(device);
    times.push_back(elapsed_ms(start));
  }
  return median(times);
}

std::optional<double> peak_mb(const at::Device& device, const std::function<void()>& work) {
#if LONGGAN_HAVE_CUDA
  if (device.is_cuda()) {
    namespace alloc = c10::cuda::CUDACachingAllocator;
    synchronize(device);
    auto index = device.index() < 0 ? 0 : device.index();
    alloc::resetPeakStats(index);
    int64_t before = alloc::getDeviceStats(index).allocated_bytes[0].current;
    work();
    synchronize(device);
    int64_t peak = alloc::getDeviceStats(index).allocated_bytes[0].peak;
    return static_cast<double>(peak - before) / (1024.0 * 1024.0);
  }
#endif
  if (device.is_cpu()) {
    // Large tensors must come from fresh mappings for the resident set to show them: a fixed
    // mmap threshold stops glibc from recycling freed tensor memory inside its heap.
    static const bool fixed_threshold = mallopt(M_MMAP_THRESHOLD, 256 * 1024) == 1;
    if (!fixed_threshold) return std::nullopt;
    malloc_trim(0);
    std::ofstream reset("/proc/self/clear_refs");
    if (!(reset << "5" << std::flush)) return std::nullopt;
    reset.close();
    auto before = read_status_kib("VmRSS:");
    work();
    auto peak = read_status_kib("VmHWM:");
    if (!before || !peak) return std::nullopt;
    return static_cast<double>(std::max<int64_t>(0, *peak - *before)) / 1024.0;
  }
  return std::nullopt;
}

std::string profile_phases(const at::Device& device, const std::function<void()>& work,
                           std::map<std::string, double>& phases) {
  attention::CallProfile profile;
  if (device.is_cuda()) profile.synchronize = [device] { synchronize(device); };
  synchronize(device);
  auto start = std::chrono::steady_clock::now();
  {
    const attention::ScopedCallProfile recording(profile);
    work();
    synchronize(device);
  }
  const double total = elapsed_ms(start);
  phases = profile.milliseconds;
  double inside = 0;
  for (const auto& [name, ms] : phases) inside += ms;
  phases["other"] = std::max(0.0, total - inside);
  phases["total"] = total;
  return profile.implementations.empty() ? "" : profile.implementations.front();
}

std::string measurement_header() {
  std::ostringstream out;
  out << std::right << std::setw(11) << "fwd ms" << std::setw(8) << "x dense" << std::setw(12) << "fwd+bwd ms"
      << std::setw(8) << "x dense" << std::setw(10) << "peak MiB" << std::setw(10) << "rel err";
  return out.str();
}

std::string measurement_columns(const BenchMeasurement& m) {
  if (!m.error.empty()) return "  failed: " + m.error;
  std::ostringstream out;
  out << std::right << std::fixed << std::setprecision(2) << std::setw(11) << m.forward_ms << std::setw(8)
      << m.forward_ratio << std::setw(12) << m.forward_backward_ms << std::setw(8) << m.forward_backward_ratio
      << std::setw(10);
  if (m.peak_mb) out << std::setprecision(1) << *m.peak_mb; else out << "n/a";
  out << std::setprecision(4) << std::setw(10) << m.relative_error;
  return out.str();
}

nlohmann::json measurement_json(const BenchMeasurement& m) {
  if (!m.error.empty()) return {{"error", m.error}};
  return {{"forward_ms", m.forward_ms},
          {"forward_backward_ms", m.forward_backward_ms},
          {"forward_ratio_to_dense", m.forward_ratio},
          {"forward_backward_ratio_to_dense", m.forward_backward_ratio},
          {"relative_error_vs_dense", m.relative_error},
          {"peak_mib", m.peak_mb ? nlohmann::json(*m.peak_mb) : nlohmann::json(nullptr)},
          {"forward_phases_ms", m.forward_phases},
          {"forward_backward_phases_ms", m.forward_backward_phases}};
}

std::string format_phases(const std::map<std::string, double>& phases) {
  auto total = phases.find("total");
  if (total == phases.end() || total->second <= 0) return "";
  std::vector<std::string> order = attention::phase_names();
  order.push_back("other");
  std::string text;
  char buffer[96];
  for (const auto& name : order) {
    auto it = phases.find(name);
    if (it == phases.end()) continue;
    std::snprintf(buffer, sizeof(buffer), "%s%s %.2f (%.0f%%)", text.empty() ? "" : ", ", name.c_str(), it->second,
                  100.0 * it->second / total->second);
    text += buffer;
  }
  std::snprintf(buffer, sizeof(buffer), " of %.2f ms", total->second);
  return text + buffer;
}

}  // namespace longgan::app

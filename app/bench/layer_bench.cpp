#include "app/bench/layer_bench.h"

#include <ATen/autocast_mode.h>
#include <ATen/CPUGeneratorImpl.h>

#include <iomanip>
#include <sstream>

#include "app/bench/attention_bench.h"
#include "app/bench/bench_timing.h"
#include "gan/model_config.h"
#include "gan/self_attention.h"

namespace longgan::app {
namespace {

// The trainer's autocast around G and D for the scope: `dtype` bf16 turns it on for the device
// (CUDA as training does; on the CPU the same thing for measurement), fp32 leaves it off.
class BenchAutocast {
 public:
  BenchAutocast(const at::Device& device, at::ScalarType dtype)
      : type_(device.is_cuda() ? at::kCUDA : at::kCPU), active_(dtype != at::kFloat) {
    if (!active_) return;
    was_enabled_ = at::autocast::is_autocast_enabled(type_);
    old_dtype_ = at::autocast::get_autocast_dtype(type_);
    at::autocast::set_autocast_enabled(type_, true);
    at::autocast::set_autocast_dtype(type_, dtype);
    at::autocast::increment_nesting();
  }
  ~BenchAutocast() {
    if (!active_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(type_, was_enabled_);
    at::autocast::set_autocast_dtype(type_, old_dtype_);
  }
  BenchAutocast(const BenchAutocast&) = delete;
  BenchAutocast& operator=(const BenchAutocast&) = delete;

 private:
  at::DeviceType type_;
  bool active_;
  bool was_enabled_ = false;
  at::ScalarType old_dtype_ = at::kBFloat16;
};

// One block, one input and one output gradient for every case; the type is switched per case.
struct LayerCalls {
  const LayerBenchSettings& settings;
  gan::SelfAttention block;
  at::Tensor x, grad;

  explicit LayerCalls(const LayerBenchSettings& s)
      : settings(s),
        block(gan::SelfAttention(s.channels, attention::DenseOptions{}, s.key_pool, s.heads, s.resolution)) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
    const auto fp32 = at::TensorOptions().dtype(at::kFloat);
    x = at::randn({s.batch, s.channels, s.resolution, s.resolution}, gen, fp32).to(s.device);
    grad = at::randn({s.batch, s.channels, s.resolution, s.resolution}, gen, fp32).to(s.device);
    block->to(s.device);
    torch::NoGradGuard no_grad;
    block->gamma.fill_(1.0);  // the attention branch counts in the output (it starts at 0 in training)
  }
  void use(const attention::AttentionSpec& spec) {
    block->set_attention(spec);
    // The same hashes in every repeat.
    block->set_generator(at::make_generator<at::CPUGeneratorImpl>(1234));
  }
  // The attention branch gamma * o(attn) of the block in eval mode (no power iteration), fp32.
  at::Tensor branch() {
    torch::NoGradGuard no_grad;
    block->eval();
    BenchAutocast autocast(settings.device, settings.autocast);
    auto out = block->forward(x).to(at::kFloat) - x;
    block->train();
    return out;
  }
  // As the trainer runs G: training mode (one power iteration per spectral norm per call).
  void forward() {
    torch::NoGradGuard no_grad;
    BenchAutocast autocast(settings.device, settings.autocast);
    block->forward(x);
  }
  void forward_backward() {
    auto input = x.detach().requires_grad_(true);
    at::Tensor out;
    {
      BenchAutocast autocast(settings.device, settings.autocast);
      out = block->forward(input);
    }
    out.backward(grad);
    block->zero_grad();
  }
};

LayerBenchRow describe(const LayerBenchSettings& s, const gan::SelfAttention& block) {
  LayerBenchRow row;
  row.type = attention::type_name(block->attention_spec());
  row.spec = attention::to_string(block->attention_spec());
  row.dtype = s.autocast == at::kFloat ? "fp32" : dtype_label(s.autocast) + " autocast";
  row.batch = s.batch, row.channels = s.channels, row.resolution = s.resolution, row.heads = s.heads;
  row.n = s.resolution * s.resolution;
  row.m = s.key_pool ? (s.resolution / 2) * (s.resolution / 2) : row.n;
  row.dqk = s.channels / 8 / s.heads, row.dv = s.channels / 2 / s.heads;
  return row;
}

// The row of a case with its error against the dense branch (before any timing: the timed calls
// run in training mode and move the spectral norms' u).
LayerBenchRow describe_case(LayerCalls& calls, const LayerBenchCase& c, const at::Tensor& dense_branch) {
  LayerBenchRow row;
  row.type = attention::type_name(c.spec);
  row.spec = c.label;
  try {
    calls.use(c.spec);
    row = describe(calls.settings, calls.block);
    row.relative_error = (calls.branch() - dense_branch).norm().item<double>() / dense_branch.norm().item<double>();
  } catch (const std::exception& e) {
    row.error = e.what();
  }
  return row;
}

void measure(LayerCalls& calls, const LayerBenchCase& c, LayerBenchRow& row) {
  if (!row.error.empty()) return;
  const auto& s = calls.settings;
  try {
    calls.use(c.spec);
    const TimingSettings timing{s.warmup, s.repeats};
    row.forward_ms = time_ms(s.device, timing, [&] { calls.forward(); });
    if (s.backward) row.forward_backward_ms = time_ms(s.device, timing, [&] { calls.forward_backward(); });
    row.kernel = profile_phases(s.device, [&] { calls.forward(); }, row.forward_phases);
    if (s.backward) profile_phases(s.device, [&] { calls.forward_backward(); }, row.forward_backward_phases);
  } catch (const std::exception& e) {
    row.error = e.what();
  }
}

}  // namespace

int64_t generator_attention_channels(int64_t resolution, int64_t ch) {
  gan::ModelConfig config = gan::ModelConfig::preset(resolution);
  config.ch = ch;
  return gan::generator_plan(config).back().out_channels;
}

std::vector<LayerBenchRow> run_layer_bench(const std::vector<LayerBenchCase>& cases,
                                           const LayerBenchSettings& settings) {
  LayerCalls calls(settings);
  std::vector<LayerBenchCase> measured = {{"dense", attention::DenseOptions{}}};
  for (const auto& c : cases) {
    if (!std::holds_alternative<attention::DenseOptions>(c.spec)) measured.push_back(c);
  }
  calls.use(attention::DenseOptions{});
  const at::Tensor dense_branch = calls.branch();
  std::vector<LayerBenchRow> rows;
  for (const auto& c : measured) rows.push_back(describe_case(calls, c, dense_branch));
  for (size_t i = 0; i < measured.size(); ++i) measure(calls, measured[i], rows[i]);
  // Peak memory after every timing: on the CPU it switches the allocator to fresh mappings.
  for (size_t i = 0; i < measured.size(); ++i) {
    if (!rows[i].error.empty()) continue;
    calls.use(measured[i].spec);
    rows[i].peak_mb = peak_mb(settings.device, [&] {
      if (settings.backward) calls.forward_backward(); else calls.forward();
    });
  }
  set_ratios_to_first(rows);
  return rows;
}

std::string format_layer_table(const std::vector<LayerBenchRow>& rows) {
  std::ostringstream out;
  out << std::left << std::setw(20) << "type" << measurement_header() << "  kernel; spec\n";
  for (const auto& r : rows) {
    out << std::left << std::setw(20) << r.type << measurement_columns(r);
    out << (r.error.empty() ? "  " + r.kernel + "; " + r.spec : "") << "\n";
  }
  return out.str();
}

std::string format_layer_phases(const std::vector<LayerBenchRow>& rows) {
  std::ostringstream out;
  for (const auto& r : rows) {
    if (!r.error.empty()) continue;
    out << r.type << ", forward: " << format_phases(r.forward_phases) << "\n";
    if (!r.forward_backward_phases.empty()) {
      out << r.type << ", forward+backward: " << format_phases(r.forward_backward_phases) << "\n";
    }
  }
  return out.str();
}

nlohmann::json layer_rows_to_json(const std::vector<LayerBenchRow>& rows) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : rows) {
    nlohmann::json j = {{"type", r.type},   {"spec", r.spec},       {"kernel", r.kernel},
                        {"dtype", r.dtype}, {"batch", r.batch},     {"channels", r.channels},
                        {"heads", r.heads}, {"resolution", r.resolution}, {"n", r.n},
                        {"m", r.m},         {"dqk", r.dqk},         {"dv", r.dv}};
    j.update(measurement_json(r));
    out.push_back(j);
  }
  return out;
}

}  // namespace longgan::app

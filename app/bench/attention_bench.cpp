#include "app/bench/attention_bench.h"

#include <torch/serialize.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <stdexcept>

#include "app/bench/bench_timing.h"
#include "attention/structured_inputs.h"

namespace longgan::app {
namespace {

using attention::Backend;

struct Prepared {
  attention::AttentionSpec spec;
  attention::CallOptions call;
};

Prepared prepare(const AttentionBenchCase& c, const AttentionBenchInputs& in) {
  int64_t n = in.q.size(2), m = in.k.size(2);
  Prepared p{c.spec ? *c.spec : default_bench_spec(c.type, n, m), {}};
  p.call.backend = c.backend;
  // Only combiner_axial reads grids; the others take any lengths.
  if (std::holds_alternative<attention::CombinerAxialOptions>(p.spec)) {
    p.call.query_grid = attention::resolve_grid(in.query_grid, n, "--grid: query");
    p.call.key_grid = attention::resolve_grid(in.key_grid, m, "--key-grid: key");
  }
  return p;
}

// The two calls a case is timed with: forward alone, and forward + backward into leaf copies of
// the inputs. A fixed generator per call: every repeat (and every backend) sees the same hashes.
struct CaseCalls {
  Prepared prepared;
  at::Tensor q, k, v, grad;

  CaseCalls(const AttentionBenchCase& c, const AttentionBenchInputs& in) : prepared(prepare(c, in)) {
    q = in.q.detach().clone().requires_grad_(true);
    k = in.k.detach().clone().requires_grad_(true);
    v = in.v.detach().clone().requires_grad_(true);
    grad = at::ones({in.q.size(0), in.q.size(1), in.q.size(2), in.v.size(3)}, in.v.options());
  }
  at::Tensor forward() {
    at::NoGradGuard no_grad;
    prepared.call.generator = at::make_generator<at::CPUGeneratorImpl>(1234);
    return attention::attend(prepared.spec, q, k, v, prepared.call);
  }
  void forward_backward() {
    prepared.call.generator = at::make_generator<at::CPUGeneratorImpl>(1234);
    attention::attend(prepared.spec, q, k, v, prepared.call).backward(grad);
    q.mutable_grad().reset();
    k.mutable_grad().reset();
    v.mutable_grad().reset();
  }
};

AttentionBenchRow describe_row(const AttentionBenchCase& c, const AttentionBenchInputs& in) {
  AttentionBenchRow row;
  row.type = c.type;
  row.spec = c.label;
  row.backend = attention::backend_name(c.backend);
  row.dtype = dtype_label(in.q.scalar_type());
  row.batch = in.q.size(0), row.heads = in.q.size(1), row.n = in.q.size(2), row.m = in.k.size(2);
  row.dqk = in.q.size(3), row.dv = in.v.size(3);
  return row;
}

// Error against dense and times; failures are recorded in the row.
AttentionBenchRow measure_times(const AttentionBenchCase& c, const AttentionBenchInputs& in,
                                const AttentionBenchSettings& settings, const at::Tensor& dense_out) {
  AttentionBenchRow row = describe_row(c, in);
  try {
    CaseCalls calls(c, in);
    row.spec = attention::to_string(calls.prepared.spec);
    auto device = in.q.device();
    at::Tensor out = calls.forward();
    if (dense_out.defined()) {
      auto diff = (out.to(at::kFloat) - dense_out).norm().item<double>();
      row.relative_error = diff / dense_out.norm().item<double>();
    }
    out.reset();
    const TimingSettings timing{settings.warmup, settings.repeats};
    row.forward_ms = time_ms(device, timing, [&] { calls.forward(); });
    if (settings.backward) row.forward_backward_ms = time_ms(device, timing, [&] { calls.forward_backward(); });
    // Phases of one more (warm) run each; the kernel column names what the call actually ran, as
    // the library recorded it.
    row.kernel = profile_phases(device, [&] { calls.forward(); }, row.forward_phases);
    if (settings.backward) profile_phases(device, [&] { calls.forward_backward(); }, row.forward_backward_phases);
  } catch (const std::exception& e) {
    row.error = e.what();
  }
  return row;
}

// Peak memory of one call (forward + backward, or forward alone). Measured after every row is
// timed: on the CPU it switches the allocator to fresh mappings for large blocks (see peak_mb),
// which would slow the allocations of the rows timed after it.
void measure_peak(const AttentionBenchCase& c, const AttentionBenchInputs& in, const AttentionBenchSettings& settings,
                  AttentionBenchRow& row) {
  if (!row.error.empty()) return;
  try {
    CaseCalls calls(c, in);
    if (settings.backward) {
      row.peak_mb = peak_mb(in.q.device(), [&] { calls.forward_backward(); });
    } else {
      row.peak_mb = peak_mb(in.q.device(), [&] { calls.forward(); });
    }
  } catch (const std::exception& e) {
    row.error = e.what();
  }
}

}  // namespace

std::string dtype_label(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return "fp32";
    case at::kBFloat16: return "bf16";
    case at::kHalf: return "fp16";
    case at::kDouble: return "fp64";
    default: return c10::toString(type);
  }
}

attention::Grid parse_grid(const std::string& text, const std::string& option) {
  auto x = text.find('x');
  try {
    if (x == std::string::npos) throw std::invalid_argument(text);
    size_t used_h = 0, used_w = 0;
    int64_t h = std::stoll(text.substr(0, x), &used_h), w = std::stoll(text.substr(x + 1), &used_w);
    if (used_h != x || used_w != text.size() - x - 1 || h < 1 || w < 1) throw std::invalid_argument(text);
    return {h, w};
  } catch (const std::exception&) {
    throw std::invalid_argument("--" + option + " takes HEIGHTxWIDTH with positive integers (e.g. 96x128), got '" +
                                text + "'");
  }
}

attention::Grid derived_key_grid(const attention::Grid& query_grid, int64_t n, int64_t m) {
  if (m == n) return query_grid;
  if (m * 4 == n && query_grid.height % 2 == 0 && query_grid.width % 2 == 0) {
    return {query_grid.height / 2, query_grid.width / 2};
  }
  return {};  // inferred (square) or an error naming --key-grid
}

attention::AttentionSpec default_bench_spec(const std::string& type, int64_t n, int64_t m) {
  attention::AttentionSpec spec = attention::fitted_to_lengths(attention::parse_attention_spec(type), n, m);
  attention::validate_lengths(spec, n, m);
  return spec;
}

AttentionBenchInputs generated_bench_inputs(const std::string& kind, int64_t batch, int64_t heads, int64_t n, int64_t m,
                                            int64_t dqk, int64_t dv, at::Device device, at::ScalarType dtype) {
  auto place = [&](const at::Tensor& t) { return t.to(device, dtype); };
  if (kind == "structured") {
    auto in = attention::structured_inputs(batch, heads, n, m, dqk, dv, /*centres=*/32, /*seed=*/7);
    return {place(in.q), place(in.k), place(in.v), "structured, 32 centres"};
  }
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  auto make = [&](int64_t len, int64_t dim) {
    return place(at::randn({batch, heads, len, dim}, gen, at::TensorOptions().dtype(at::kFloat)));
  };
  return {make(n, dqk), make(m, dqk), make(m, dv), "random"};
}

AttentionBenchInputs load_bench_inputs(const std::string& path, at::Device device,
                                       std::optional<at::ScalarType> dtype) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("--qkv " + path + ": cannot open the file");
  std::vector<char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  c10::IValue value;
  try {
    value = torch::pickle_load(bytes);
  } catch (const std::exception& e) {
    throw std::runtime_error("--qkv " + path +
                             ": not a tensor dict saved with torch.save({'q': q, 'k': k, 'v': v}, path) "
                             "or torch::pickle_save (" + std::string(e.what()).substr(0, 200) + ")");
  }
  if (!value.isGenericDict()) throw std::runtime_error("--qkv " + path + ": expected a dict with keys q, k, v");
  auto dict = value.toGenericDict();
  AttentionBenchInputs in;
  in.source = path;
  for (auto [name, slot] : {std::pair{"q", &in.q}, {"k", &in.k}, {"v", &in.v}}) {
    auto it = dict.find(c10::IValue(std::string(name)));
    if (it == dict.end() || !it->value().isTensor()) {
      throw std::runtime_error("--qkv " + path + ": missing tensor '" + name + "'");
    }
    at::Tensor t = it->value().toTensor();
    if (t.dim() == 3) t = t.unsqueeze(1);  // [B, N, D] -> one head
    if (t.dim() != 4) {
      throw std::runtime_error("--qkv " + path + ": tensor '" + name + "' must be [B, H, len, dim] or [B, len, dim]");
    }
    *slot = t.to(device, dtype.value_or(t.scalar_type())).contiguous();
  }
  return in;
}

std::vector<AttentionBenchRow> run_attention_bench(const std::vector<AttentionBenchCase>& cases,
                                                   const AttentionBenchInputs& inputs,
                                                   const AttentionBenchSettings& settings) {
  std::vector<AttentionBenchRow> rows;
  AttentionBenchCase baseline{"dense", attention::DenseOptions{}, "dense", Backend::Auto};
  at::Tensor dense_out;
  {
    at::NoGradGuard no_grad;
    dense_out = attention::attend(attention::DenseOptions{}, inputs.q, inputs.k, inputs.v).to(at::kFloat);
  }
  std::vector<AttentionBenchCase> measured = {baseline};
  for (const auto& c : cases) {
    if (c.type != "dense" || c.backend != Backend::Auto) measured.push_back(c);  // dense auto: the baseline
  }
  for (const auto& c : measured) rows.push_back(measure_times(c, inputs, settings, dense_out));
  for (size_t i = 0; i < measured.size(); ++i) measure_peak(measured[i], inputs, settings, rows[i]);
  set_ratios_to_first(rows);
  return rows;
}

std::string format_bench_phases(const std::vector<AttentionBenchRow>& rows) {
  std::ostringstream out;
  for (const auto& r : rows) {
    if (!r.error.empty()) continue;
    out << r.type << " " << r.backend << " N=" << r.n << ", forward: " << format_phases(r.forward_phases) << "\n";
    if (!r.forward_backward_phases.empty()) {
      out << r.type << " " << r.backend << " N=" << r.n << ", forward+backward: "
          << format_phases(r.forward_backward_phases) << "\n";
    }
  }
  return out.str();
}

std::string format_bench_table(const std::vector<AttentionBenchRow>& rows) {
  std::ostringstream out;
  out << std::left << std::setw(20) << "type" << std::setw(11) << "backend" << std::right << std::setw(7) << "N"
      << std::setw(7) << "M" << measurement_header() << "  kernel; spec\n";
  for (const auto& r : rows) {
    out << std::left << std::setw(20) << r.type << std::setw(11) << r.backend << std::right << std::setw(7) << r.n
        << std::setw(7) << r.m << measurement_columns(r);
    out << (r.error.empty() ? "  " + r.kernel + "; " + r.spec : "") << "\n";
  }
  return out.str();
}

nlohmann::json bench_rows_to_json(const std::vector<AttentionBenchRow>& rows) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : rows) {
    nlohmann::json j = {{"type", r.type}, {"spec", r.spec}, {"backend", r.backend}, {"kernel", r.kernel},
                        {"dtype", r.dtype}, {"batch", r.batch},
                        {"heads", r.heads}, {"n", r.n}, {"m", r.m}, {"dqk", r.dqk}, {"dv", r.dv}};
    j.update(measurement_json(r));
    out.push_back(j);
  }
  return out;
}

}  // namespace longgan::app

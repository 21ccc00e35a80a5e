#include "app/attention_error.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <map>
#include <stdexcept>

#include "app/checkpoint_generator.h"
#include "app/cli.h"
#include "app/session_config.h"
#include "checkpoints/checkpoint.h"
#include "datasets/loader.h"
#include "gan/discriminator.h"
#include "gan/generator.h"
#include "gan/module_state.h"
#include "gan/sampling.h"
#include "gan/self_attention.h"

namespace longgan::app {
namespace {
namespace fs = std::filesystem;

double relative_error(const at::Tensor& value, const at::Tensor& reference) {
  const double norm = reference.to(at::kDouble).norm().item<double>();
  const double difference = (value.to(at::kDouble) - reference.to(at::kDouble)).norm().item<double>();
  return norm > 0 ? difference / norm : difference;
}

// The inputs that reach each attention block of `network` while `run` runs it, by block name.
std::map<std::string, at::Tensor> capture_inputs(torch::nn::Module& network, const std::function<void()>& run) {
  std::map<std::string, at::Tensor> inputs;
  std::vector<gan::SelfAttentionImpl*> blocks;
  for (const auto& item : network.named_modules("", false)) {
    auto* block = item.value()->as<gan::SelfAttentionImpl>();
    if (!block) continue;
    const std::string name = item.key();
    block->input_observer = [&inputs, name](const at::Tensor& x) { inputs[name] = x.detach().clone(); };
    blocks.push_back(block);
  }
  run();
  for (auto* block : blocks) block->input_observer = nullptr;
  return inputs;
}

// Dense, then each spec, on one block with its captured input.
BlockErrors measure_block(const std::string& label, gan::SelfAttentionImpl& block, const at::Tensor& x,
                          const std::vector<std::pair<std::string, attention::AttentionSpec>>& specs,
                          const AttentionErrorSettings& settings) {
  torch::NoGradGuard no_grad;
  const attention::AttentionSpec own = block.attention_spec();
  BlockErrors result{label, x.size(2), {}};
  at::Tensor dense_attended, dense_output;
  std::vector<std::pair<std::string, attention::AttentionSpec>> all = {{"dense", attention::DenseOptions{}}};
  all.insert(all.end(), specs.begin(), specs.end());
  const at::Device device = x.device();
  for (const auto& [text, spec] : all) {
    SpecError row{text, text};
    try {
      block.set_attention(spec);
      const int64_t n = x.size(2) * x.size(3);
      attention::validate_lengths(block.attention_spec(), n, block.key_pool ? n / 4 : n);
    } catch (const std::invalid_argument& e) {
      row.failure = e.what();
      result.rows.push_back(row);
      continue;
    }
    row.run = attention::to_string(block.attention_spec());
    // The same hashes for every measurement of a spec; the block output from that one attention output.
    block.set_generator(at::make_generator<at::CPUGeneratorImpl>(settings.seed));
    const at::Tensor attended = block.attention_output(x);
    const at::Tensor output = block.block_output(x, attended);
    if (!dense_attended.defined()) {
      dense_attended = attended;
      dense_output = output;
    }
    row.attention_error = relative_error(attended, dense_attended);
    row.block_error = relative_error(output, dense_output);
    row.milliseconds = time_ms(device, settings.timing, [&] { block.forward(x); });
    result.rows.push_back(row);
  }
  // Peak memory after every timing (on the CPU it switches the allocator to fresh mappings).
  for (size_t i = 0; i < all.size(); ++i) {
    SpecError& row = result.rows[i];
    if (!row.failure.empty()) continue;
    block.set_attention(all[i].second);
    row.peak_mb = peak_mb(device, [&] { block.forward(x); });
  }
  block.set_attention(own);
  block.set_generator(std::nullopt);
  return result;
}

// The first `n` images of the data as D's input [n, 3, R, R] in [-1, 1], and their labels.
std::pair<at::Tensor, at::Tensor> real_batch(const fs::path& data, int64_t n, int64_t n_classes) {
  const datasets::PackedReader reader(data);
  n = std::min(n, reader.size());
  for (int64_t b = 0; b <= reader.block_of(n - 1); ++b) reader.verify_block(b);
  const at::Tensor pixels = datasets::read_images(reader, 0, n);
  at::Tensor labels = at::zeros({n}, at::kLong);
  for (int64_t i = 0; i < n && n_classes > 1; ++i) labels[i] = reader.label(i) % n_classes;
  return {pixels.permute({0, 3, 1, 2}).to(at::kFloat).div(127.5).sub(1.0).contiguous(), labels};
}

std::string number_text(double value, const char* format = "%.3g") {
  char text[32];
  std::snprintf(text, sizeof(text), format, value);
  return text;
}

}  // namespace

std::vector<BlockErrors> measure_attention_error(const fs::path& checkpoint_path, const std::vector<std::string>& specs,
                                                 const fs::path& data, const nlohmann::json& sampling_override,
                                                 const AttentionErrorSettings& settings) {
  auto checkpoint = checkpoints::read_checkpoint(checkpoint_path);
  std::vector<BlockErrors> report;

  // G: latents through the rendering network with dense attention everywhere.
  CheckpointGenerator generator(checkpoint, settings.device, sampling_override);
  // Each spec as `sample --attention TEXT` takes it (the checkpoint's own options for its own bare type name).
  std::vector<std::pair<std::string, attention::AttentionSpec>> resolved;
  for (const auto& text : specs) resolved.emplace_back(text, resolve_spec_text("attention-error", text, generator.attention()));
  generator.set_attention(attention::DenseOptions{});
  gan::Generator& g = generator.network();
  const at::Tensor z = generator.sample_z(settings.batch, settings.seed, 0);
  const auto g_inputs = capture_inputs(*g, [&] { generator.generate(z); });
  for (auto& [index, block] : g->attention) {
    const std::string name = "attention." + std::to_string(index);
    report.push_back(measure_block("G " + name, *block, g_inputs.at(name), resolved, settings));
  }

  // D: real images of the data.
  const gan::ModelConfig model = gan::model_config_from_json(checkpoint.manifest.at("config").at("model"));
  gan::Discriminator d{nullptr};
  gan::with_seeded_global_generator(0, [&] { d = gan::Discriminator(model); });
  auto file = checkpoint.files.find("D");
  if (file == checkpoint.files.end()) {
    throw std::runtime_error("checkpoint '" + checkpoint.dir.string() + "' has no D.pt");
  }
  gan::load_module_state(*d, file->second, "D of checkpoint '" + checkpoint.dir.string() + "'");
  d->set_attention(attention::DenseOptions{});
  const torch::Device device = parse_device(settings.device);
  d->to(device);
  d->eval();
  auto [images, labels] = real_batch(data, settings.batch, model.n_classes);
  images = images.to(device);
  labels = labels.to(device);
  const auto d_inputs = capture_inputs(*d, [&] {
    torch::NoGradGuard no_grad;
    d->forward(images, labels);
  });
  for (auto& [index, block] : d->attention) {
    const std::string name = "attention." + std::to_string(index);
    report.push_back(measure_block("D " + name, *block, d_inputs.at(name), resolved, settings));
  }
  return report;
}

std::optional<size_t> advise(const std::vector<BlockErrors>& blocks, double bound) {
  if (blocks.empty()) return std::nullopt;
  std::optional<size_t> best;
  double best_ms = std::numeric_limits<double>::infinity();
  for (size_t i = 1; i < blocks.front().rows.size(); ++i) {
    double total_ms = 0;
    bool fits = true;
    for (const auto& block : blocks) {
      const SpecError& row = block.rows.at(i);
      fits = fits && row.failure.empty() && row.block_error <= bound;
      total_ms += row.milliseconds;
    }
    if (fits && total_ms < best_ms) {
      best = i;
      best_ms = total_ms;
    }
  }
  return best;
}

void print_attention_errors(std::ostream& out, const std::vector<BlockErrors>& blocks) {
  char line[512];
  int width = 24;  // of the spec column: the longest spec as run
  for (const auto& block : blocks) {
    for (const auto& row : block.rows) width = std::max(width, static_cast<int>(row.run.size()) + 12);
  }
  width = std::min(width, 200);
  std::snprintf(line, sizeof(line), "  %-20s %-*s %11s %11s %9s %8s %9s\n", "block", width, "spec (as run)", "attn err",
                "block err", "ms", "x dense", "peak MiB");
  out << line;
  for (const auto& block : blocks) {
    const std::string label = block.block + " " + std::to_string(block.resolution) + "x" + std::to_string(block.resolution);
    bool first = true;
    for (const auto& row : block.rows) {
      const std::string name = first ? row.run + " (reference)" : row.run;
      if (!row.failure.empty()) {
        out << "  " << (first ? label : std::string(20, ' ')) << " " << row.spec << ": does not fit: " << row.failure
            << "\n";
      } else {
        const double ratio = block.rows.front().milliseconds > 0 ? row.milliseconds / block.rows.front().milliseconds : 0;
        std::snprintf(line, sizeof(line), "  %-20s %-*s %11.3g %11.3g %9.3f %8.2f %9s\n", first ? label.c_str() : "",
                      width, name.c_str(), row.attention_error, row.block_error, row.milliseconds, ratio,
                      row.peak_mb ? number_text(*row.peak_mb, "%.1f").c_str() : "-");
        out << line;
      }
      first = false;
    }
  }
}

void print_advice(std::ostream& out, const std::vector<BlockErrors>& blocks, double bound, const std::string& checkpoint) {
  const auto pick = advise(blocks, bound);
  if (!pick) {
    out << "advice: no listed spec keeps the block output error within " << number_text(bound)
        << " on every block; keep dense, or measure specs closer to dense (more hashes, larger clusters)\n";
    return;
  }
  double ms = 0, dense_ms = 0, worst = 0, peak = 0, dense_peak = 0;
  bool peaks = true;
  std::string worst_block;
  for (const auto& block : blocks) {
    const SpecError& row = block.rows.at(*pick);
    ms += row.milliseconds;
    dense_ms += block.rows.front().milliseconds;
    if (row.block_error >= worst) {
      worst = row.block_error;
      worst_block = block.block;
    }
    peaks = peaks && row.peak_mb && block.rows.front().peak_mb;
    if (peaks) {
      peak = std::max(peak, *row.peak_mb);
      dense_peak = std::max(dense_peak, *block.rows.front().peak_mb);
    }
  }
  const std::string spec = blocks.front().rows.at(*pick).spec;
  out << "advice: " << spec << " keeps every block's output within " << number_text(bound) << " of dense (largest "
      << number_text(worst) << ", " << worst_block << "); its attention blocks take " << number_text(ms, "%.2f")
      << " ms against " << number_text(dense_ms, "%.2f") << " ms with dense ("
      << number_text(dense_ms > 0 ? ms / dense_ms : 0, "%.2f") << "x";
  if (dense_ms > ms) out << ", saves " << number_text(100 * (1 - ms / dense_ms), "%.0f") << "%";
  out << ")";
  if (peaks) out << ", peak " << number_text(peak, "%.1f") << " MiB against " << number_text(dense_peak, "%.1f") << " MiB";
  out << ".\n";
  if (spec == "none") {
    out << "  none is the ablation: every attention block of this model adds less than the bound to its input, so "
           "the model barely uses its attention.\n";
  }
  out << "  swap with: longgan sample --checkpoint " << checkpoint << " --out samples.png --attention " << spec
      << "\n";
}

nlohmann::json attention_errors_json(const std::vector<BlockErrors>& blocks, std::optional<double> bound) {
  nlohmann::json json = {{"blocks", nlohmann::json::array()}};
  for (const auto& block : blocks) {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& row : block.rows) {
      nlohmann::json entry = {{"spec", row.spec}, {"run", row.run}};
      if (!row.failure.empty()) {
        entry["error"] = row.failure;
      } else {
        entry.update({{"attention_error", row.attention_error}, {"block_error", row.block_error},
                      {"ms", row.milliseconds}});
        if (row.peak_mb) entry["peak_mb"] = *row.peak_mb;
      }
      rows.push_back(entry);
    }
    json["blocks"].push_back({{"block", block.block}, {"resolution", block.resolution}, {"specs", rows}});
  }
  if (bound) {
    json["bound"] = *bound;
    const auto pick = advise(blocks, *bound);
    json["advice"] = pick ? nlohmann::json(blocks.front().rows.at(*pick).spec) : nlohmann::json(nullptr);
  }
  return json;
}

}  // namespace longgan::app

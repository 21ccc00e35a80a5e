#include "gan/sampling_statistics.h"

#include <ATen/CPUGeneratorImpl.h>

#include <stdexcept>
#include <vector>

#include "gan/sampling.h"

namespace longgan::gan {
namespace {

std::vector<torch::nn::BatchNorm2dImpl*> batch_norms(Generator& g) {
  std::vector<torch::nn::BatchNorm2dImpl*> result;
  for (const auto& module : g->modules(/*include_self=*/false)) {
    if (auto* bn = dynamic_cast<torch::nn::BatchNorm2dImpl*>(module.get())) result.push_back(bn);
  }
  return result;
}

// Eval mode except the batch norms, which normalise with the batch's own statistics and update
// their running statistics with `momentum` (nullopt: plain average over the passes; 0: unchanged).
void batch_statistics_mode(Generator& g, std::optional<double> momentum) {
  g->eval();
  for (auto* bn : batch_norms(g)) {
    bn->train(true);
    bn->options.momentum(momentum);
  }
}

}  // namespace

Weights parse_weights(const std::string& name) {
  if (name == "g_ema") return Weights::GEma;
  if (name == "g") return Weights::G;
  throw std::invalid_argument("the weights must be g_ema (the moving average, default) or g (the weights being "
                              "trained), got '" + name + "'");
}

std::string to_string(Weights weights) { return weights == Weights::G ? "g" : "g_ema"; }

SamplingStats parse_sampling_stats(const std::string& name) {
  if (name == "running") return SamplingStats::Running;
  if (name == "batch") return SamplingStats::Batch;
  if (name == "standing") return SamplingStats::Standing;
  throw std::invalid_argument("sampling statistics must be running, batch or standing, got '" + name + "'");
}

std::string to_string(SamplingStats stats) {
  switch (stats) {
    case SamplingStats::Running: return "running";
    case SamplingStats::Batch: return "batch";
    case SamplingStats::Standing: return "standing";
  }
  return "?";
}

void SamplingOptions::validate() const {
  if (standing_passes < 1) {
    throw std::invalid_argument("standing_stats (--standing-stats): the passes must be >= 1, got " +
                                std::to_string(standing_passes));
  }
  if (standing_batch < 1) {
    throw std::invalid_argument("the batch of the standing statistics must be >= 1, got " + std::to_string(standing_batch));
  }
}

void prepare_sampling_statistics(Generator& g, const SamplingOptions& options, uint64_t seed) {
  options.validate();
  torch::NoGradGuard no_grad;
  switch (options.stats) {
    case SamplingStats::Running:
      g->eval();
      return;
    case SamplingStats::Batch:
      batch_statistics_mode(g, 0.0);
      return;
    case SamplingStats::Standing: {
      std::vector<std::optional<double>> momenta;
      for (auto* bn : batch_norms(g)) {
        momenta.push_back(bn->options.momentum());
        bn->reset_running_stats();
      }
      batch_statistics_mode(g, std::nullopt);
      // Latents and hashes from separate generators: every attention type sees the same latents
      // (exact SMYRF gets the statistics dense gets).
      at::Generator draws = at::make_generator<at::CPUGeneratorImpl>(seed);
      g->set_attention_generator(at::make_generator<at::CPUGeneratorImpl>(seed ^ 0x9e3779b97f4a7c15ULL));
      const auto device = g->parameters().front().device();
      const ModelConfig& model = g->config;
      for (int64_t pass = 0; pass < options.standing_passes; ++pass) {
        const at::Tensor z = truncated_normal(options.standing_batch, model.z_dim, 0.0, draws);
        const at::Tensor labels = random_labels(options.standing_batch, model.n_classes, draws);
        g->forward(z.to(device), labels.to(device));
      }
      g->set_attention_generator(std::nullopt);
      size_t i = 0;
      for (auto* bn : batch_norms(g)) bn->options.momentum(momenta[i++]);
      g->eval();
      return;
    }
  }
}

EmaSampler::EmaSampler(const ModelConfig& model, torch::Device device) : model_(model), device_(device) {
  with_seeded_global_generator(0, [&] { g_ = Generator(model_); });  // weights come from load()
  g_->to(device_);
  g_->eval();
}

void EmaSampler::load(const Generator& source, const SamplingOptions& options, uint64_t seed) {
  {
    torch::NoGradGuard no_grad;
    auto params = g_->named_parameters();
    for (const auto& item : source->named_parameters()) params[item.key()].copy_(item.value());
    auto buffers = g_->named_buffers();
    for (const auto& item : source->named_buffers()) buffers[item.key()].copy_(item.value());
  }
  prepare_sampling_statistics(g_, options, seed);
}

at::Tensor EmaSampler::generate(const at::Tensor& z, const at::Tensor& labels, at::Generator hashes) {
  torch::NoGradGuard no_grad;
  g_->set_attention_generator(std::move(hashes));
  at::Tensor images = g_->forward(z.to(device_), labels.to(device_)).to(at::kCPU, at::kFloat);
  g_->set_attention_generator(std::nullopt);
  return images;
}

void EmaSampler::set_attention(const attention::AttentionSpec& spec) {
  g_->set_attention(spec);
  model_.attention = spec;
}

}  // namespace longgan::gan

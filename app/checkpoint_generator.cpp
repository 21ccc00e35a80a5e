// G_ema (or G) of a checkpoint for `sample` and `metrics`.
#include "app/checkpoint_generator.h"

#include <ATen/CPUGeneratorImpl.h>

#include <stdexcept>

#include "app/session_config.h"
#include "gan/generator.h"
#include "gan/module_state.h"
#include "gan/sampling.h"

namespace longgan::app {

std::pair<at::Tensor, at::Tensor> seeded_latents(const gan::ModelConfig& model, int64_t n, uint64_t seed,
                                                 double truncation) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto z = gan::truncated_normal(n, model.z_dim, truncation, gen);
  return {z, at::arange(n, at::kLong).remainder(model.n_classes)};
}

int64_t checkpoint_classes(const checkpoints::Checkpoint& checkpoint) {
  return gan::model_config_from_json(checkpoint.manifest.at("config").at("model")).n_classes;
}

struct CheckpointGenerator::Impl {
  gan::ModelConfig model;
  torch::Device device;
  gan::SamplingOptions sampling;
  gan::Weights weights = gan::Weights::GEma;
  gan::Generator source{nullptr};            // G_ema or G as in the checkpoint
  std::unique_ptr<gan::EmaSampler> sampler;  // what renders
  // The sampler's buffers per attention type it was prepared for: swapping back and forth (swap
  // reports) re-estimates standing statistics once per type.
  std::map<std::string, std::vector<at::Tensor>> prepared;

  void prepare() {
    const std::string key = attention::to_string(model.attention);
    auto buffers = sampler->network()->buffers();
    auto it = prepared.find(key);
    if (it != prepared.end()) {
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < buffers.size(); ++i) buffers[i].copy_(it->second[i]);
      return;
    }
    sampler->load(source, sampling, /*seed=*/0);
    std::vector<at::Tensor> copies;
    for (const auto& buffer : buffers) copies.push_back(buffer.clone());
    prepared.emplace(key, std::move(copies));
  }
};

CheckpointGenerator::CheckpointGenerator(const checkpoints::Checkpoint& checkpoint, const std::string& device,
                                         const nlohmann::json& sampling_override)
    : impl_(std::make_unique<Impl>(Impl{gan::model_config_from_json(checkpoint.manifest.at("config").at("model")),
                                        parse_device(device), {}, gan::Weights::GEma, nullptr, nullptr})) {
  const auto& config = checkpoint.manifest.at("config");
  const int64_t batch = config.value("train", nlohmann::json::object()).value("batch", int64_t{32});
  nlohmann::json run = config.value("run", nlohmann::json::object());
  for (const auto& [key, value] : sampling_override.items()) run[key] = value;
  try {
    impl_->sampling = sampling_options(run, batch);
  } catch (const std::exception& e) {
    throw std::runtime_error("'" + (checkpoint.dir / "manifest.json").string() + "': run.sampling_stats/standing_stats: " + e.what());
  }
  impl_->weights = gan::parse_weights(sampling_override.value("weights", std::string("g_ema")));
  const std::string network = impl_->weights == gan::Weights::G ? "G" : "G_ema";
  gan::with_seeded_global_generator(0, [&] { impl_->source = gan::Generator(impl_->model); });
  auto file = checkpoint.files.find(network);
  if (file == checkpoint.files.end()) {
    throw std::runtime_error("checkpoint '" + checkpoint.dir.string() + "' has no " + network + ".pt");
  }
  gan::load_module_state(*impl_->source, file->second, network + " of checkpoint '" + checkpoint.dir.string() + "'");
  impl_->source->to(impl_->device);
  impl_->sampler = std::make_unique<gan::EmaSampler>(impl_->model, impl_->device);
  impl_->prepare();
}

CheckpointGenerator::~CheckpointGenerator() = default;

at::Tensor CheckpointGenerator::sample_z(int64_t n, uint64_t seed, double truncation) const {
  return seeded_latents(impl_->model, n, seed, truncation).first;
}

at::Tensor CheckpointGenerator::generate(const at::Tensor& z) {
  auto labels = at::arange(z.size(0), at::kLong).remainder(impl_->model.n_classes);
  // Fixed hashes: the same z gives the same image on every call.
  return impl_->sampler->generate(z, labels, at::make_generator<at::CPUGeneratorImpl>(0));
}

at::Tensor CheckpointGenerator::generate(const at::Tensor& z, const at::Tensor& labels) {
  const int64_t n = impl_->model.n_classes;
  if (labels.dim() != 1 || labels.size(0) != z.size(0) || labels.scalar_type() != at::kLong) {
    throw std::invalid_argument("labels must be int64 [" + std::to_string(z.size(0)) + "] (one per latent), got " +
                                gan::shape_text(labels.sizes()));
  }
  if (labels.numel() > 0 && (labels.min().item<int64_t>() < 0 || labels.max().item<int64_t>() >= n)) {
    throw std::invalid_argument("labels must be in [0, " + std::to_string(n) + ") (the checkpoint's n_classes)");
  }
  // Fixed hashes, as generate(z): the same z and label give the same image on every call.
  return impl_->sampler->generate(z, labels, at::make_generator<at::CPUGeneratorImpl>(0));
}

int64_t CheckpointGenerator::n_classes() const { return impl_->model.n_classes; }

const gan::SamplingOptions& CheckpointGenerator::sampling() const { return impl_->sampling; }

gan::Weights CheckpointGenerator::weights() const { return impl_->weights; }

void CheckpointGenerator::check_attention(const attention::AttentionSpec& spec) const {
  gan::ModelConfig next = impl_->model;
  next.attention = spec;
  next.validate();  // the spec fits every attention block's lengths
}

void CheckpointGenerator::set_attention(const attention::AttentionSpec& spec) {
  check_attention(spec);
  impl_->model.attention = spec;
  impl_->source->set_attention(spec);
  impl_->sampler->set_attention(spec);
  impl_->prepare();  // standing statistics belong to the attention type that renders
}

const attention::AttentionSpec& CheckpointGenerator::attention() const { return impl_->model.attention; }

gan::Generator& CheckpointGenerator::network() { return impl_->sampler->network(); }

}  // namespace longgan::app

// The app's bridge to gan::GanTrainer and datasets::Loader.
#include "app/train/train_session.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/cuda.h>

#include <sstream>
#include <stdexcept>

#include "app/checkpoint_generator.h"
#include "app/session_config.h"
#include "datasets/loader.h"
#include "datasets/packed_format.h"
#include "gan/model_config.h"
#include "gan/random_streams.h"
#include "gan/self_attention.h"
#include "gan/spectral_norm.h"
#include "gan/summary.h"
#include "gan/trainer.h"

namespace longgan::app {

struct TrainSession::Impl {
  gan::ModelConfig model;
  gan::TrainConfig train;
  torch::Device device;
  std::string data;
  uint64_t seed;
  gan::GanTrainer trainer;
  std::unique_ptr<datasets::Loader> loader;
  DistributedOptions distributed;

  Impl(const nlohmann::json& config, gan::ModelConfig m, gan::TrainConfig t, DistributedOptions dist)
      : model(std::move(m)),
        train(std::move(t)),
        device(rank_device(parse_device(config["run"]["device"].get<std::string>()), dist)),
        data(config["run"]["data"].get<std::string>()),
        seed(config["run"]["seed"].get<uint64_t>()),
        trainer(model, train, device),
        distributed(dist) {
    trainer.set_sampling(sampling_options(config["run"], train.batch));
    if (gan::ProcessGroup* group = distributed.group) {
      trainer.set_data_parallel({group->rank(), group->size(), [group](torch::nn::Module& module) {
                                   gan::average_gradients(*group, module.parameters());
                                 }});
      if (distributed.sync_batch_norm) trainer.generator()->set_process_group(group);
    }
    open_loader(0);
  }

  // One GPU per local rank.
  static torch::Device rank_device(torch::Device device, const DistributedOptions& dist) {
    if (!device.is_cuda() || dist.group == nullptr) return device;
    const int count = static_cast<int>(torch::cuda::device_count());
    if (dist.group->local_rank() >= count) {
      throw std::runtime_error("local rank " + std::to_string(dist.group->local_rank()) + " has no GPU: " +
                               std::to_string(count) + " are visible; start at most that many ranks per machine "
                               "(torchrun --nproc-per-node)");
    }
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(dist.group->local_rank()));
  }

  void open_loader(int64_t position) {
    loader.reset();
    datasets::LoaderOptions options;
    options.batch = train.batch;
    options.seed = seed;
    options.pin_memory = device.is_cuda();
    options.start_position = position;
    if (distributed.group != nullptr) {
      options.shard = distributed.group->rank();
      options.shards = distributed.group->size();
    }
    auto next = std::make_unique<datasets::Loader>(data, options);
    const auto& header = next->reader().header();
    if (header.height != model.resolution || header.width != model.resolution) {
      throw std::runtime_error("data '" + data + "' holds " + std::to_string(header.height) + "x" +
                               std::to_string(header.width) + " images but model.resolution is " +
                               std::to_string(model.resolution) + "; pass --resolution " +
                               std::to_string(header.height) + " or prepare the data at " +
                               std::to_string(model.resolution));
    }
    if (model.n_classes > 1 && static_cast<int64_t>(header.label_count) > model.n_classes) {
      throw std::runtime_error("data '" + data + "' has " + std::to_string(header.label_count) +
                               " classes but model.n_classes is " + std::to_string(model.n_classes) +
                               "; pass --classes " + std::to_string(header.label_count));
    }
    loader = std::move(next);
  }
};

namespace {
gan::ModelConfig model_of(const nlohmann::json& config) { return gan::model_config_from_json(config["model"]); }
gan::TrainConfig train_of(const nlohmann::json& config) {
  auto train = gan::train_config_from_json(config["train"]);
  train.seed = config["run"]["seed"].get<uint64_t>();
  return train;
}
}  // namespace

TrainSession::TrainSession(const nlohmann::json& config, DistributedOptions distributed)
    : impl_(std::make_unique<Impl>(config, model_of(config), train_of(config), distributed)) {}
TrainSession::~TrainSession() = default;

std::map<std::string, double> TrainSession::train_step() {
  auto& s = *impl_;
  return s.trainer.train_step([&]() -> std::pair<at::Tensor, at::Tensor> {
    auto batch = s.loader->next();
    at::Tensor labels = s.model.n_classes > 1 ? batch.labels.to(s.device) : at::Tensor();
    return {batch.images.to(s.device, /*non_blocking=*/true), labels};
  });
}

int64_t TrainSession::images_per_step() const {
  const int64_t ranks = impl_->distributed.group != nullptr ? impl_->distributed.group->size() : 1;
  return impl_->train.batch * impl_->train.d_steps * impl_->train.accumulate * ranks;
}

void TrainSession::check_replicas() {
  gan::ProcessGroup* group = impl_->distributed.group;
  if (group == nullptr || group->size() == 1) return;
  // Every entry of G., G_ema. and D. as float64 (integers such as num_batches_tracked are exact
  // there); its element-wise max and min over ranks equal it only if all ranks agree.
  auto state = impl_->trainer.state();
  std::vector<std::string> names;
  std::vector<at::Tensor> pieces;
  for (const auto& [name, tensor] : state) {
    if (!(name.starts_with("G.") || name.starts_with("G_ema.") || name.starts_with("D.")) || !tensor.defined()) continue;
    names.push_back(name);
    pieces.push_back(tensor.to(impl_->device, at::kDouble).reshape({-1}));
  }
  at::Tensor local = at::cat(pieces);
  at::Tensor high = local.clone(), low = local.clone();
  group->all_reduce_max(high);
  group->all_reduce_min(low);
  if (at::equal(high, low)) return;
  int64_t offset = 0;
  for (size_t i = 0; i < pieces.size(); ++i) {
    const int64_t n = pieces[i].numel();
    if (!at::equal(high.narrow(0, offset, n), low.narrow(0, offset, n))) {
      const double spread = (high.narrow(0, offset, n) - low.narrow(0, offset, n)).max().item<double>();
      throw std::runtime_error("distributed replica check at step " + std::to_string(impl_->trainer.step()) +
                               ": " + names[i] + " differs between ranks (max spread " + std::to_string(spread) +
                               "); the ranks no longer train the same model");
    }
    offset += n;
  }
}

checkpoints::TensorMap TrainSession::state() {
  auto state = impl_->trainer.state();
  state[kLoaderPosition] = at::scalar_tensor(impl_->loader->position(), at::kLong);
  return state;
}

void TrainSession::load_state(const checkpoints::TensorMap& state) {
  checkpoints::TensorMap trainer_state = state;
  auto position = trainer_state.find(kLoaderPosition);
  if (position == trainer_state.end()) throw std::runtime_error("checkpoint has no " + std::string(kLoaderPosition));
  int64_t samples = position->second.item<int64_t>();
  trainer_state.erase(position);
  impl_->trainer.load_state(trainer_state);
  impl_->open_loader(samples);
}

at::Tensor TrainSession::fixed_samples(int64_t n, gan::Weights weights) {
  auto [z, labels] = seeded_latents(impl_->model, n, gan::stream_seed(impl_->seed, gan::RandomStream::FixedSamples), 0.0);
  // Hashes of their own, the same at every call: the grid changes only as the weights do.
  return impl_->trainer.render(
      weights, z, labels,
      at::make_generator<at::CPUGeneratorImpl>(gan::stream_seed(impl_->seed, gan::RandomStream::SampleHashes)));
}

at::Tensor TrainSession::evaluation_latents(int64_t n) const {
  return seeded_latents(impl_->model, n, gan::stream_seed(impl_->seed, gan::RandomStream::EvaluationLatents), 0.0).first;
}

at::Tensor TrainSession::evaluation_samples(const at::Tensor& z, int64_t first, gan::Weights weights) {
  const at::Tensor labels = (at::arange(z.size(0), at::kLong) + first).remainder(impl_->model.n_classes);
  return impl_->trainer.render(
      weights, z, labels,
      at::make_generator<at::CPUGeneratorImpl>(gan::stream_seed(impl_->seed, gan::RandomStream::EvaluationHashes)));
}

nlohmann::json TrainSession::attention_json() const { return attention::to_json(impl_->model.attention); }

nlohmann::json TrainSession::sampling_json() const {
  const auto& sampling = impl_->trainer.sampling();
  return {{"stats", gan::to_string(sampling.stats)}, {"standing_stats", sampling.standing_passes}};
}

nlohmann::json TrainSession::data_fingerprint() const {
  const auto& header = impl_->loader->reader().header();
  std::ostringstream hex;
  hex << std::hex << impl_->loader->fingerprint();
  return {{"file", impl_->data}, {"fingerprint", hex.str()}, {"count", header.count},
          {"resolution", header.height}};
}

std::map<std::string, double> TrainSession::spectral_sigmas() {
  std::map<std::string, double> scalars;
  for (const auto& [name, sigma] : gan::watched_sigmas(*impl_->trainer.generator())) scalars["sigma/G/" + name] = sigma;
  for (const auto& [name, sigma] : gan::watched_sigmas(*impl_->trainer.discriminator())) scalars["sigma/D/" + name] = sigma;
  return scalars;
}

std::map<std::string, double> TrainSession::attention_weights() {
  std::map<std::string, double> scalars;
  auto add = [&](const std::string& network, torch::nn::Module& module) {
    for (const auto& [name, reading] : gan::attention_readings(module)) {
      const std::string prefix = "attention/" + network + "/" + name + "/";
      scalars[prefix + "gamma"] = reading.gamma;
      if (reading.branch_ratio) scalars[prefix + "branch_ratio"] = *reading.branch_ratio;
    }
  };
  add("G", *impl_->trainer.generator());
  add("D", *impl_->trainer.discriminator());
  return scalars;
}

std::string TrainSession::model_summary() const {
  auto& trainer = impl_->trainer;
  return gan::model_summary(impl_->model, trainer.generator(), trainer.discriminator());
}

nlohmann::json TrainSession::model_json() const { return gan::to_json(impl_->model); }
nlohmann::json TrainSession::train_json() const { return gan::to_json(impl_->train); }

}  // namespace longgan::app

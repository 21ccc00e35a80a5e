// The app's bridge to gan::GanTrainer and datasets::Loader.
#include "app/train_session.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/cuda.h>

#include <chrono>
#include <iomanip>
#include <sstream>
#include <stdexcept>

#include "app/cli.h"
#include "app/model_presets.h"
#include "datasets/loader.h"
#include "datasets/packed_format.h"
#include "gan/generator.h"
#include "gan/model_config.h"
#include "gan/sampling.h"
#include "gan/spectral_norm.h"
#include "gan/summary.h"
#include "gan/trainer.h"

namespace longgan::app {
namespace {

constexpr const char* kLoaderPosition = "loader.position";

// Latents and labels that stay the same for a run: drawn from their own generator.
std::pair<at::Tensor, at::Tensor> fixed_latents(const gan::ModelConfig& model, int64_t n, uint64_t seed,
                                                double truncation) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto z = gan::truncated_normal(n, model.z_dim, truncation, gen);
  return {z, at::arange(n, at::kLong).remainder(model.n_classes)};
}

std::string shape_text(const at::Tensor& t) {
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

// Copies `tensors` (names as in named_parameters/named_buffers) into `module`, or throws
// listing every missing, unexpected and shape-mismatched name.
void load_module(torch::nn::Module& module, const checkpoints::TensorMap& tensors, const std::string& what) {
  std::map<std::string, at::Tensor> slots;
  for (const auto& p : module.named_parameters()) slots[p.key()] = p.value();
  for (const auto& b : module.named_buffers()) slots[b.key()] = b.value();
  std::vector<std::string> problems;
  for (const auto& [name, slot] : slots) {
    auto it = tensors.find(name);
    if (it == tensors.end()) problems.push_back("missing " + name + " " + shape_text(slot));
    else if (it->second.sizes() != slot.sizes())
      problems.push_back(name + ": checkpoint " + shape_text(it->second) + " vs model " + shape_text(slot));
  }
  for (const auto& [name, tensor] : tensors) {
    if (!slots.count(name)) problems.push_back("unexpected " + name + " " + shape_text(tensor));
  }
  if (!problems.empty()) {
    std::string text = what + " does not match the model config (" + std::to_string(problems.size()) + " names):";
    for (const auto& p : problems) text += "\n  " + p;
    throw std::runtime_error(text);
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, slot] : slots) slot.copy_(tensors.at(name));
}

}  // namespace

gan::SamplingOptions sampling_options(const nlohmann::json& run, int64_t standing_batch) {
  gan::SamplingOptions options;
  options.standing_batch = standing_batch;
  if (run.contains("sampling_stats")) options.stats = gan::parse_sampling_stats(run["sampling_stats"].get<std::string>());
  if (run.contains("standing_stats")) options.standing_passes = run["standing_stats"].get<int64_t>();
  options.validate();
  return options;
}

torch::Device parse_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name == "cuda") {
    if (!torch::cuda::is_available()) {
      throw std::runtime_error("device cuda was asked for, but no CUDA GPU is visible to this build (see longgan "
                               "--version); use --device cpu");
    }
    return torch::kCUDA;
  }
  throw std::invalid_argument("the device must be cpu or cuda, got '" + name + "'");
}

nlohmann::json default_session_config() {
  // The built-in default: the small 32x32 CPU preset (the model section is re-derived for the
  // resolution by resolve_model_section).
  return {{"model", model_preset(32)}, {"train", gan::to_json(gan::TrainConfig{})}};
}

const std::vector<ConfigFlag>& model_flags() {
  static const std::vector<ConfigFlag> flags{
      {"resolution", "model", "resolution", "Image resolution: 32, 64, 128 or 256"},
      {"ch", "model", "ch", "Channel multiplier (BigGAN: 64 or 96)"},
      {"z-dim", "model", "z_dim", "Latent size"},
      {"shared-dim", "model", "shared_dim", "Shared class embedding size"},
      {"classes", "model", "n_classes", "Number of classes (1: unconditional)"},
      {"g-attn", "model", "g_attn", "Resolutions of G's attention blocks, e.g. 64,128"},
      {"d-attn", "model", "d_attn", "Resolutions of D's attention blocks, e.g. 64"},
      {"attention", "model", "attention", "Attention type and options, e.g. smyrf:hashes=4,q_cluster=2048"},
      {"key-pool", "model", "key_pool", "Max-pool keys and values 2x2 (true/false)"},
      {"heads", "model", "heads", "Attention heads"},
      {"hierarchical-z", "model", "hierarchical_z", "Split z across G's blocks (true/false)"},
      {"shared-embedding", "model", "shared_embedding",
       "One class embedding shared by G's batch norms (true) or class tables in each (false; needs "
       "--hierarchical-z false)"},
      {"sn-eps", "model", "sn_eps", "Epsilon of every spectral norm in G and D"},
  };
  return flags;
}

const std::vector<ConfigFlag>& train_flags() {
  static const std::vector<ConfigFlag> flags{
      {"batch", "train", "batch", "Batch size"},
      {"lr-g", "train", "lr_g", "Adam learning rate of G"},
      {"lr-d", "train", "lr_d", "Adam learning rate of D"},
      {"beta1", "train", "beta1", "Adam beta1"},
      {"beta2", "train", "beta2", "Adam beta2"},
      {"adam-eps", "train", "eps", "Adam epsilon"},
      {"d-steps", "train", "d_steps", "D steps per G step"},
      {"accumulate", "train", "accumulate", "Micro-batches of --batch per D and per G step (gradients averaged)"},
      {"ortho", "train", "ortho", "Orthogonal regularization strength on G (0: off)"},
      {"ema", "train", "ema",
       "Form of G_ema, the moving average of G: half_life (default: --ema-kimg, --ema-rampup) or decay (BigGAN's: "
       "--ema-decay, --ema-start); README: G_ema"},
      {"ema-kimg", "train", "ema_kimg", "Half-life of G_ema in thousands of images (global batches of G steps)"},
      {"ema-rampup", "train", "ema_rampup",
       "Ramp-up of the half-life: at most this fraction of the images seen so far (0: no ramp-up)"},
      {"ema-decay", "train", "ema_decay", "BigGAN form: decay of G_ema per step (implies --ema decay)"},
      {"ema-start", "train", "ema_start",
       "BigGAN form: step from which G_ema averages; before it G_ema copies G (implies --ema decay)"},
      {"bf16", "train", "bf16", "bf16 autocast on CUDA (true/false)"},
      {"init", "train", "init", "Weight init of G and D: ortho, n02 or xavier"},
      {"diffaug", "train", "diffaug", "DiffAugment policy for D's inputs: any of color,translation,cutout"},
  };
  return flags;
}

std::set<std::string> given_model_keys(const cxxopts::ParseResult& args) {
  std::set<std::string> keys;
  for (const ConfigFlag& flag : model_flags()) {
    if (args.count(flag.flag)) keys.insert(flag.key);
  }
  return keys;
}

std::set<std::string> model_keys_of(const nlohmann::json& config) {
  std::set<std::string> keys;
  if (config.is_object() && config.contains("model") && config["model"].is_object()) {
    for (const auto& [key, value] : config["model"].items()) keys.insert(key);
  }
  return keys;
}

void imply_ema_form(nlohmann::json& config, const cxxopts::ParseResult& args) {
  const bool half_life = args.count("ema-kimg") || args.count("ema-rampup");
  const bool decay = args.count("ema-decay") || args.count("ema-start");
  if (half_life && decay) {
    throw UsageError("--ema-kimg/--ema-rampup set the half-life form of G_ema and --ema-decay/--ema-start BigGAN's "
                     "per-step decay: give the flags of one form");
  }
  if (args.count("ema") || (!half_life && !decay)) return;
  config["train"]["ema"] = half_life ? "half_life" : "decay";
}

std::string describe_model(const nlohmann::json& model_section) {
  return gan::model_summary(gan::model_config_from_json(model_section));
}

namespace {
// "train config: ema_kimg: ..." -> "train config: ema_kimg (--ema-kimg): ...": the field's flag named.
std::string with_flag_name(const std::string& message) {
  for (const auto* flags : {&model_flags(), &train_flags()}) {
    for (const ConfigFlag& flag : *flags) {
      const std::string prefix = flag.section + " config: " + flag.key + ":";
      if (message.starts_with(prefix)) {
        return flag.section + " config: " + flag.key + " (--" + flag.flag + "):" + message.substr(prefix.size());
      }
    }
  }
  return message;
}
}  // namespace

void check_session_config(const nlohmann::json& config) {
  const auto& run = config["run"];
  if (!run["seed"].is_number_integer() || (!run["seed"].is_number_unsigned() && run["seed"].get<int64_t>() < 0)) {
    throw UsageError("run.seed (--seed) must be a non-negative integer, got " + run["seed"].dump());
  }
  try {
    gan::model_config_from_json(config["model"]);
    gan::train_config_from_json(config["train"]).validate();
    parse_device(run["device"].get<std::string>());
  } catch (const std::invalid_argument& e) {
    throw UsageError(with_flag_name(e.what()));
  }
  const std::filesystem::path data = run["data"].get<std::string>();
  std::error_code ignored;
  if (std::filesystem::is_directory(data, ignored)) {
    throw UsageError("--data '" + data.string() + "' is a directory; a packed dataset file (.lgd) is expected: make "
                     "one from an image folder with `longgan prepare --input " + data.string() + " --output FILE.lgd --resolution R`");
  }
}

void check_session_config(const nlohmann::json& config, const nlohmann::json& before_flags, const std::string& file) {
  try {
    check_session_config(config);
  } catch (const UsageError& error) {
    try {
      check_session_config(before_flags);
    } catch (const UsageError& file_error) {
      if (std::string(file_error.what()) == error.what()) {
        throw UsageError("config file '" + file + "': " + error.what());
      }
    }
    throw;
  }
}

void verify_data_before_training(const nlohmann::json& config, std::ostream& out, double seconds) {
  const auto start = std::chrono::steady_clock::now();
  const datasets::PackedReader reader(config["run"]["data"].get<std::string>());
  const int64_t checked = reader.verify_within(seconds);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::ostringstream line;
  line << std::fixed << std::setprecision(2);
  if (checked == reader.block_count()) {
    line << "data verified: " << reader.size() << " images, all " << checked << " blocks in " << took << " s";
  } else {
    line << "data verified: " << checked << " of " << reader.block_count() << " blocks in " << took
         << " s; the rest are checked as training reaches them (`longgan info " << reader.path().string()
         << " --verify` checks all)";
  }
  out << line.str() << std::endl;
}

std::string unused_labels_warning(const nlohmann::json& config) {
  const int64_t n_classes = gan::model_config_from_json(config["model"]).n_classes;
  if (n_classes != 1) return {};
  const datasets::PackedReader reader(config["run"]["data"].get<std::string>());
  if (reader.label_count() <= 1) return {};
  const std::string k = std::to_string(reader.label_count());
  return "warning: data '" + reader.path().string() + "' is labelled (" + k + " classes) but the model is "
         "unconditional (model.n_classes 1), so training ignores the labels; pass --classes " + k +
         " for a class-conditional model";
}

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
  auto [z, labels] = fixed_latents(impl_->model, n, impl_->seed + 1, 0.0);
  // Hashes of their own, the same at every call: the grid changes only as the weights do.
  return impl_->trainer.render(weights, z, labels, at::make_generator<at::CPUGeneratorImpl>(impl_->seed + 4));
}

at::Tensor TrainSession::evaluation_latents(int64_t n) const {
  return fixed_latents(impl_->model, n, impl_->seed + 2, 0.0).first;
}

at::Tensor TrainSession::evaluation_samples(const at::Tensor& z, int64_t first, gan::Weights weights) {
  const at::Tensor labels = (at::arange(z.size(0), at::kLong) + first).remainder(impl_->model.n_classes);
  return impl_->trainer.render(weights, z, labels, at::make_generator<at::CPUGeneratorImpl>(impl_->seed + 3));
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

std::string TrainSession::model_summary() const {
  auto& trainer = impl_->trainer;
  return gan::model_summary(impl_->model, trainer.generator(), trainer.discriminator());
}

nlohmann::json TrainSession::model_json() const { return gan::to_json(impl_->model); }
nlohmann::json TrainSession::train_json() const { return gan::to_json(impl_->train); }

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
  load_module(*impl_->source, file->second, network + " of checkpoint '" + checkpoint.dir.string() + "'");
  impl_->source->to(impl_->device);
  impl_->sampler = std::make_unique<gan::EmaSampler>(impl_->model, impl_->device);
  impl_->prepare();
}

CheckpointGenerator::~CheckpointGenerator() = default;

at::Tensor CheckpointGenerator::sample_z(int64_t n, uint64_t seed, double truncation) const {
  return fixed_latents(impl_->model, n, seed, truncation).first;
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
                                shape_text(labels));
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

}  // namespace longgan::app

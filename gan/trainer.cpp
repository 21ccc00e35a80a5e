#include "gan/trainer.h"

#include "attention/call_profile.h"

#include "gan/config_field.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>

#include <cmath>
#include <limits>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "gan/ema.h"
#include "gan/init.h"
#include "gan/losses.h"
#include "gan/module_state.h"
#include "gan/random_streams.h"
#include "gan/sampling.h"

namespace longgan::gan {
namespace {

void require(bool ok, const std::string& field, const std::string& message) {
  if (!ok) throw std::invalid_argument("train config: " + field + ": " + message);
}

std::string number_text(double value) {
  std::ostringstream text;
  text << value;
  return text.str();
}

// bf16 autocast for CUDA within a scope; nothing on other devices or when disabled.
class CudaAutocast {
 public:
  CudaAutocast(bool enable, const torch::Device& device) : active_(enable && device.is_cuda()) {
    if (!active_) return;
    was_enabled_ = at::autocast::is_autocast_enabled(at::kCUDA);
    old_dtype_ = at::autocast::get_autocast_dtype(at::kCUDA);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::increment_nesting();
  }
  ~CudaAutocast() {
    if (!active_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(at::kCUDA, was_enabled_);
    at::autocast::set_autocast_dtype(at::kCUDA, old_dtype_);
  }
  CudaAutocast(const CudaAutocast&) = delete;
  CudaAutocast& operator=(const CudaAutocast&) = delete;

 private:
  bool active_;
  bool was_enabled_ = false;
  at::ScalarType old_dtype_ = at::kBFloat16;
};

std::vector<std::pair<std::string, at::Tensor>> named_params(const torch::nn::Module& module) {
  std::vector<std::pair<std::string, at::Tensor>> result;
  for (const auto& item : module.named_parameters()) result.emplace_back(item.key(), item.value());
  return result;
}


}  // namespace

FreezeGuard::FreezeGuard(torch::nn::Module& module) {
  for (auto& param : module.parameters()) {
    if (!param.requires_grad()) continue;
    param.set_requires_grad(false);
    frozen_.push_back(param);
  }
}

FreezeGuard::~FreezeGuard() {
  for (auto& param : frozen_) param.set_requires_grad(true);
}

void TrainConfig::validate() const {
  require(batch >= 1, "batch", "must be >= 1 (got " + std::to_string(batch) + ")");
  require(lr_g > 0, "lr_g", "must be > 0");
  require(lr_d > 0, "lr_d", "must be > 0");
  require(beta1 >= 0 && beta1 < 1, "beta1", "must be in [0, 1)");
  require(beta2 >= 0 && beta2 < 1, "beta2", "must be in [0, 1)");
  require(eps > 0, "eps", "must be > 0");
  require(d_steps >= 1, "d_steps", "must be >= 1 (got " + std::to_string(d_steps) + ")");
  require(accumulate >= 1, "accumulate", "must be >= 1 (got " + std::to_string(accumulate) + ")");
  try {
    parse_init(init);
  } catch (const std::invalid_argument& e) {
    require(false, "init", e.what());
  }
  try {
    parse_diff_augment_policy(diffaug);
  } catch (const std::invalid_argument& e) {
    require(false, "diffaug", e.what());
  }
  require(ortho >= 0, "ortho", "must be >= 0 (0 turns it off)");
  require(ema == "half_life" || ema == "decay", "ema",
          "must be half_life (a half-life in images, ema_kimg and ema_rampup) or decay (BigGAN's per-step "
          "ema_decay from ema_start), got \"" + ema + "\"");
  require(ema_kimg > 0 && std::isfinite(ema_kimg), "ema_kimg",
          "the half-life of G_ema in thousands of images must be a finite number > 0 (got " + number_text(ema_kimg) +
              "); for G_ema = G use ema decay with ema_decay 0");
  require(ema_rampup >= 0 && std::isfinite(ema_rampup), "ema_rampup",
          "must be a finite number >= 0 (the half-life is at most ema_rampup x the images seen; 0: no ramp-up), got " +
              number_text(ema_rampup));
  require(ema_decay >= 0 && ema_decay <= 1, "ema_decay", "must be in [0, 1] (got " + number_text(ema_decay) + ")");
  require(ema_start >= 0, "ema_start", "must be >= 0");
}

namespace {
// The train section, once: every key and its field (to_json, train_config_from_json).
const std::vector<ConfigField<TrainConfig>>& train_fields() {
  static const std::vector<ConfigField<TrainConfig>> table{
      {"batch", &TrainConfig::batch},         {"lr_g", &TrainConfig::lr_g},
      {"lr_d", &TrainConfig::lr_d},           {"beta1", &TrainConfig::beta1},
      {"beta2", &TrainConfig::beta2},         {"eps", &TrainConfig::eps},
      {"d_steps", &TrainConfig::d_steps},     {"accumulate", &TrainConfig::accumulate},
      {"ortho", &TrainConfig::ortho},         {"ema", &TrainConfig::ema},
      {"ema_kimg", &TrainConfig::ema_kimg},   {"ema_rampup", &TrainConfig::ema_rampup},
      {"ema_decay", &TrainConfig::ema_decay}, {"ema_start", &TrainConfig::ema_start},
      {"seed", &TrainConfig::seed},           {"bf16", &TrainConfig::bf16},
      {"init", &TrainConfig::init},           {"diffaug", &TrainConfig::diffaug},
  };
  return table;
}
}  // namespace

nlohmann::json to_json(const TrainConfig& c) {
  nlohmann::json json = nlohmann::json::object();
  write_config_fields(c, train_fields(), json);
  return json;
}

nlohmann::json with_implied_ema_form(nlohmann::json train) {
  if (!train.is_object() || train.contains("ema")) return train;
  const bool decay = train.contains("ema_decay") || train.contains("ema_start");
  const bool half_life = train.contains("ema_kimg") || train.contains("ema_rampup");
  if (decay && half_life) {
    throw std::invalid_argument("train config: ema: the section sets keys of both EMA forms (ema_kimg/ema_rampup "
                                "and ema_decay/ema_start); say which one runs with \"ema\": \"half_life\" or "
                                "\"ema\": \"decay\"");
  }
  if (decay) train["ema"] = "decay";
  if (half_life) train["ema"] = "half_life";
  return train;
}

TrainConfig train_config_from_json(const nlohmann::json& section) {
  if (!section.is_object()) throw std::invalid_argument("train config: expected a JSON object");
  const nlohmann::json json = with_implied_ema_form(section);
  refuse_unknown_config_keys(json, "train", train_fields());
  TrainConfig config;
  read_config_fields(json, "train", train_fields(), config);
  config.validate();
  return config;
}

GanTrainer::GanTrainer(ModelConfig model, TrainConfig train, torch::Device device)
    : model_(std::move(model)), train_(std::move(train)), device_(device),
      rng_(at::make_generator<at::CPUGeneratorImpl>(stream_seed(train_.seed, RandomStream::Training))) {
  model_.validate();
  train_.validate();
  diffaug_ = parse_diff_augment_policy(train_.diffaug);
  with_seeded_global_generator(stream_seed(train_.seed, RandomStream::WeightInit), [&] {
    g_ = Generator(model_);
    g_ema_ = Generator(model_);
    d_ = Discriminator(model_);
    const InitKind init = parse_init(train_.init);
    initialize_weights(*g_, init);
    initialize_weights(*d_, init);
  });
  g_->to(device_);
  g_ema_->to(device_);
  d_->to(device_);
  update_ema(*g_ema_, *g_, 0.0, 0, std::numeric_limits<int64_t>::max());
  g_ema_->eval();
  for (Generator* g : {&g_, &g_ema_}) (*g)->set_attention_generator(rng_);
  d_->set_attention_generator(rng_);
  optim_g_ = std::make_unique<Adam>(named_params(*g_), AdamOptions{train_.lr_g, train_.beta1, train_.beta2, train_.eps});
  optim_d_ = std::make_unique<Adam>(named_params(*d_), AdamOptions{train_.lr_d, train_.beta1, train_.beta2, train_.eps});
  sampling_.standing_batch = train_.batch;
}

at::Tensor GanTrainer::render(Weights weights, const at::Tensor& z, const at::Tensor& labels, at::Generator hashes) {
  Renderer& renderer = renderers_[weights];
  if (!renderer.sampler) renderer.sampler = std::make_unique<EmaSampler>(model_, device_);
  if (!renderer.fresh) {
    // Its own seed: the standing passes draw nothing from the training generator.
    renderer.sampler->load(weights == Weights::G ? g_ : g_ema_, sampling_,
                           stream_seed(train_.seed, RandomStream::StandingStatistics));
    renderer.fresh = true;
  }
  return renderer.sampler->generate(z, labels, std::move(hashes));
}

void GanTrainer::mark_samplers_stale() {
  for (auto& [weights, renderer] : renderers_) renderer.fresh = false;
}

void GanTrainer::set_sampling(const SamplingOptions& options) {
  options.validate();
  sampling_ = options;
  mark_samplers_stale();
}

const std::vector<std::string>& step_section_names() {
  static const std::vector<std::string> names{kSectionData,           kSectionDStepGForward, kSectionDStepDForward,
                                              kSectionDStepBackward,  kSectionDStepOptimizer, kSectionGStepGForward,
                                              kSectionGStepDForward,  kSectionGStepBackward, kSectionGStepOptimizer,
                                              kSectionEma};
  return names;
}

std::map<std::string, double> GanTrainer::train_step(const BatchSource& next_real_batch) {
  g_->train();
  d_->train();
  const auto long_options = at::TensorOptions().dtype(at::kLong).device(device_);
  auto latents = [&](int64_t batch) {
    const int64_t total = batch * parallel_.size;  // the global batch (this rank's slice below)
    at::Tensor z = truncated_normal(total, model_.z_dim, 0.0, rng_);
    at::Tensor labels = random_labels(total, model_.n_classes, rng_);
    if (parallel_.size > 1) {
      z = z.narrow(0, parallel_.rank * batch, batch);
      labels = labels.narrow(0, parallel_.rank * batch, batch);
    }
    return std::pair{z.to(device_), labels.to(device_)};
  };

  // Each D step and the G step sum the gradients of `accumulate` micro-batches of `batch`, each
  // loss divided by `accumulate` (BigGAN's num_D_accumulations / num_G_accumulations): the
  // gradient of the mean loss over accumulate * batch samples. Reported losses are the means.
  const int64_t k = train_.accumulate;
  const double scale = 1.0 / static_cast<double>(k);
  std::map<std::string, double> result;
  for (int64_t i = 0; i < train_.d_steps; ++i) {
    optim_d_->zero_grad();
    double loss_real = 0, loss_fake = 0;
    for (int64_t micro = 0; micro < k; ++micro) {
      at::Tensor images, labels;
      {
        const attention::SectionTimer timer(kSectionData);
        std::tie(images, labels) = next_real_batch();
      }
      const int64_t batch = images.size(0);
      images = images.to(device_, at::kFloat);
      labels = labels.defined() ? labels.to(long_options) : at::zeros({batch}, long_options);
      const auto [z, fake_labels] = latents(batch);
      at::Tensor logits;
      {
        CudaAutocast autocast(train_.bf16, device_);
        at::Tensor fake;
        {
          const attention::SectionTimer timer(kSectionDStepGForward);
          torch::NoGradGuard no_grad;
          fake = g_->forward(z, fake_labels);
        }
        const attention::SectionTimer timer(kSectionDStepDForward);
        at::Tensor input = at::cat({fake.to(images.dtype()), images});
        if (diffaug_.enabled()) input = augment(input, 2);
        logits = d_->forward(input, at::cat({fake_labels, labels})).to(at::kFloat);
      }
      const attention::SectionTimer timer(kSectionDStepBackward);
      const auto split = logits.split(batch);
      const HingeDLoss loss = hinge_d_loss(split[1], split[0]);
      ((loss.real + loss.fake) * scale).backward();
      loss_real += loss.real.item<double>() * scale;
      loss_fake += loss.fake.item<double>() * scale;
    }
    const attention::SectionTimer timer(kSectionDStepOptimizer);
    if (parallel_.sync_gradients) parallel_.sync_gradients(*d_);
    optim_d_->step();
    result["d_loss_real"] = loss_real;
    result["d_loss_fake"] = loss_fake;
  }

  const FreezeGuard freeze_d(*d_);  // D's parameters get no gradient from the G step
  optim_g_->zero_grad();
  double g_loss_total = 0;
  for (int64_t micro = 0; micro < k; ++micro) {
    const auto [z, fake_labels] = latents(train_.batch);
    at::Tensor g_loss;
    {
      CudaAutocast autocast(train_.bf16, device_);
      at::Tensor fake;
      {
        const attention::SectionTimer timer(kSectionGStepGForward);
        fake = g_->forward(z, fake_labels);
      }
      const attention::SectionTimer timer(kSectionGStepDForward);
      if (diffaug_.enabled()) fake = augment(fake, 1);
      g_loss = hinge_g_loss(d_->forward(fake, fake_labels).to(at::kFloat));
    }
    const attention::SectionTimer timer(kSectionGStepBackward);
    (g_loss * scale).backward();
    g_loss_total += g_loss.item<double>() * scale;
  }
  {
    const attention::SectionTimer timer(kSectionGStepOptimizer);
    apply_ortho_regularization(g_->ortho_parameters(), train_.ortho);
    if (parallel_.sync_gradients) parallel_.sync_gradients(*g_);
    optim_g_->step();
  }
  result["g_loss"] = g_loss_total;

  ++step_;
  const attention::SectionTimer timer(kSectionEma);
  if (train_.ema == "decay") {
    update_ema(*g_ema_, *g_, train_.ema_decay, step_, train_.ema_start);
  } else {
    update_ema(*g_ema_, *g_, half_life_decay(train_.ema_kimg, train_.ema_rampup, images_seen_, global_batch()), step_,
               /*start=*/0);
  }
  images_seen_ += global_batch();
  mark_samplers_stale();
  return result;
}

at::Tensor GanTrainer::augment(const at::Tensor& images, int64_t groups) {
  const int64_t batch = images.size(0) / groups;  // this rank's samples per group
  const int64_t total = batch * parallel_.size;
  DiffAugmentParams params = draw_diff_augment_params(diffaug_, groups * total, images.size(2), images.size(3), rng_);
  if (parallel_.size > 1) {
    std::vector<at::Tensor> rows;
    for (int64_t group = 0; group < groups; ++group) {
      rows.push_back(at::arange(group * total + parallel_.rank * batch, group * total + (parallel_.rank + 1) * batch,
                                at::TensorOptions().dtype(at::kLong)));
    }
    params = params.select(at::cat(rows));
  }
  return apply_diff_augment(images, diffaug_, params);
}

std::map<std::string, at::Tensor> GanTrainer::live_state() const {
  std::map<std::string, at::Tensor> state = module_state(*g_, "G.");
  state.merge(module_state(*g_ema_, "G_ema."));
  state.merge(module_state(*d_, "D."));
  for (const auto& [name, tensor] : optim_g_->state()) state["optim_G." + name] = tensor;
  for (const auto& [name, tensor] : optim_d_->state()) state["optim_D." + name] = tensor;
  return state;
}

std::map<std::string, at::Tensor> GanTrainer::state() const {
  std::map<std::string, at::Tensor> state;
  for (const auto& [name, tensor] : live_state()) state[name] = tensor.detach().clone();
  state["trainer.step"] = at::scalar_tensor(step_, at::TensorOptions().dtype(at::kLong));
  state["trainer.images_seen"] = at::scalar_tensor(images_seen_, at::TensorOptions().dtype(at::kLong));
  {
    std::lock_guard<std::mutex> lock(rng_.mutex());
    state["trainer.generator"] = rng_.get_state();
  }
  return state;
}

void GanTrainer::load_state(const std::map<std::string, at::Tensor>& saved) {
  std::map<std::string, at::Tensor> state = saved;
  if (!state.contains("trainer.images_seen") && state.contains("trainer.step")) {
    // Saved before the half-life EMA: every step so far had this trainer's global batch.
    state["trainer.images_seen"] = state.at("trainer.step") * global_batch();
  }
  std::map<std::string, at::Tensor> live = live_state();
  std::map<std::string, at::Tensor> expected = this->state();  // shapes and dtypes of every entry
  const std::vector<std::string> problems = state_mismatches(expected, state);
  if (!problems.empty()) {
    std::string message = "trainer state does not match this model (" + std::to_string(problems.size()) +
                          " problems; was it saved with another model config?):";
    for (const std::string& problem : problems) message += "\n  " + problem;
    throw std::runtime_error(message);
  }
  {
    torch::NoGradGuard no_grad;
    for (auto& [name, tensor] : live) tensor.copy_(state.at(name));
  }
  step_ = state.at("trainer.step").item<int64_t>();
  images_seen_ = state.at("trainer.images_seen").item<int64_t>();
  mark_samplers_stale();
  std::lock_guard<std::mutex> lock(rng_.mutex());
  rng_.set_state(state.at("trainer.generator").cpu());
}

void GanTrainer::set_attention(const attention::AttentionSpec& spec) {
  g_->set_attention(spec);
  g_ema_->set_attention(spec);
  d_->set_attention(spec);
  for (auto& [weights, renderer] : renderers_) {
    if (renderer.sampler) renderer.sampler->set_attention(spec);
  }
  mark_samplers_stale();
  model_.attention = spec;
}

}  // namespace longgan::gan

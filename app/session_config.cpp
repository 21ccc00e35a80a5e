// The configuration of a training session: defaults, flags, checks.
#include "app/session_config.h"

#include <torch/cuda.h>

#include <chrono>
#include <iomanip>
#include <sstream>
#include <stdexcept>

#include "app/cli.h"
#include "app/model_presets.h"
#include "datasets/packed_format.h"
#include "gan/model_config.h"
#include "gan/summary.h"
#include "gan/trainer.h"

namespace longgan::app {

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

nlohmann::json default_run_section() {
  return {{"data", ""},        {"steps", 1000},       {"seed", 0},
          {"device", torch::cuda::is_available() ? "cuda" : "cpu"},
          {"sample_every", 100}, {"samples", 16},     {"checkpoint_every", 500},
          {"keep", 3},           {"keep_every", 0},   {"log_every", 10},
          {"eval_every", 0},     {"eval_n", 1000},    {"inception", ""},
          {"sampling_stats", "running"}, {"standing_stats", 16},
          {"weights", "g_ema"},  {"sample_weights", "g_ema"},
          {"dist_timeout", 300.0}, {"sync_bn", true},  {"dist_check_every", 0}};
}

nlohmann::json default_session_config() {
  // The built-in default: the small 32x32 CPU preset (the model section is re-derived for the
  // resolution by resolve_model_section).
  return {{"model", model_preset(32)}, {"train", gan::to_json(gan::TrainConfig{})}};
}

const std::vector<ConfigFlag>& model_flags() {
  static const std::vector<ConfigFlag> flags{
      {"resolution", "model", "resolution", "Image resolution: 32, 64, 128, 256 or 512"},
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
      {"spectral-norm", "model", "spectral_norm",
       "How spectral norms estimate sigma: longgan (default) or biggan (BigGAN-PyTorch's; imported models)"},
      {"bn-eps", "model", "bn_eps", "Epsilon of G's conditional batch norms (BigGAN's BN_eps)"},
      {"d-wide", "model", "d_wide", "D blocks widen in their first conv (true, BigGAN's D_wide) or second (false)"},
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
       "--ema-decay, --ema-start); docs/TRAINING.md: G_ema"},
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
  constexpr std::string_view marker = " config: ";
  const size_t section_end = message.find(marker);
  if (section_end == std::string::npos) return message;
  const size_t key_begin = section_end + marker.size();
  const size_t key_end = message.find(':', key_begin);
  if (key_end == std::string::npos) return message;
  const ConfigFlag* flag = find_config_flag({&model_flags(), &train_flags()}, message.substr(0, section_end),
                                            message.substr(key_begin, key_end - key_begin));
  if (!flag) return message;
  return message.substr(0, key_end) + " (--" + flag->flag + ")" + message.substr(key_end);
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

}  // namespace longgan::app

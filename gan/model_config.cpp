#include "gan/model_config.h"

#include "gan/config_field.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

namespace longgan::gan {
namespace {

struct Multipliers {
  std::vector<int64_t> in, out;
};

Multipliers generator_multipliers(int64_t resolution) {
  switch (resolution) {
    case 32: return {{4, 4, 4}, {4, 4, 4}};
    case 64: return {{16, 16, 8, 4}, {16, 8, 4, 2}};
    case 128: return {{16, 16, 8, 4, 2}, {16, 8, 4, 2, 1}};
    case 256: return {{16, 16, 8, 8, 4, 2}, {16, 8, 8, 4, 2, 1}};
    case 512: return {{16, 16, 8, 8, 4, 2, 1}, {16, 8, 8, 4, 2, 1, 1}};
    default:
      throw std::invalid_argument("model config: resolution " + std::to_string(resolution) +
                                  " is not supported; use 32, 64, 128, 256 or 512");
  }
}

// D's first input is RGB: multiplier 0 here stands for 3 channels.
Multipliers discriminator_multipliers(int64_t resolution) {
  switch (resolution) {
    case 32: return {{0, 4, 4, 4}, {4, 4, 4, 4}};
    case 64: return {{0, 1, 2, 4, 8}, {1, 2, 4, 8, 16}};
    case 128: return {{0, 1, 2, 4, 8, 16}, {1, 2, 4, 8, 16, 16}};
    case 256: return {{0, 1, 2, 4, 8, 8, 16}, {1, 2, 4, 8, 8, 16, 16}};
    // BigGAN-PyTorch has no D at 512 (nor the TF Hub port): LongGAN's mirrors G's 512 plan.
    case 512: return {{0, 1, 1, 2, 4, 8, 8, 16}, {1, 1, 2, 4, 8, 8, 16, 16}};
    default: return generator_multipliers(resolution);  // throws
  }
}

std::string list_text(const std::vector<int64_t>& values) {
  std::string text;
  for (int64_t v : values) text += (text.empty() ? "" : ", ") + std::to_string(v);
  return "[" + text + "]";
}

std::string number_text(double value) {
  std::ostringstream text;
  text << value;
  return text.str();
}

void require(bool ok, const std::string& field, const std::string& message) {
  if (!ok) throw std::invalid_argument("model config: " + field + ": " + message);
}

void check_attention_sites(const ModelConfig& config, const std::vector<BlockPlan>& plan,
                           const std::vector<int64_t>& sites, const std::string& field) {
  std::vector<int64_t> allowed;
  for (const BlockPlan& block : plan) {
    if (std::find(allowed.begin(), allowed.end(), block.resolution) == allowed.end()) {
      allowed.push_back(block.resolution);
    }
  }
  for (int64_t site : sites) {
    auto it = std::find_if(plan.begin(), plan.end(), [&](const BlockPlan& b) { return b.resolution == site; });
    require(it != plan.end(), field,
            "no block outputs resolution " + std::to_string(site) + " at resolution " +
                std::to_string(config.resolution) + "; use values from " + list_text(allowed));
    const int64_t channels = it->out_channels;
    require(channels % (8 * config.heads) == 0, field == "g_attn" || field == "d_attn" ? "ch" : field,
            "the attention block at " + std::to_string(site) + " (" + field + ") has " +
                std::to_string(channels) + " channels, not divisible by 8 * heads = " +
                std::to_string(8 * config.heads) + "; use a ch (or heads) that makes it divisible");
    const int64_t n = site * site;
    try {
      const int64_t m = config.key_pool ? n / 4 : n;
      attention::validate_lengths(attention::fit_if_bare(config.attention, n, m), n, m);
    } catch (const std::invalid_argument& error) {
      throw std::invalid_argument("model config: attention: at " + field + " " + std::to_string(site) +
                                  ": " + error.what());
    }
  }
}

}  // namespace

std::vector<BlockPlan> generator_plan(const ModelConfig& config) {
  const Multipliers m = generator_multipliers(config.resolution);
  std::vector<BlockPlan> plan;
  int64_t resolution = 4;
  for (size_t i = 0; i < m.in.size(); ++i) {
    resolution *= 2;
    plan.push_back({m.in[i] * config.ch, m.out[i] * config.ch, resolution, true});
  }
  return plan;
}

std::vector<BlockPlan> discriminator_plan(const ModelConfig& config) {
  const Multipliers m = discriminator_multipliers(config.resolution);
  std::vector<BlockPlan> plan;
  int64_t resolution = config.resolution;
  // BigGAN's D32 downsamples [T, T, F, F] and ends at 8x8; larger Ds halve in every block but the last.
  const size_t down = config.resolution == 32 ? 2 : m.in.size() - 1;
  for (size_t i = 0; i < m.in.size(); ++i) {
    const bool sample = i < down;
    if (sample) resolution /= 2;
    plan.push_back({m.in[i] == 0 ? 3 : m.in[i] * config.ch, m.out[i] * config.ch, resolution, sample});
  }
  return plan;
}

LatentSplit latent_split(const ModelConfig& config) {
  const int64_t blocks = static_cast<int64_t>(generator_plan(config).size());
  if (!config.hierarchical_z) return {config.z_dim, 0, blocks};
  const int64_t chunk = config.z_dim / (blocks + 1);
  return {config.z_dim - chunk * blocks, chunk, blocks};
}

ModelConfig ModelConfig::preset(int64_t resolution) {
  ModelConfig config;
  config.resolution = resolution;
  auto largest_up_to_64 = [](const std::vector<BlockPlan>& plan) {
    int64_t best = 0;
    for (const BlockPlan& block : plan) {
      if (block.resolution <= 64) best = std::max(best, block.resolution);
    }
    return best;
  };
  config.g_attn = {largest_up_to_64(generator_plan(config))};
  config.d_attn = {largest_up_to_64(discriminator_plan(config))};
  return config;
}

void ModelConfig::validate() const {
  require(resolution == 32 || resolution == 64 || resolution == 128 || resolution == 256 || resolution == 512,
          "resolution", std::to_string(resolution) + " is not supported; use 32, 64, 128, 256 or 512");
  require(ch >= 1, "ch", "must be >= 1 (got " + std::to_string(ch) + ")");
  require(heads >= 1, "heads", "must be >= 1 (got " + std::to_string(heads) + ")");
  require(shared_dim >= 1, "shared_dim", "must be >= 1 (got " + std::to_string(shared_dim) + ")");
  require(n_classes >= 1, "n_classes", "must be >= 1 (got " + std::to_string(n_classes) + "; use 1 for unlabeled data)");
  const int64_t slots = hierarchical_z ? static_cast<int64_t>(generator_plan(*this).size()) + 1 : 1;
  require(z_dim >= slots, "z_dim",
          "must be >= " + std::to_string(slots) + " (one chunk per block and one for the input; got " +
              std::to_string(z_dim) + ")");
  require(shared_embedding || !hierarchical_z, "shared_embedding",
          "false needs hierarchical_z false (without the shared embedding each batch norm is conditioned on "
          "the class alone, as BigGAN's G_shared=False); set hierarchical_z false or shared_embedding true");
  require(sn_eps > 0 && std::isfinite(sn_eps), "sn_eps",
          "must be a finite number > 0 (got " + number_text(sn_eps) + "; e.g. 1e-6 as BigGAN's scripts, 1e-12 the default)");
  require(bn_eps > 0 && std::isfinite(bn_eps), "bn_eps",
          "must be a finite number > 0 (got " + number_text(bn_eps) + "; 1e-5 the default, 1e-4 as the TF Hub BigGANs)");
  require(spectral_norm == "longgan" || spectral_norm == "biggan", "spectral_norm",
          "'" + spectral_norm + "' is not known; use longgan (the default) or biggan (BigGAN-PyTorch's estimate)");
  try {
    attention::validate(attention);
  } catch (const std::invalid_argument& error) {
    throw std::invalid_argument(std::string("model config: attention: ") + error.what());
  }
  check_attention_sites(*this, generator_plan(*this), g_attn, "g_attn");
  check_attention_sites(*this, discriminator_plan(*this), d_attn, "d_attn");
}

namespace {
// The model section, once: every key and its field (to_json, model_config_from_json); the
// attention spec has a JSON form of its own and is read and written beside the table.
const std::vector<ConfigField<ModelConfig>>& model_fields() {
  static const std::vector<ConfigField<ModelConfig>> table{
      {"resolution", &ModelConfig::resolution},
      {"ch", &ModelConfig::ch},
      {"z_dim", &ModelConfig::z_dim},
      {"shared_dim", &ModelConfig::shared_dim},
      {"n_classes", &ModelConfig::n_classes},
      {"g_attn", &ModelConfig::g_attn},
      {"d_attn", &ModelConfig::d_attn},
      {"key_pool", &ModelConfig::key_pool},
      {"heads", &ModelConfig::heads},
      {"hierarchical_z", &ModelConfig::hierarchical_z},
      {"shared_embedding", &ModelConfig::shared_embedding},
      {"sn_eps", &ModelConfig::sn_eps},
      {"spectral_norm", &ModelConfig::spectral_norm},
      {"bn_eps", &ModelConfig::bn_eps},
      {"d_wide", &ModelConfig::d_wide},
  };
  return table;
}
}  // namespace

nlohmann::json to_json(const ModelConfig& config) {
  nlohmann::json json = nlohmann::json::object();
  write_config_fields(config, model_fields(), json);
  json["attention"] = attention::to_json(config.attention);
  return json;
}

ModelConfig model_config_from_json(const nlohmann::json& json) {
  if (!json.is_object()) throw std::invalid_argument("model config: expected a JSON object");
  refuse_unknown_config_keys(json, "model", model_fields(), {"attention"});
  // Missing keys take the preset of the resolution (itself read strictly first).
  int64_t resolution = 128;
  read_config_field(json, "model", "resolution", resolution);
  ModelConfig config = ModelConfig::preset(resolution);
  read_config_fields(json, "model", model_fields(), config);
  if (json.contains("attention")) {
    try {
      config.attention = attention::attention_spec_from_json(json.at("attention"));
    } catch (const std::exception& error) {
      throw std::invalid_argument(std::string("model config: attention: ") + error.what());
    }
  }
  config.validate();
  return config;
}

}  // namespace longgan::gan

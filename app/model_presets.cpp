#include "app/model_presets.h"

#include "datasets/packed_format.h"
#include "gan/model_config.h"

namespace longgan::app {

nlohmann::json model_preset(int64_t resolution) {
  const bool supported = resolution == 32 || resolution == 64 || resolution == 128 || resolution == 256;
  gan::ModelConfig model = gan::ModelConfig::preset(supported ? resolution : 32);
  model.resolution = resolution;
  if (resolution <= 64 || !supported) {
    // Small enough to train on a CPU; attention where G's feature map is largest.
    model.ch = 32;
    model.g_attn = {supported ? resolution : 32};
    return gan::to_json(model);
  }
  // Attention over every pixel of G's last block is the point of LongGAN at these sizes; SMYRF
  // keeps it at 1/8 of dense's query-key pairs (4 x 2048 x 512 per 16,384 queries at 128).
  model.ch = 96;
  model.g_attn = {resolution};
  model.d_attn = {};
  model.attention = attention::SmyrfOptions{.hashes = 4, .q_cluster = 2048, .k_cluster = 512};
  model.hierarchical_z = false;
  model.shared_embedding = false;
  model.sn_eps = 1e-6;
  return gan::to_json(model);
}

nlohmann::json resolve_model_section(const nlohmann::json& model, const std::set<std::string>& given,
                                     std::optional<int64_t> data_resolution) {
  int64_t resolution = data_resolution.value_or(32);
  if (given.contains("resolution") && model.contains("resolution") && model["resolution"].is_number_integer()) {
    resolution = model["resolution"].get<int64_t>();
  }
  nlohmann::json resolved = model_preset(resolution);
  for (const std::string& key : given) {
    if (model.contains(key)) resolved[key] = model[key];
  }
  return resolved;
}

std::optional<int64_t> dataset_resolution(const std::string& path) {
  if (path.empty()) return std::nullopt;
  try {
    return datasets::PackedReader(path).header().height;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace longgan::app

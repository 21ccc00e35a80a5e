#pragma once
// How the app lays a trainer's state out in checkpoint files, and what `info` prints of them.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <iosfwd>
#include <map>
#include <string>

#include "checkpoints/checkpoint.h"

namespace longgan::app {

// Groups a flat state by the prefix before the first '.' ("G.blocks.0.w" -> file "G", key
// "blocks.0.w"), so that each network lands in its own file (G.pt, G_ema.pt, D.pt, ...).
// Names without a '.' go to file "misc" under their full name.
std::map<std::string, checkpoints::TensorMap> split_state(const checkpoints::TensorMap& state);
// The inverse of split_state.
checkpoints::TensorMap join_state(const std::map<std::string, checkpoints::TensorMap>& files);

// "G attention at 16x16: smyrf:hashes=2,..." for each block the manifest's model config lists.
void print_attention_blocks(std::ostream& out, const nlohmann::json& manifest);

// The gamma of every attention block in G, G_ema and D, and the branch ratios (||gamma o|| / ||x||)
// last logged at or before the checkpoint's step (its manifest's metrics, else the run's
// metrics.jsonl beside the step directory).
void print_attention_weights(std::ostream& out, const std::filesystem::path& step_dir, const nlohmann::json& manifest);

// Tensor and element counts per checkpoint file.
void print_parameter_counts(std::ostream& out, const std::filesystem::path& step_dir, const nlohmann::json& manifest);

}  // namespace longgan::app

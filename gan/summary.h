#pragma once
// A readable table of a model: blocks, output shapes (per sample), parameters per block, and
// for attention blocks the type and token counts (N queries, M keys).
#include <string>

#include "gan/model_config.h"

namespace longgan::gan {

// Builds G and D on the CPU (the global generator is left as it was) and describes them.
std::string model_summary(const ModelConfig& config);

}  // namespace longgan::gan

#pragma once
// A readable table of a model: blocks, output shapes (per sample), parameters per block, and
// for attention blocks the type and token counts (N queries, M keys).
#include <string>

#include "gan/discriminator.h"
#include "gan/generator.h"
#include "gan/model_config.h"

namespace longgan::gan {

// Builds G and D on the CPU (the global generator is left as it was) and describes them.
std::string model_summary(const ModelConfig& config);
// Describes G and D already built from `config` (e.g. a trainer's), without building others.
std::string model_summary(const ModelConfig& config, const Generator& g, const Discriminator& d);

}  // namespace longgan::gan

#pragma once
// The global random generators of the process (the default CPU generator and, when CUDA is
// present, each device's default CUDA generator) as tensors, for bit-exact resume.
#include "checkpoints/checkpoint.h"

namespace longgan::checkpoints {

// {"cpu": uint8 state, "cuda:0": ..., ...}.
TensorMap capture_rng_state();

// Restores what capture_rng_state returned. CUDA entries are restored when that device exists
// and skipped otherwise (a CPU run resumed on a GPU machine keeps going; exactness needs the
// same devices).
void restore_rng_state(const TensorMap& state);

}  // namespace longgan::checkpoints

#pragma once
// BigGAN-PyTorch's state dicts of G and D <-> the state of LongGAN's Generator and Discriminator
// (docs/BIGGAN_IMPORT.md §2): renamed (blocks.i.0 / blocks.i.1 for residual and attention
// blocks, bn{k}.stored_* for the batch norms' running statistics, output_layer.{0,2}), u0 [1, n]
// <-> u [n], sv0 dropped (written on export), the conditional batch norms' gain/bias weight
// columns permuted ([shared, z chunk] <-> [z chunk, shared]). Exact both ways.
#include <torch/torch.h>

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "checkpoints/torch_file.h"
#include "gan/model_config.h"

namespace longgan::gan {

// A BigGAN-PyTorch file that does not hold the tensors of the model its flags describe. The
// message names the file, the tensor and its shape.
struct BigGanTensorMismatch : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// What an import kept out of the state (for the user: "dropped 41 sv0 (logged sigmas)").
struct BigGanImportNotes {
  int64_t dropped_sigmas = 0;        // sv0: BigGAN's logged sigma, never used by a forward
  int64_t dropped_extra_vectors = 0; // u1.., sv1..: num_G_SVs / num_D_SVs > 1 (only u0 enters the forward)
  int64_t converted_to_float = 0;    // fp16 tensors (--G_fp16 / --D_fp16)
};

// The state (names as module_state of `network`) that makes `network`, built from
// biggan_model_config(flags), compute BigGAN-PyTorch's network whose state dict is `tensors`.
// `file` names the source in errors; every missing, unexpected or misshapen tensor is listed in
// one BigGanTensorMismatch. num_batches_tracked (LongGAN only) is set to 0.
std::map<std::string, at::Tensor> state_from_biggan(const torch::nn::Module& network, const ModelConfig& model,
                                                    const checkpoints::NamedTensors& tensors,
                                                    const std::string& file, BigGanImportNotes* notes = nullptr);

// The inverse: BigGAN-PyTorch's state dict of `network` (its sv0 are the sigmas BigGAN's eval
// computes from the u), which BigGAN-PyTorch's load_state_dict(strict=True) accepts.
checkpoints::NamedTensors state_to_biggan(const torch::nn::Module& network, const ModelConfig& model);

// BigGAN-PyTorch's name of a LongGAN tensor of G or D ("blocks.3.cbn1.bn.running_mean" ->
// "blocks.3.0.bn1.stored_mean"); empty for num_batches_tracked, which BigGAN does not have.
std::string biggan_tensor_name(const std::string& longgan_name);

}  // namespace longgan::gan

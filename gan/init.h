#pragma once
// Weight initialization of G and D (BigGAN's G_init / D_init): every spectrally normalized conv,
// linear and embedding layer and every plain embedding gets its weight from the chosen scheme;
// biases, BN parameters and the power-iteration vectors u keep their construction values.
#include <torch/torch.h>

#include <string>

namespace longgan::gan {

enum class InitKind { ortho, n02, xavier };

// "ortho" | "n02" | "xavier"; std::invalid_argument naming the choices otherwise.
InitKind parse_init(const std::string& name);

// Draws from the global CPU generator (the caller seeds it, as GanTrainer does).
// ortho: orthogonal rows/columns of the [out, -1]-flattened weight; n02: Normal(0, 0.02);
// xavier: Xavier-uniform. Returns the number of weights initialized.
int64_t initialize_weights(torch::nn::Module& module, InitKind kind);

}  // namespace longgan::gan

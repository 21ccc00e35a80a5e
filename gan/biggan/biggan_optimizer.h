#pragma once
// BigGAN-PyTorch's training state as LongGAN's (docs/BIGGAN_IMPORT.md, "Optimizer and training
// settings"): its optimizer files (G_optim.pth, D_optim.pth: torch.optim.Adam state dicts, whose
// parameters are numbered in named_parameters() order) as the named Adam state of LongGAN's
// networks (gan/adam.h), and the training settings of its train.py config.
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "checkpoints/torch_file.h"
#include "gan/model_config.h"
#include "gan/trainer.h"

namespace longgan::gan {

struct BigGanAdam {
  // LongGAN's Adam state of the network: "<parameter>.exp_avg", "<parameter>.exp_avg_sq" and
  // "<parameter>.step" (int64 scalar) for every parameter, names as named_parameters() of it.
  std::map<std::string, at::Tensor> state;
  double lr = 0, beta1 = 0, beta2 = 0, eps = 0;  // the file's param group
  int64_t fresh_parameters = 0;  // parameters without state in the file (never stepped): zeros, step 0
};

// The Adam state of `network` (built from biggan_model_config) from BigGAN-PyTorch's optimizer
// state dict `optimizer` (read from `file`) of the network whose state dict is `weights` (in its
// file's order: parameter i of the optimizer is the i-th entry of `weights` that is a parameter,
// as PyTorch's state_dict lists a module's parameters before its buffers and children). The
// moments go through state_from_biggan's mapping, so renames, reshapes and permuted columns
// follow the weights. std::invalid_argument naming `file` for another optimizer than Adam without
// weight decay or amsgrad, more than one param group, a parameter count that differs from the
// weights', a moment whose shape differs from its parameter's (named).
BigGanAdam adam_state_from_biggan(const torch::nn::Module& network, const ModelConfig& model,
                                  const checkpoints::NamedTensors& weights, const checkpoints::PickleValue& optimizer,
                                  const std::string& file);

// The training settings in a state_dict.pth's "config" (train.py's argparse namespace) that
// LongGAN's TrainConfig has: batch_size -> batch, num_D_steps -> d_steps, G_lr -> lr_g, D_lr ->
// lr_d, G_B1/G_B2 -> beta1/beta2, adam_eps -> eps, ema_decay, ema_start. Sets them in `train`
// and returns "flag -> field" for each one set; std::invalid_argument naming `source` and the
// flag for a value of the wrong kind.
std::vector<std::string> read_biggan_train_settings(const checkpoints::PickleValue& config, const std::string& source,
                                                    TrainConfig& train);

}  // namespace longgan::gan

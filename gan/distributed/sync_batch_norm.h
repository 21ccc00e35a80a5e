#pragma once
// Cross-replica batch norm (BigGAN's synchronized BN): in training, the batch statistics are
// those of the global batch of all ranks (an all-reduce of per-channel sum, sum of squares
// and count in the forward pass, one of the gradient terms in the backward pass), so N ranks
// with batch b compute what one process computes with batch N * b, running statistics
// included. Without a group (or in eval mode) it is torch::nn::BatchNorm2d's forward.
#include <torch/torch.h>

#include "gan/distributed/process_group.h"

namespace longgan::gan {

// bn's forward on x [B, C, H, W], with the batch statistics reduced over `group` when it is
// set and bn is training.
at::Tensor batch_norm_2d(torch::nn::BatchNorm2dImpl& bn, const at::Tensor& x, ProcessGroup* group);

}  // namespace longgan::gan

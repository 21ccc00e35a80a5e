#pragma once
// Named tensors of modules and the checks of a saved state against them: one lister (parameters
// and buffers by name) and one mismatch report for the trainer's resume and for loading G or
// G_ema from a checkpoint.
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace longgan::gan {

// "[2, 3]" (sizes) or "[2, 3] Float" (a tensor: sizes and dtype), for messages.
std::string shape_text(at::IntArrayRef sizes);
std::string shape_text(const at::Tensor& tensor);

// Parameters and buffers of `module` by name (as named_parameters / named_buffers), each name
// prefixed with `prefix`; the tensors are the module's own (not copies).
std::map<std::string, at::Tensor> module_state(const torch::nn::Module& module, const std::string& prefix = "");

// Every difference of `state` from `expected`: "missing NAME SHAPE", "shape mismatch NAME:
// expected SHAPE, got SHAPE", "unexpected NAME SHAPE". Empty when `state` has each name with
// its shape and nothing else.
std::vector<std::string> state_mismatches(const std::map<std::string, at::Tensor>& expected,
                                          const std::map<std::string, at::Tensor>& state);

// Copies `state` into the parameters and buffers of `module`, or throws std::runtime_error
// "WHAT does not match the model config (N names):" listing state_mismatches.
void load_module_state(torch::nn::Module& module, const std::map<std::string, at::Tensor>& state,
                       const std::string& what);

}  // namespace longgan::gan

#include "gan/module_state.h"

#include <sstream>
#include <stdexcept>

namespace longgan::gan {

std::string shape_text(at::IntArrayRef sizes) {
  std::ostringstream text;
  text << sizes;
  return text.str();
}

std::string shape_text(const at::Tensor& tensor) {
  if (!tensor.defined()) return "undefined";
  std::ostringstream text;
  text << tensor.sizes() << " " << tensor.scalar_type();
  return text.str();
}

std::map<std::string, at::Tensor> module_state(const torch::nn::Module& module, const std::string& prefix) {
  std::map<std::string, at::Tensor> state;
  for (const auto& item : module.named_parameters()) state[prefix + item.key()] = item.value();
  for (const auto& item : module.named_buffers()) state[prefix + item.key()] = item.value();
  return state;
}

std::vector<std::string> state_mismatches(const std::map<std::string, at::Tensor>& expected,
                                          const std::map<std::string, at::Tensor>& state) {
  std::vector<std::string> problems;
  for (const auto& [name, tensor] : expected) {
    auto it = state.find(name);
    if (it == state.end()) {
      problems.push_back("missing " + name + " " + shape_text(tensor));
    } else if (!it->second.defined() || it->second.sizes() != tensor.sizes()) {
      problems.push_back("shape mismatch " + name + ": expected " + shape_text(tensor) + ", got " +
                         shape_text(it->second));
    }
  }
  for (const auto& [name, tensor] : state) {
    if (!expected.contains(name)) problems.push_back("unexpected " + name + " " + shape_text(tensor));
  }
  return problems;
}

void load_module_state(torch::nn::Module& module, const std::map<std::string, at::Tensor>& state,
                       const std::string& what) {
  std::map<std::string, at::Tensor> slots = module_state(module);
  const auto problems = state_mismatches(slots, state);
  if (!problems.empty()) {
    std::string text = what + " does not match the model config (" + std::to_string(problems.size()) + " names):";
    for (const auto& problem : problems) text += "\n  " + problem;
    throw std::runtime_error(text);
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, slot] : slots) slot.copy_(state.at(name));
}

}  // namespace longgan::gan

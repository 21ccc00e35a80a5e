#pragma once
// A small Adam (Kingma & Ba, with bias correction) whose whole state is named tensors, so a
// trainer can save and restore it exactly: per parameter "<name>.exp_avg", "<name>.exp_avg_sq"
// and "<name>.step" (int64 scalar).
#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace longgan::gan {

struct AdamOptions {
  double lr = 1e-4;
  double beta1 = 0.0;
  double beta2 = 0.999;
  double eps = 1e-6;
};

class Adam {
 public:
  Adam(std::vector<std::pair<std::string, at::Tensor>> parameters, AdamOptions options);
  void zero_grad();
  // Updates every parameter that has a gradient.
  void step();
  // The live state tensors by name (not copies: writing into them restores a state).
  std::map<std::string, at::Tensor> state() const;

 private:
  struct Slot {
    std::string name;
    at::Tensor param, exp_avg, exp_avg_sq, step;
  };
  std::vector<Slot> slots_;
  AdamOptions options_;
};

}  // namespace longgan::gan

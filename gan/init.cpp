#include "gan/init.h"

#include <stdexcept>

#include "gan/spectral_norm.h"

namespace longgan::gan {

InitKind parse_init(const std::string& name) {
  if (name == "ortho") return InitKind::ortho;
  if (name == "n02") return InitKind::n02;
  if (name == "xavier") return InitKind::xavier;
  throw std::invalid_argument("init: unknown scheme \"" + name + "\"; use ortho, n02 or xavier");
}

namespace {

void init_one(at::Tensor& weight, InitKind kind) {
  torch::NoGradGuard no_grad;
  switch (kind) {
    case InitKind::ortho: torch::nn::init::orthogonal_(weight); break;
    case InitKind::n02: weight.normal_(0.0, 0.02); break;
    case InitKind::xavier: torch::nn::init::xavier_uniform_(weight); break;
  }
}

}  // namespace

int64_t initialize_weights(torch::nn::Module& module, InitKind kind) {
  int64_t count = 0;
  // apply() with a Module& visitor also works for modules that are not held in a shared_ptr.
  module.apply([&](torch::nn::Module& child) {
    at::Tensor* weight = nullptr;
    if (auto* conv = child.as<SNConv2dImpl>()) weight = &conv->weight;
    if (auto* linear = child.as<SNLinearImpl>()) weight = &linear->weight;
    if (auto* embedding = child.as<SNEmbeddingImpl>()) weight = &embedding->weight;
    if (auto* embedding = child.as<torch::nn::EmbeddingImpl>()) weight = &embedding->weight;
    if (weight == nullptr || !weight->defined()) return;
    init_one(*weight, kind);
    ++count;
  });
  return count;
}

}  // namespace longgan::gan

#include "gan/biggan/biggan_tensors.h"

#include <regex>
#include <set>
#include <sstream>

#include "gan/module_state.h"
#include "gan/spectral_norm.h"

namespace longgan::gan {
namespace {

std::vector<std::string> split_name(const std::string& name) {
  std::vector<std::string> parts;
  std::stringstream stream(name);
  for (std::string part; std::getline(stream, part, '.');) parts.push_back(part);
  return parts;
}

std::string join_name(const std::vector<std::string>& parts, size_t from = 0) {
  std::string name;
  for (size_t i = from; i < parts.size(); ++i) name += (name.empty() ? "" : ".") + parts[i];
  return name;
}

// The inside of a residual block: cbn{k}.bn.running_* -> bn{k}.stored_*, cbn{k}.X -> bn{k}.X.
std::string block_inner_name(std::vector<std::string> parts) {
  if (!parts.empty() && parts[0].starts_with("cbn")) {
    parts[0] = parts[0].substr(1);
    if (parts.size() == 3 && parts[1] == "bn") {
      if (parts[2] == "num_batches_tracked") return "";
      if (parts[2] == "running_mean") return parts[0] + ".stored_mean";
      if (parts[2] == "running_var") return parts[0] + ".stored_var";
    }
  }
  return join_name(parts);
}

// A conditional batch norm's gain/bias linear, whose input columns are [z chunk, shared] here.
bool is_permuted_weight(const std::string& longgan_name, const ModelConfig& model) {
  static const std::regex pattern(R"(blocks\.\d+\.cbn\d\.(gain|bias)\.weight)");
  return model.shared_embedding && model.hierarchical_z && std::regex_match(longgan_name, pattern);
}

bool is_u(const std::string& name) { return name.ends_with(".u"); }

// The module prefix of a tensor name ("blocks.0.conv1.u" -> "blocks.0.conv1.").
std::string module_prefix(const std::string& name) { return name.substr(0, name.rfind('.') + 1); }

at::Tensor as_float(const at::Tensor& tensor, BigGanImportNotes* notes) {
  if (!at::isFloatingType(tensor.scalar_type()) || tensor.scalar_type() == at::kFloat) return tensor;
  if (notes && tensor.scalar_type() != at::kDouble) ++notes->converted_to_float;
  return tensor.to(at::kFloat);
}

}  // namespace

std::string biggan_tensor_name(const std::string& longgan_name) {
  std::vector<std::string> parts = split_name(longgan_name);
  if (!parts.empty() && parts.back() == "u") parts.back() = "u0";
  if (parts.size() >= 3 && parts[0] == "blocks") {
    const std::string inner = block_inner_name({parts.begin() + 2, parts.end()});
    return inner.empty() ? "" : "blocks." + parts[1] + ".0." + inner;
  }
  if (parts.size() >= 3 && parts[0] == "attention") return "blocks." + parts[1] + ".1." + join_name(parts, 2);
  if (parts.size() == 2 && parts[0] == "out_bn") {
    if (parts[1] == "weight") return "output_layer.0.gain";
    if (parts[1] == "bias") return "output_layer.0.bias";
    if (parts[1] == "running_mean") return "output_layer.0.stored_mean";
    if (parts[1] == "running_var") return "output_layer.0.stored_var";
    return "";  // num_batches_tracked
  }
  if (!parts.empty() && parts[0] == "out_conv") return "output_layer.2." + join_name(parts, 1);
  return join_name(parts);
}

std::map<std::string, at::Tensor> state_from_biggan(const torch::nn::Module& network, const ModelConfig& model,
                                                    const checkpoints::NamedTensors& tensors, const std::string& file,
                                                    BigGanImportNotes* notes) {
  std::map<std::string, at::Tensor> given;
  for (const auto& [name, tensor] : tensors) given[name] = tensor;
  const int64_t chunk = latent_split(model).chunk;
  std::vector<std::string> problems;
  std::set<std::string> used;
  std::map<std::string, at::Tensor> state;
  for (const auto& [name, like] : module_state(network)) {
    const std::string source = biggan_tensor_name(name);
    if (source.empty()) {
      state[name] = at::zeros_like(like);
      continue;
    }
    std::vector<int64_t> expected = like.sizes().vec();
    if (is_u(name)) expected.insert(expected.begin(), 1);  // u0 [1, n]
    auto it = given.find(source);
    if (it == given.end()) {
      problems.push_back("missing " + source + " " + shape_text(expected));
      continue;
    }
    used.insert(source);
    const at::Tensor& tensor = it->second;
    if (tensor.sizes().vec() != expected) {
      problems.push_back(source + " has shape " + shape_text(tensor.sizes()) + ", this model expects " +
                         shape_text(expected));
      continue;
    }
    at::Tensor value = as_float(tensor, notes).reshape(like.sizes());
    if (is_permuted_weight(name, model)) {
      const int64_t shared = value.size(1) - chunk;
      value = at::cat({value.narrow(1, shared, chunk), value.narrow(1, 0, shared)}, 1);
    }
    state[name] = value.to(like.scalar_type()).contiguous();
  }
  static const std::regex extra_vector(R"(.*\.(u|sv)[1-9]\d*)");
  for (const auto& [name, tensor] : tensors) {
    if (used.contains(name)) continue;
    if (name.ends_with(".sv0") && used.contains(name.substr(0, name.size() - 3) + "u0") && tensor.numel() == 1) {
      if (notes) ++notes->dropped_sigmas;
    } else if (std::regex_match(name, extra_vector) && used.contains(module_prefix(name) + "u0")) {
      if (notes) ++notes->dropped_extra_vectors;
    } else {
      problems.push_back("unexpected " + name + " " + shape_text(tensor.sizes()));
    }
  }
  if (!problems.empty()) {
    std::string message = file + ": " + std::to_string(problems.size()) +
                          " tensors do not match the model the BigGAN-PyTorch flags describe (check resolution, "
                          "G_ch/D_ch, dim_z, shared_dim, hier, G_shared, G_attn/D_attn, n_classes, D_wide):";
    const size_t shown = std::min<size_t>(problems.size(), 20);
    for (size_t i = 0; i < shown; ++i) message += "\n  " + problems[i];
    if (shown < problems.size()) message += "\n  ... and " + std::to_string(problems.size() - shown) + " more";
    throw BigGanTensorMismatch(message);
  }
  return state;
}

checkpoints::NamedTensors state_to_biggan(const torch::nn::Module& network, const ModelConfig& model) {
  torch::NoGradGuard no_grad;
  const std::map<std::string, at::Tensor> state = module_state(network);
  const int64_t chunk = latent_split(model).chunk;
  checkpoints::NamedTensors out;
  for (const auto& [name, tensor] : state) {
    const std::string target = biggan_tensor_name(name);
    if (target.empty()) continue;
    at::Tensor value = tensor.detach().cpu().contiguous();
    if (is_permuted_weight(name, model)) {
      value = at::cat({value.narrow(1, chunk, value.size(1) - chunk), value.narrow(1, 0, chunk)}, 1);
    }
    if (is_u(name)) {
      out.emplace_back(target, value.view({1, -1}).clone());
      // sv0: the sigma BigGAN's eval computes (one step from u0), as BigGAN would have logged it.
      at::Tensor u = value.clone();
      const at::Tensor weight = state.at(module_prefix(name) + "weight").detach().cpu();
      const at::Tensor sigma =
          spectral_sigma(weight, u, 0, model.sn_eps, spectral_norm_style_from_string(model.spectral_norm));
      out.emplace_back(target.substr(0, target.size() - 2) + "sv0", sigma.reshape({1}).clone());
    } else {
      out.emplace_back(target, value.clone());
    }
  }
  return out;
}

}  // namespace longgan::gan

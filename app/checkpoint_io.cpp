#include "app/checkpoint_io.h"

#include <ostream>

#include "attention/attention.h"

namespace longgan::app {

constexpr const char* kMiscFile = "misc";

std::map<std::string, checkpoints::TensorMap> split_state(const checkpoints::TensorMap& state) {
  std::map<std::string, checkpoints::TensorMap> files;
  for (const auto& [name, tensor] : state) {
    auto dot = name.find('.');
    if (dot == std::string::npos || dot == 0) {
      files[kMiscFile].emplace(name, tensor);
    } else {
      files[name.substr(0, dot)].emplace(name.substr(dot + 1), tensor);
    }
  }
  return files;
}

checkpoints::TensorMap join_state(const std::map<std::string, checkpoints::TensorMap>& files) {
  checkpoints::TensorMap state;
  for (const auto& [file, tensors] : files) {
    for (const auto& [name, tensor] : tensors) state.emplace(file == kMiscFile ? name : file + "." + name, tensor);
  }
  return state;
}

void print_attention_blocks(std::ostream& out, const nlohmann::json& manifest) {
  const auto model = manifest.value("model", nlohmann::json::object());
  std::string spec = "(none recorded)";
  if (manifest.contains("attention")) spec = attention::to_string(attention::attention_spec_from_json(manifest["attention"]));
  out << "attention blocks:\n";
  bool any = false;
  for (const char* network : {"G", "D"}) {
    const std::string key = std::string(network == std::string("G") ? "g" : "d") + "_attn";
    if (!model.contains(key)) continue;
    for (const auto& resolution : model[key]) {
      out << "  " << network << " at " << resolution.dump() << "x" << resolution.dump() << ": " << spec << "\n";
      any = true;
    }
  }
  if (!any) out << "  none\n";
}

void print_parameter_counts(std::ostream& out, const std::filesystem::path& step_dir, const nlohmann::json& manifest) {
  out << "tensors per file (parameters and buffers):\n";
  for (const auto& stem : manifest.value("files", nlohmann::json::array())) {
    auto tensors = checkpoints::read_tensors(step_dir, stem.get<std::string>(), manifest);
    int64_t elements = 0;
    for (const auto& [name, tensor] : tensors) elements += tensor.numel();
    out << "  " << stem.get<std::string>() << ".pt: " << tensors.size() << " tensors, " << elements << " values\n";
  }
}

}  // namespace longgan::app

#include "app/checkpoint_io.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
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

namespace {

// The attention weights (keys "attention/...") of the last metrics line at or before `step`.
nlohmann::json last_logged_attention(const std::filesystem::path& step_dir, const nlohmann::json& manifest,
                                     int64_t step) {
  auto attention_of = [](const nlohmann::json& line) {
    nlohmann::json found = nlohmann::json::object();
    if (!line.is_object()) return found;
    for (const auto& item : line.items()) {
      if (item.key().rfind("attention/", 0) == 0 && item.value().is_number()) found[item.key()] = item.value();
    }
    if (!found.empty()) found["step"] = line.value("step", int64_t{0});
    return found;
  };
  nlohmann::json last = attention_of(manifest.value("metrics", nlohmann::json::object()));
  if (!last.empty()) return last;
  std::ifstream in(step_dir.parent_path() / "metrics.jsonl");
  std::string text;
  while (std::getline(in, text)) {
    const nlohmann::json line = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!line.is_object() || line.value("step", int64_t{0}) > step) continue;
    nlohmann::json found = attention_of(line);
    if (!found.empty()) last = found;
  }
  return last;
}

}  // namespace

void print_attention_weights(std::ostream& out, const std::filesystem::path& step_dir, const nlohmann::json& manifest) {
  const auto files = manifest.value("files", nlohmann::json::array());
  std::map<std::string, std::map<std::string, double>> gammas;  // block "G attention.3" -> file -> gamma
  for (const char* file : {"G", "G_ema", "D"}) {
    if (std::find(files.begin(), files.end(), file) == files.end()) continue;
    const std::string network = file == std::string("D") ? "D" : "G";
    for (const auto& [name, tensor] : checkpoints::read_tensors(step_dir, file, manifest)) {
      const std::string suffix = ".gamma";
      if (name.rfind("attention.", 0) != 0 || name.size() < suffix.size() ||
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
        continue;
      }
      gammas[network + " " + name.substr(0, name.size() - suffix.size())][file] = tensor.item<double>();
    }
  }
  if (gammas.empty()) return;
  const nlohmann::json logged = last_logged_attention(step_dir, manifest, manifest.value("step", int64_t{0}));
  out << "attention weights (gamma of each block; branch: ||gamma o(attn)|| / ||x||, the share the attention adds "
         "to the block's input";
  if (logged.contains("step")) {
    out << ", on the training batch of step " << logged["step"].get<int64_t>() << "):\n";
  } else {
    out << "; none logged: train logs it every --log-every steps):\n";
  }
  char number[32];
  for (const auto& [block, per_file] : gammas) {
    const std::string network = block.substr(0, 1), name = block.substr(2);
    out << "  " << block << ": gamma";
    for (const auto& [file, gamma] : per_file) {
      std::snprintf(number, sizeof(number), "%.4g", gamma);
      out << " " << file << " " << number;
    }
    const std::string key = "attention/" + network + "/" + name + "/branch_ratio";
    if (logged.contains(key)) {
      std::snprintf(number, sizeof(number), "%.4g", logged[key].get<double>());
      out << "; branch " << number;
    }
    out << "\n";
  }
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

#include "app/run_config.h"

#include <charconv>
#include <fstream>
#include <sstream>

#include "app/cli.h"
#include "attention/attention.h"

namespace longgan::app {
namespace {

int64_t parse_integer(const std::string& flag, std::string_view text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    throw UsageError("--" + flag + " needs an integer, got '" + std::string(text) + "'");
  }
  return value;
}

std::string known_keys(const nlohmann::json& object) {
  std::string keys;
  for (const auto& [key, value] : object.items()) keys += (keys.empty() ? "" : ", ") + key;
  return keys;
}

}  // namespace

void add_config_flags(cxxopts::Options& options, const std::string& group, const std::vector<ConfigFlag>& flags) {
  auto adder = options.add_options(group);
  for (const auto& flag : flags) adder(flag.flag, flag.help, cxxopts::value<std::string>());
}

nlohmann::json read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open config file '" + path.string() + "'");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("config file '" + path.string() + "' is not valid JSON: " + e.what());
  }
}

void overlay_config(nlohmann::json& config, const nlohmann::json& overlay, const std::string& source) {
  if (!overlay.is_object()) throw UsageError(source + ": expected a JSON object with sections " + known_keys(config));
  for (const auto& [section, values] : overlay.items()) {
    if (!config.contains(section)) {
      throw UsageError(source + ": unknown section '" + section + "'; known sections: " + known_keys(config));
    }
    if (!values.is_object()) throw UsageError(source + ": section '" + section + "' must be a JSON object");
    for (const auto& [key, value] : values.items()) {
      if (!config[section].contains(key)) {
        throw UsageError(source + ": unknown field '" + section + "." + key + "'; known fields: " +
                         known_keys(config[section]));
      }
      // A whole number where the default is a real number (`"lr_g": 1`) stays a real number, so
      // that a flag over it later parses as one (--lr-g 5e-5).
      const bool real = config[section][key].is_number_float() && value.is_number_integer();
      config[section][key] = real ? nlohmann::json(value.get<double>()) : value;
    }
  }
}

nlohmann::json parse_flag_value(const std::string& flag, const std::string& text, const nlohmann::json& like) {
  if (like.is_boolean()) {
    if (text == "true" || text == "1" || text == "on") return true;
    if (text == "false" || text == "0" || text == "off") return false;
    throw UsageError("--" + flag + " needs true or false, got '" + text + "'");
  }
  if (like.is_number_integer()) return parse_integer(flag, text);
  if (like.is_number()) {
    try {
      size_t used = 0;
      double value = std::stod(text, &used);
      if (used == text.size()) return value;
    } catch (const std::exception&) {
    }
    throw UsageError("--" + flag + " needs a number, got '" + text + "'");
  }
  if (like.is_array()) {
    nlohmann::json list = nlohmann::json::array();
    std::stringstream items(text);
    std::string item;
    while (std::getline(items, item, ',')) {
      if (!item.empty()) list.push_back(parse_integer(flag, item));
    }
    return list;
  }
  if (like.is_object() && like.contains("type")) {
    try {
      return attention::to_json(attention::parse_attention_spec(text));
    } catch (const std::invalid_argument& e) {
      throw UsageError("--" + flag + ": " + e.what());
    }
  }
  return text;
}

void apply_config_flags(nlohmann::json& config, const cxxopts::ParseResult& args, const std::vector<ConfigFlag>& flags) {
  for (const auto& flag : flags) {
    if (!args.count(flag.flag)) continue;
    nlohmann::json& slot = config[flag.section][flag.key];
    slot = parse_flag_value(flag.flag, args[flag.flag].as<std::string>(), slot);
  }
}

const ConfigFlag* find_config_flag(std::initializer_list<const std::vector<ConfigFlag>*> tables,
                                   std::string_view section, std::string_view key) {
  for (const auto* flags : tables) {
    for (const ConfigFlag& flag : *flags) {
      if (flag.section == section && flag.key == key) return &flag;
    }
  }
  return nullptr;
}

}  // namespace longgan::app

#pragma once
// The effective configuration of a command: defaults (each section's struct serialized to JSON),
// overlaid by a JSON config file, overlaid by command-line flags. One table maps each flag to its
// section and key; a flag's text is parsed as the kind of value its default holds (integer,
// number, boolean, string, list of integers, or an attention spec "type:key=value,...").
#include <cxxopts.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace longgan::app {

struct ConfigFlag {
  std::string flag;     // "g-attn" (without dashes)
  std::string section;  // "model"
  std::string key;      // "G_attn"
  std::string help;
};

// Adds every flag as a string-valued option of `group`.
void add_config_flags(cxxopts::Options& options, const std::string& group, const std::vector<ConfigFlag>& flags);

// Parses a JSON file; std::runtime_error naming the file on failure.
nlohmann::json read_json_file(const std::filesystem::path& path);

// Copies the sections of `overlay` into `config`. Every section and key of `overlay` must
// exist in `config` (UsageError naming `source`, the key and the known keys otherwise). A whole
// number given for a real-valued key is stored as a real number.
void overlay_config(nlohmann::json& config, const nlohmann::json& overlay, const std::string& source);

// Sets config[section][key] for every flag given on the command line (UsageError on bad values).
void apply_config_flags(nlohmann::json& config, const cxxopts::ParseResult& args, const std::vector<ConfigFlag>& flags);

// The flag of `tables` that sets config[section][key] (the first one, in table order); nullptr when
// no flag does. Messages name the flag of a field with it.
const ConfigFlag* find_config_flag(std::initializer_list<const std::vector<ConfigFlag>*> tables,
                                   std::string_view section, std::string_view key);

// Parses flag text as the same kind of JSON value as `like`; UsageError naming --flag.
nlohmann::json parse_flag_value(const std::string& flag, const std::string& text, const nlohmann::json& like);

}  // namespace longgan::app

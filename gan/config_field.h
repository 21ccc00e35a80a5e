#pragma once
// One strict reader for the fields of every config section (model, train): the JSON value must be
// of the field's kind exactly (an integer field refuses 96.5 and "96", a boolean refuses 1), and
// the error names the section, the field, the value and the kind expected.
//
// A section is described once, by a table of its fields (key and member); writing it as JSON,
// reading it back strictly and refusing unknown keys all come from that table.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

namespace longgan::gan {

namespace detail {
template <class Field>
bool json_is_kind_of(const nlohmann::json& value) {
  if constexpr (std::is_same_v<Field, std::string>) return value.is_string();
  else if constexpr (std::is_same_v<Field, bool>) return value.is_boolean();
  else if constexpr (std::is_floating_point_v<Field>) return value.is_number();
  else if constexpr (std::is_unsigned_v<Field>) return value.is_number_unsigned();
  else if constexpr (std::is_integral_v<Field>) return value.is_number_integer();
  else if constexpr (std::is_same_v<Field, std::vector<int64_t>>) {
    if (!value.is_array()) return false;
    for (const auto& item : value) {
      if (!item.is_number_integer()) return false;
    }
    return true;
  } else static_assert(sizeof(Field) == 0, "no JSON kind for this config field type");
}

template <class Field>
const char* kind_name() {
  if constexpr (std::is_same_v<Field, std::string>) return "a string";
  else if constexpr (std::is_same_v<Field, bool>) return "true or false";
  else if constexpr (std::is_floating_point_v<Field>) return "a number";
  else if constexpr (std::is_unsigned_v<Field>) return "a non-negative integer";
  else if constexpr (std::is_integral_v<Field>) return "an integer";
  else return "a list of integers";
}
}  // namespace detail

// Sets `field` from json[key] when present; std::invalid_argument
// "<section> config: <key>: wrong type (got <value>, expected <kind>)" otherwise.
template <class Field>
void read_config_field(const nlohmann::json& json, const std::string& section, const char* key, Field& field) {
  if (!json.contains(key)) return;
  const nlohmann::json& value = json.at(key);
  if (!detail::json_is_kind_of<Field>(value)) {
    throw std::invalid_argument(section + " config: " + key + ": wrong type (got " + value.dump() + ", expected " +
                                detail::kind_name<Field>() + ")");
  }
  value.get_to(field);
}

// One field of a config struct: its JSON key and the member that holds it.
template <class Config>
struct ConfigField {
  using Member = std::variant<int64_t Config::*, uint64_t Config::*, double Config::*, bool Config::*,
                              std::string Config::*, std::vector<int64_t> Config::*>;
  const char* key;
  Member member;
};

// Every field of `table` into `out` (keys as in the table).
template <class Config>
void write_config_fields(const Config& config, const std::vector<ConfigField<Config>>& table, nlohmann::json& out) {
  for (const auto& field : table) {
    std::visit([&](auto member) { out[field.key] = config.*member; }, field.member);
  }
}

// The fields of `table` present in `json` into `config`, strictly (read_config_field).
template <class Config>
void read_config_fields(const nlohmann::json& json, const std::string& section,
                        const std::vector<ConfigField<Config>>& table, Config& config) {
  for (const auto& field : table) {
    std::visit([&](auto member) { read_config_field(json, section, field.key, config.*member); }, field.member);
  }
}

// std::invalid_argument "<section> config: unknown key "K"; known keys: ..." for a key of `json`
// that is neither in `table` nor in `other_keys` (fields read by hand, e.g. the attention spec).
template <class Config>
void refuse_unknown_config_keys(const nlohmann::json& json, const std::string& section,
                                const std::vector<ConfigField<Config>>& table,
                                const std::vector<std::string>& other_keys = {}) {
  std::vector<std::string> known(other_keys);
  for (const auto& field : table) known.emplace_back(field.key);
  for (const auto& [key, value] : json.items()) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::sort(known.begin(), known.end());
    std::string names;
    for (const auto& k : known) names += (names.empty() ? "" : ", ") + k;
    throw std::invalid_argument(section + " config: unknown key \"" + key + "\"; known keys: " + names);
  }
}

}  // namespace longgan::gan

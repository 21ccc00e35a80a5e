#pragma once
// One strict reader for the fields of every config section (model, train): the JSON value must be
// of the field's kind exactly (an integer field refuses 96.5 and "96", a boolean refuses 1), and
// the error names the section, the field, the value and the kind expected.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
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

}  // namespace longgan::gan

#include "attention/attention.h"

#include "attention/autocast_off.h"

#include <algorithm>
#include <charconv>
#include <sstream>
#include <stdexcept>

namespace longgan::attention {
namespace {

// The options of each type as (name, field) pairs: the one table that parsing, printing and
// JSON all read, so the three cannot drift apart.
template <class F> void for_each_field(DenseOptions&, F&&) {}
template <class F> void for_each_field(CombinerAxialOptions&, F&&) {}
template <class F> void for_each_field(NoneOptions&, F&&) {}
template <class F> void for_each_field(SmyrfOptions& o, F&& f) {
  f("hashes", o.hashes);
  f("q_cluster", o.q_cluster);
  f("k_cluster", o.k_cluster);
}
template <class F> void for_each_field(ClusteredOptions& o, F&& f) {
  f("clusters", o.clusters);
  f("bits", o.bits);
  f("iterations", o.iterations);
  f("hash_bias", o.hash_bias);
}
template <class F> void for_each_field(ImprovedClusteredOptions& o, F&& f) {
  for_each_field(o.clustering, f);
  f("topk", o.topk);
}
template <class T, class F> void for_each_field(const T& o, F&& f) {
  for_each_field(const_cast<T&>(o), [&](const char* name, auto& value) {
    f(name, static_cast<const std::decay_t<decltype(value)>&>(value));
  });
}

std::string field_names(const AttentionSpec& spec) {
  std::string names;
  std::visit([&](const auto& o) {
    for_each_field(o, [&](const char* name, const auto&) {
      names += names.empty() ? "" : ", ";
      names += name;
    });
  }, spec);
  return names.empty() ? "none" : names;
}

AttentionSpec default_spec(std::string_view name) {
  const auto& names = attention_type_names();
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] != name) continue;
    switch (i) {
      case 0: return DenseOptions{};
      case 1: return SmyrfOptions{};
      case 2: return ClusteredOptions{};
      case 3: return ImprovedClusteredOptions{};
      case 4: return CombinerAxialOptions{};
      default: return NoneOptions{};
    }
  }
  std::string known;
  for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("unknown attention type '" + std::string(name) + "'; known types: " + known);
}

int64_t parse_int(std::string_view text, std::string_view key, std::string_view type) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    throw std::invalid_argument("attention " + std::string(type) + ": option '" + std::string(key) +
                                "' needs an integer, got '" + std::string(text) + "'");
  }
  return value;
}

bool parse_bool(std::string_view text, std::string_view key, std::string_view type) {
  if (text == "true" || text == "1") return true;
  if (text == "false" || text == "0") return false;
  throw std::invalid_argument("attention " + std::string(type) + ": option '" + std::string(key) +
                              "' needs true or false, got '" + std::string(text) + "'");
}

// Sets option `key` of `spec` with `assign(field)`; unknown keys name the allowed ones.
template <class Assign>
void set_field(AttentionSpec& spec, std::string_view key, Assign&& assign) {
  bool found = false;
  std::visit([&](auto& o) {
    for_each_field(o, [&](const char* name, auto& field) {
      if (key == name) {
        assign(field);
        found = true;
      }
    });
  }, spec);
  if (!found) {
    throw std::invalid_argument("attention " + type_name(spec) + ": unknown option '" + std::string(key) +
                                "'; options: " + field_names(spec));
  }
}

void check_tensor(const at::Tensor& t, const char* name) {
  if (!t.defined()) throw std::invalid_argument(std::string("attention: ") + name + " is undefined");
  if (t.dim() != 4) {
    throw std::invalid_argument(std::string("attention: ") + name + " must be 4-D [B, H, length, dim], got " +
                                std::to_string(t.dim()) + "-D");
  }
  if (t.scalar_type() != at::kFloat && t.scalar_type() != at::kBFloat16 && t.scalar_type() != at::kDouble &&
      t.scalar_type() != at::kHalf) {
    throw std::invalid_argument(std::string("attention: ") + name + " must be float32, bfloat16, float16 or float64");
  }
}

}  // namespace

const std::vector<std::string>& attention_type_names() {
  static const std::vector<std::string> names = {"dense", "smyrf", "clustered", "improved_clustered",
                                                 "combiner_axial", "none"};
  return names;
}

std::string type_name(const AttentionSpec& spec) { return attention_type_names().at(spec.index()); }

AttentionSpec parse_attention_spec(std::string_view text) {
  auto colon = text.find(':');
  AttentionSpec spec = default_spec(text.substr(0, colon));
  if (colon != std::string_view::npos) {
    std::string_view rest = text.substr(colon + 1);
    while (!rest.empty()) {
      auto comma = rest.find(',');
      std::string_view item = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      auto eq = item.find('=');
      if (eq == std::string_view::npos || eq == 0) {
        throw std::invalid_argument("attention " + type_name(spec) + ": expected key=value, got '" +
                                    std::string(item) + "' in '" + std::string(text) + "'");
      }
      std::string_view key = item.substr(0, eq), value = item.substr(eq + 1);
      std::string type = type_name(spec);
      set_field(spec, key, [&](auto& field) {
        if constexpr (std::is_same_v<std::decay_t<decltype(field)>, bool>) {
          field = parse_bool(value, key, type);
        } else {
          field = parse_int(value, key, type);
        }
      });
    }
  }
  validate(spec);
  return spec;
}

std::string to_string(const AttentionSpec& spec) {
  std::ostringstream out;
  out << type_name(spec);
  char sep = ':';
  std::visit([&](const auto& o) {
    for_each_field(o, [&](const char* name, const auto& value) {
      out << sep << name << '=';
      if constexpr (std::is_same_v<std::decay_t<decltype(value)>, bool>) {
        out << (value ? "true" : "false");
      } else {
        out << value;
      }
      sep = ',';
    });
  }, spec);
  return out.str();
}

nlohmann::json to_json(const AttentionSpec& spec) {
  nlohmann::json json = {{"type", type_name(spec)}};
  std::visit([&](const auto& o) {
    for_each_field(o, [&](const char* name, const auto& value) { json[name] = value; });
  }, spec);
  return json;
}

AttentionSpec attention_spec_from_json(const nlohmann::json& json) {
  if (!json.is_object() || !json.contains("type") || !json["type"].is_string()) {
    throw std::invalid_argument("attention JSON must be an object with a string field 'type', got " + json.dump());
  }
  AttentionSpec spec = default_spec(json["type"].get<std::string>());
  for (const auto& item : json.items()) {
    // Named references, not a structured binding: clang before 16 cannot capture those in lambdas.
    const std::string& key = item.key();
    const nlohmann::json& value = item.value();
    if (key == "type") continue;
    set_field(spec, key, [&](auto& field) {
      using Field = std::decay_t<decltype(field)>;
      bool ok = std::is_same_v<Field, bool> ? value.is_boolean() : value.is_number_integer();
      if (!ok) {
        throw std::invalid_argument("attention " + type_name(spec) + ": JSON field '" + key + "' must be " +
                                    (std::is_same_v<Field, bool> ? "a boolean" : "an integer") + ", got " +
                                    value.dump());
      }
      field = value.get<Field>();
    });
  }
  validate(spec);
  return spec;
}

void validate(const AttentionSpec& spec) {
  std::visit([](const auto& o) { o.validate(); }, spec);
}

void validate_lengths(const AttentionSpec& spec, int64_t n, int64_t m) {
  std::visit([&](const auto& o) { o.validate_lengths(n, m); }, spec);
}

AttentionSpec fitted_to_lengths(const AttentionSpec& spec, int64_t n, int64_t m) {
  AttentionSpec fitted = spec;
  if (auto* smyrf = std::get_if<SmyrfOptions>(&fitted)) {
    // At least 8 clusters, at most 2048 queries each (the BigGAN/CelebA-HQ budget); fewer where
    // no uniform cluster sizes cut both lengths into that many (12 keys make 6 or 12, never 8).
    auto ceil_div = [](int64_t a, int64_t b) { return (a + b - 1) / b; };
    int64_t clusters = std::min({std::max<int64_t>(8, ceil_div(n, 2048)), n, m});
    while (ceil_div(n, ceil_div(n, clusters)) != clusters || ceil_div(m, ceil_div(m, clusters)) != clusters) {
      --clusters;  // 1 always fits
    }
    smyrf->q_cluster = ceil_div(n, clusters);
    smyrf->k_cluster = ceil_div(m, clusters);
  } else if (auto* clustered = std::get_if<ClusteredOptions>(&fitted)) {
    clustered->clusters = std::min<int64_t>(clustered->clusters, n);
  } else if (auto* improved = std::get_if<ImprovedClusteredOptions>(&fitted)) {
    improved->clustering.clusters = std::min<int64_t>(improved->clustering.clusters, n);
    improved->topk = std::min<int64_t>(improved->topk, m);
  }
  return fitted;
}

AttentionSpec fit_if_bare(const AttentionSpec& spec, int64_t n, int64_t m) {
  try {
    validate_lengths(spec, n, m);
    return spec;
  } catch (const std::invalid_argument&) {
    const bool bare = to_string(spec) == to_string(parse_attention_spec(type_name(spec)));
    return bare ? fitted_to_lengths(spec, n, m) : spec;
  }
}

at::Tensor attend(const AttentionSpec& spec, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                  const CallOptions& call) {
  check_tensor(q, "q");
  check_tensor(k, "k");
  check_tensor(v, "v");
  auto same = [](const at::Tensor& a, const at::Tensor& b, int d) { return a.size(d) == b.size(d); };
  if (!same(q, k, 0) || !same(q, v, 0) || !same(q, k, 1) || !same(q, v, 1)) {
    throw std::invalid_argument("attention: q, k, v must share batch and heads (dims 0 and 1)");
  }
  if (!same(q, k, 3)) {
    throw std::invalid_argument("attention: q and k must have the same feature size, got " +
                                std::to_string(q.size(3)) + " and " + std::to_string(k.size(3)));
  }
  if (!same(k, v, 2)) {
    throw std::invalid_argument("attention: k and v must have the same length, got " + std::to_string(k.size(2)) +
                                " and " + std::to_string(v.size(2)));
  }
  if (q.device() != k.device() || q.device() != v.device() || q.scalar_type() != k.scalar_type() ||
      q.scalar_type() != v.scalar_type()) {
    throw std::invalid_argument("attention: q, k, v must share device and dtype");
  }
  if (q.size(2) == 0 || k.size(2) == 0) throw std::invalid_argument("attention: empty query or key sequence");
  validate(spec);
  validate_lengths(spec, q.size(2), k.size(2));
  // Hashing, clustering and merges in fp32 and the kernels in the inputs' dtype, whatever autocast
  // the caller runs under (a bf16 hash at 65k tokens orders long runs of ties by position).
  const AutocastOff autocast_off;
  return std::visit([&](const auto& o) -> at::Tensor {
    using T = std::decay_t<decltype(o)>;
    if constexpr (std::is_same_v<T, DenseOptions>) return dense_attention(q, k, v, o, call);
    else if constexpr (std::is_same_v<T, SmyrfOptions>) return smyrf_attention(q, k, v, o, call);
    else if constexpr (std::is_same_v<T, ClusteredOptions>) return clustered_attention(q, k, v, o, call);
    else if constexpr (std::is_same_v<T, ImprovedClusteredOptions>)
      return improved_clustered_attention(q, k, v, o, call);
    else if constexpr (std::is_same_v<T, CombinerAxialOptions>) return combiner_axial_attention(q, k, v, o, call);
    else return none_attention(q, k, v, o, call);
  }, spec);
}

}  // namespace longgan::attention

#pragma once
// The attention library's one entry point: every type behind one function shape.
//   q [B, H, N, Dqk], k [B, H, M, Dqk], v [B, H, M, Dv] -> [B, H, N, Dv]
// Types are options structs held in an AttentionSpec; specs parse from "name:key=value,..."
// strings (e.g. "smyrf:hashes=4,q_cluster=2048") and round-trip through JSON.
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "attention/call_options.h"
#include "attention/clustered.h"
#include "attention/combiner_axial.h"
#include "attention/dense.h"
#include "attention/none.h"
#include "attention/smyrf.h"

namespace longgan::attention {

using AttentionSpec = std::variant<DenseOptions, SmyrfOptions, ClusteredOptions,
                                   ImprovedClusteredOptions, CombinerAxialOptions, NoneOptions>;

// "dense", "smyrf", "clustered", "improved_clustered", "combiner_axial", "none" (the ablation:
// zero output, see none.h).
const std::vector<std::string>& attention_type_names();
std::string type_name(const AttentionSpec& spec);

// Parses "name" or "name:key=value,key=value". Throws std::invalid_argument naming the
// unknown type, unknown key, malformed value or out-of-range option and the allowed values.
AttentionSpec parse_attention_spec(std::string_view text);
// Canonical string with every option: parse_attention_spec(to_string(s)) == s.
std::string to_string(const AttentionSpec& spec);

// {"type": "smyrf", "hashes": 4, ...}; from_json rejects unknown keys like the parser.
nlohmann::json to_json(const AttentionSpec& spec);
AttentionSpec attention_spec_from_json(const nlohmann::json& json);

// Static option checks (std::invalid_argument naming the option and its allowed range).
void validate(const AttentionSpec& spec);
// Checks the spec against the lengths of a call (cluster sizes vs N and M, ...).
void validate_lengths(const AttentionSpec& spec, int64_t n, int64_t m);

// The spec with its size options (SMYRF cluster sizes, cluster counts, top-k) fitted to the
// lengths N and M: at least 8 clusters of at most 2,048 queries for SMYRF (uniform sizes that cut
// both lengths into the same count), cluster counts and top-k at most the lengths. The other
// options are kept. Used where a bare type name is given (the bench, bare --attention names).
AttentionSpec fitted_to_lengths(const AttentionSpec& spec, int64_t n, int64_t m);
// For a model's attention block: `spec` when it fits N and M; a spec equal to its type's
// defaults (a bare type name) that does not fit is fitted_to_lengths; any other spec is returned
// as given (validate_lengths then names what does not fit).
AttentionSpec fit_if_bare(const AttentionSpec& spec, int64_t n, int64_t m);

// True for the ablation `none`.
inline bool is_none(const AttentionSpec& spec) { return std::holds_alternative<NoneOptions>(spec); }

// Checks shapes, devices and dtypes of q, k, v and the spec, then runs the type.
at::Tensor attend(const AttentionSpec& spec, const at::Tensor& q, const at::Tensor& k,
                  const at::Tensor& v, const CallOptions& call = {});

}  // namespace longgan::attention

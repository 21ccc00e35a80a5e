#pragma once
// The model `train` and `info --model` build for a resolution when the user leaves fields unset:
// one preset per resolution (README: Presets), the user's fields laid over it field by field.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <set>
#include <string>

namespace longgan::app {

// The preset model section for `resolution` (32, 64, 128, 256):
//   32, 64: small CPU models (ch 32) with G's attention at G's top resolution, dense;
//   128, 256: BigGAN's ch 96 with G's attention at the full resolution (16,384 / 65,536 tokens)
//             as SMYRF 4 hashes, clusters 2048 queries / 512 keys (the SMYRF paper's CelebA-HQ
//             choices, configs/smyrf_celebahq128.json), no D attention.
// Another resolution gives the 32 preset with that resolution, for validation to refuse by name.
nlohmann::json model_preset(int64_t resolution);

// The model section to build: the preset of the resolution (the given one, else the data's, else
// 32) with every field in `given` taken from `model` (the fields the user, a config file or the
// resumed run set).
nlohmann::json resolve_model_section(const nlohmann::json& model, const std::set<std::string>& given,
                                     std::optional<int64_t> data_resolution);

// The side of the images of a dataset file, or nothing when it cannot be read (the reader's own
// error comes later, where the data is opened).
std::optional<int64_t> dataset_resolution(const std::string& path);

}  // namespace longgan::app

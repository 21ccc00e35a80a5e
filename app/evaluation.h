#pragma once
// FID and KID as `longgan metrics` and `train --eval-every` compute them: the Inception network,
// the features of generated images, the scores, and progress on stderr.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "app/progress.h"
#include "datasets/structure_scores.h"
#include "gan/fid/fid.h"
#include "gan/fid/image_set_features.h"
#include "gan/fid/inception.h"

namespace longgan::app {

// The network of `file`, or of gan::find_inception_network() when `file` is empty.
std::unique_ptr<gan::InceptionNetwork> open_inception(const std::string& file, const torch::Device& device);

struct Scores {
  double fid = 0;
  gan::KidResult kid;
  int64_t n_real = 0, n_fake = 0;
  std::optional<datasets::StructureScores> structure;  // of the fake images, where measured
  // {"fid", "kid_mean", "kid_std", "kid_subsets", "kid_subset_size", "n_real", "n_fake"}, and
  // "structure" (structure_json) where measured.
  nlohmann::json to_json() const;
};

// {"synthetic_rules", "tolerance", "images", "mirror_error", and with the synthetic rules
// "mirror_kept", "corner_error", "corner_kept"}.
nlohmann::json structure_json(const datasets::StructureScores& scores);
// The flat scalars of train's log: "mirror_error" (and "mirror_kept", "corner_error",
// "corner_kept" with the synthetic rules), each under `prefix`.
std::vector<std::pair<std::string, double>> structure_scalars(const datasets::StructureScores& scores,
                                                              const std::string& prefix = "");
// The table of rows (name, scores): the synthetic rules' errors and kept shares, or the mirror
// statistic alone, with a line that says which and the tolerance.
void print_structure_table(std::ostream& out, const std::vector<std::pair<std::string, datasets::StructureScores>>& rows);

// FID of the fake features against the real statistics, KID between the feature sets.
Scores score(const gan::FeatureStats& real_stats, const at::Tensor& real_features, const at::Tensor& fake_features,
             const gan::KidOptions& kid = {});

// Images in [-1, 1] for latents z, the first of which is number `first` of the whole set.
using GenerateImages = std::function<at::Tensor(const at::Tensor& z, int64_t first)>;

// Features [n, 2048] of the images `generate` makes from latents [n, Z], in batches of the
// network's batch size; images are quantized as the sample PNGs are (gan::quantize_images), and
// `scorer`, when given, scores each quantized batch.
at::Tensor generated_features(gan::InceptionNetwork& network, const at::Tensor& latents, const GenerateImages& generate,
                              const gan::FeatureProgress& progress = {}, datasets::StructureScorer* scorer = nullptr);

}  // namespace longgan::app

#pragma once
// FID and KID as `longgan metrics` and `train --eval-every` compute them: the Inception network,
// the features of generated images, the scores, and progress on stderr.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "app/progress.h"
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
  // {"fid", "kid_mean", "kid_std", "kid_subsets", "kid_subset_size", "n_real", "n_fake"}
  nlohmann::json to_json() const;
};

// FID of the fake features against the real statistics, KID between the feature sets.
Scores score(const gan::FeatureStats& real_stats, const at::Tensor& real_features, const at::Tensor& fake_features,
             const gan::KidOptions& kid = {});

// Images in [-1, 1] for latents z, the first of which is number `first` of the whole set.
using GenerateImages = std::function<at::Tensor(const at::Tensor& z, int64_t first)>;

// Features [n, 2048] of the images `generate` makes from latents [n, Z], in batches of the
// network's batch size; images are quantized as the sample PNGs are (gan::quantize_images).
at::Tensor generated_features(gan::InceptionNetwork& network, const at::Tensor& latents, const GenerateImages& generate,
                              const gan::FeatureProgress& progress = {});

}  // namespace longgan::app

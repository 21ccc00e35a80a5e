#include "app/evaluation.h"

#include <memory>
#include <optional>

#include "app/progress.h"

#include <algorithm>
#include <vector>

namespace longgan::app {

std::unique_ptr<gan::InceptionNetwork> open_inception(const std::string& file, const torch::Device& device) {
  return std::make_unique<gan::InceptionNetwork>(file.empty() ? gan::find_inception_network() : std::filesystem::path(file),
                                                 device);
}

nlohmann::json Scores::to_json() const {
  return {{"fid", fid},          {"kid_mean", kid.mean}, {"kid_std", kid.std}, {"kid_subsets", kid.subsets},
          {"kid_subset_size", kid.subset_size}, {"n_real", n_real}, {"n_fake", n_fake}};
}

Scores score(const gan::FeatureStats& real_stats, const at::Tensor& real_features, const at::Tensor& fake_features,
             const gan::KidOptions& kid) {
  Scores scores;
  scores.fid = gan::frechet_distance(real_stats, gan::feature_stats(fake_features));
  scores.kid = gan::kernel_inception_distance(real_features, fake_features, kid);
  scores.n_real = real_features.size(0);
  scores.n_fake = fake_features.size(0);
  return scores;
}

at::Tensor generated_features(gan::InceptionNetwork& network, const at::Tensor& latents, const GenerateImages& generate,
                              const gan::FeatureProgress& progress) {
  const int64_t n = latents.size(0);
  std::vector<at::Tensor> parts;
  for (int64_t start = 0; start < n; start += network.batch()) {
    const int64_t size = std::min(network.batch(), n - start);
    parts.push_back(network.features(gan::quantize_images(generate(latents.narrow(0, start, size), start))));
    if (progress) progress(start + size, n);
  }
  return at::cat(parts);
}

}  // namespace longgan::app

#include "app/evaluation.h"

#include <memory>
#include <optional>

#include "app/progress.h"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace longgan::app {

std::unique_ptr<gan::InceptionNetwork> open_inception(const std::string& file, const torch::Device& device) {
  return std::make_unique<gan::InceptionNetwork>(file.empty() ? gan::find_inception_network() : std::filesystem::path(file),
                                                 device);
}

nlohmann::json Scores::to_json() const {
  nlohmann::json json = {{"fid", fid},          {"kid_mean", kid.mean}, {"kid_std", kid.std}, {"kid_subsets", kid.subsets},
                         {"kid_subset_size", kid.subset_size}, {"n_real", n_real}, {"n_fake", n_fake}};
  if (structure) json["structure"] = structure_json(*structure);
  return json;
}

nlohmann::json structure_json(const datasets::StructureScores& scores) {
  nlohmann::json json = {{"synthetic_rules", scores.synthetic}, {"tolerance", scores.tolerance},
                         {"images", scores.images}};
  for (const auto& [name, value] : structure_scalars(scores)) json[name] = value;
  return json;
}

std::vector<std::pair<std::string, double>> structure_scalars(const datasets::StructureScores& scores,
                                                              const std::string& prefix) {
  std::vector<std::pair<std::string, double>> scalars = {{prefix + "mirror_error", scores.mirror_error}};
  if (scores.synthetic) {
    scalars.insert(scalars.end(), {{prefix + "mirror_kept", scores.mirror_kept},
                                   {prefix + "corner_error", scores.corner_error},
                                   {prefix + "corner_kept", scores.corner_kept}});
  }
  return scalars;
}

void print_structure_table(std::ostream& out,
                           const std::vector<std::pair<std::string, datasets::StructureScores>>& rows) {
  if (rows.empty()) return;
  const bool synthetic = rows.front().second.synthetic;
  char line[256];
  if (synthetic) {
    std::snprintf(line, sizeof(line),
                  "long-range rules of the synthetic data (mean |error| in levels of 255; kept: share of images "
                  "within %.1f levels):\n",
                  rows.front().second.tolerance);
    out << line;
    std::snprintf(line, sizeof(line), "  %-50s %8s %14s %7s %14s %7s\n", "images", "n", "mirror error", "kept",
                  "corner error", "kept");
    out << line;
    for (const auto& [name, s] : rows) {
      std::snprintf(line, sizeof(line), "  %-50s %8lld %14.3f %6.1f%% %14.3f %6.1f%%\n", name.c_str(),
                    static_cast<long long>(s.images), s.mirror_error, 100 * s.mirror_kept, s.corner_error,
                    100 * s.corner_kept);
      out << line;
    }
    return;
  }
  out << "mirror difference (mean |left - mirrored right| in levels of 255; a statistic of the images, not a rule "
         "of this data):\n";
  for (const auto& [name, s] : rows) {
    std::snprintf(line, sizeof(line), "  %-50s %8lld %14.3f\n", name.c_str(), static_cast<long long>(s.images),
                  s.mirror_error);
    out << line;
  }
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
                              const gan::FeatureProgress& progress, datasets::StructureScorer* scorer) {
  const int64_t n = latents.size(0);
  std::vector<at::Tensor> parts;
  for (int64_t start = 0; start < n; start += network.batch()) {
    const int64_t size = std::min(network.batch(), n - start);
    const at::Tensor pixels = gan::quantize_images(generate(latents.narrow(0, start, size), start));
    if (scorer) scorer->add(pixels);
    parts.push_back(network.features(pixels));
    if (progress) progress(start + size, n);
  }
  return at::cat(parts);
}

}  // namespace longgan::app

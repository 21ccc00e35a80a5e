#include "app/evaluation.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <vector>

namespace longgan::app {

std::unique_ptr<gan::InceptionNetwork> open_inception(const std::string& file, const torch::Device& device) {
  return std::make_unique<gan::InceptionNetwork>(file.empty() ? gan::find_inception_network() : std::filesystem::path(file),
                                                 device);
}

gan::FeatureProgress stderr_progress(const std::string& label) {
  using Clock = std::chrono::steady_clock;
  struct State {
    Clock::time_point start = Clock::now(), last_line = start;
  };
  auto state = std::make_shared<State>();
  const bool terminal = ::isatty(STDERR_FILENO) == 1;
  return [state, label, terminal](int64_t done, int64_t total) {
    const auto now = Clock::now();
    const bool last = done >= total;
    if (!terminal && !last && now - state->last_line < std::chrono::seconds(15)) return;
    state->last_line = now;
    const double seconds = std::chrono::duration<double>(now - state->start).count();
    char line[256];
    std::snprintf(line, sizeof(line), "%s: %lld/%lld images (%.1f/s)", label.c_str(), static_cast<long long>(done),
                  static_cast<long long>(total), seconds > 0 ? static_cast<double>(done) / seconds : 0.0);
    if (terminal) {
      std::cerr << "\r" << line << "\x1b[K" << (last ? "\n" : "") << std::flush;
    } else {
      std::cerr << line << std::endl;
    }
  };
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

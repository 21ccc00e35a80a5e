#pragma once
// Inception features of the image sets FID compares: a packed dataset (cached beside it) and a
// folder of images. Generated images go through InceptionNetwork::features directly.
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "gan/fid/fid.h"
#include "gan/fid/inception.h"

namespace longgan::gan {

// progress(done, total) after each batch of images.
using FeatureProgress = std::function<void(int64_t done, int64_t total)>;

// Bump when the preprocessing changes, so that cached features computed the old way are recomputed.
inline constexpr int64_t kFeaturePreprocessingVersion = 1;

// DATA.inception.pt beside DATA: the cache of packed_dataset_features.
std::filesystem::path feature_cache_path(const std::filesystem::path& data);

enum class CacheUse { kReused, kComputed, kRecomputedStale };

struct DatasetFeatures {
  at::Tensor features;  // [N, 2048] float32, every image of the dataset in record order
  FeatureStats stats;   // of `features`
  CacheUse cache = CacheUse::kComputed;
  std::string cache_note;  // why the cache was not used or not written (empty when it was)
};

// The features of every image of a packed dataset. Reused from feature_cache_path(data) when that
// file was computed from the same data (fingerprint and count) with the same network file and
// preprocessing; otherwise computed (each record block's checksum verified) and the cache written
// atomically, holding the features, their mean and covariance (float64) and that key. A cache
// that cannot be written (read-only folder) is noted, not an error.
DatasetFeatures packed_dataset_features(const std::filesystem::path& data, InceptionNetwork& network,
                                        const FeatureProgress& progress = {});

// The features of every image under a folder (recursively; the files `longgan prepare` takes),
// each decoded to 8-bit RGB at its own size. std::runtime_error naming the file that cannot be
// decoded, or the folder when it holds no image.
at::Tensor folder_features(const std::filesystem::path& folder, InceptionNetwork& network,
                           const FeatureProgress& progress = {});

}  // namespace longgan::gan

#include "gan/fid/image_set_features.h"

#include <algorithm>
#include <bit>
#include <optional>
#include <stdexcept>
#include <vector>

#include "checkpoints/atomic_file.h"
#include "checkpoints/checkpoint.h"
#include "datasets/image_io.h"
#include "datasets/loader.h"
#include "datasets/packed_format.h"
#include "datasets/prepare.h"

namespace longgan::gan {
namespace fs = std::filesystem;
namespace {

// What a cache was computed from: data fingerprint and count, network file, preprocessing.
at::Tensor cache_key(const datasets::PackedReader& reader, const InceptionNetwork& network) {
  return at::tensor({std::bit_cast<int64_t>(reader.fingerprint()), reader.size(),
                     std::bit_cast<int64_t>(network.fingerprint()), kFeaturePreprocessingVersion},
                    at::kLong);
}

// The cached features when `cache` holds them for `key`; otherwise nullopt and `note` says why.
std::optional<DatasetFeatures> read_cache(const fs::path& cache, const at::Tensor& key, std::string& note) {
  if (!fs::exists(cache)) return std::nullopt;
  try {
    auto tensors = checkpoints::deserialize_tensors(checkpoints::read_file(cache), cache.string());
    for (const char* name : {"key", "features", "mean", "cov"}) {
      if (!tensors.count(name)) throw std::runtime_error(std::string("no '") + name + "' tensor");
    }
    if (!at::equal(tensors.at("key"), key)) {
      note = "'" + cache.string() + "' was computed from other data or another network: recomputed";
      return std::nullopt;
    }
    DatasetFeatures cached;
    cached.features = tensors.at("features");
    // Few images: recomputing gives the low-rank factor too, cheaply; many: the stored statistics.
    const bool few = cached.features.size(0) <= cached.features.size(1);
    cached.stats = few ? feature_stats(cached.features)
                       : FeatureStats{tensors.at("mean"), tensors.at("cov"), cached.features.size(0), {}};
    cached.cache = CacheUse::kReused;
    return cached;
  } catch (const std::exception& e) {
    note = "'" + cache.string() + "' is unreadable (" + std::string(e.what()).substr(0, 200) + "): recomputed";
    return std::nullopt;
  }
}

}  // namespace

fs::path feature_cache_path(const fs::path& data) {
  fs::path cache = data;
  cache += ".inception.pt";
  return cache;
}

DatasetFeatures packed_dataset_features(const fs::path& data, InceptionNetwork& network,
                                        const FeatureProgress& progress) {
  datasets::PackedReader reader(data);
  if (reader.channels() != 3) {
    throw std::runtime_error("'" + data.string() + "' holds " + std::to_string(reader.channels()) +
                             "-channel images; FID needs RGB (prepare the data again)");
  }
  const at::Tensor key = cache_key(reader, network);
  const fs::path cache = feature_cache_path(data);
  std::string note;
  if (auto cached = read_cache(cache, key, note)) return *cached;

  DatasetFeatures result;
  result.cache = note.empty() ? CacheUse::kComputed : CacheUse::kRecomputedStale;
  result.cache_note = note;
  const int64_t count = reader.size(), h = reader.height(), w = reader.width();
  std::vector<at::Tensor> parts;
  int64_t verified_blocks = 0;
  for (int64_t start = 0; start < count; start += network.batch()) {
    const int64_t size = std::min(network.batch(), count - start);
    for (; verified_blocks <= reader.block_of(start + size - 1); ++verified_blocks) reader.verify_block(verified_blocks);
    const at::Tensor batch = datasets::read_images(reader, start, size);
    parts.push_back(network.features(batch.permute({0, 3, 1, 2})));
    if (progress) progress(start + size, count);
  }
  result.features = at::cat(parts);
  result.stats = feature_stats(result.features);
  try {
    checkpoints::TensorMap tensors{{"key", key}, {"features", result.features}, {"mean", result.stats.mean},
                                   {"cov", result.stats.cov}};
    checkpoints::write_file_atomic(cache, checkpoints::serialize_tensors(tensors));
  } catch (const std::exception& e) {
    result.cache_note = "cannot write the feature cache (" + std::string(e.what()) + "); it is computed again next time";
  }
  return result;
}

at::Tensor folder_features(const fs::path& folder, InceptionNetwork& network, const FeatureProgress& progress) {
  if (!fs::is_directory(folder)) throw std::runtime_error("'" + folder.string() + "' is not a folder of images");
  const auto files = datasets::find_images(folder);
  if (files.empty()) {
    throw std::runtime_error("no .jpg, .jpeg, .png or .webp files under '" + folder.string() + "'");
  }
  const int64_t total = static_cast<int64_t>(files.size());
  std::vector<at::Tensor> parts, pending;
  auto flush = [&](int64_t done) {
    if (pending.empty()) return;
    parts.push_back(network.features(at::stack(pending).permute({0, 3, 1, 2})));
    pending.clear();
    if (progress) progress(done, total);
  };
  for (int64_t i = 0; i < total; ++i) {
    std::string problem;
    auto image = datasets::decode_rgb_image(files[i], problem);
    if (!image) throw std::runtime_error("cannot use '" + files[i].string() + "' for FID: " + problem);
    at::Tensor hwc = at::from_blob(image->pixels.data(), {image->height, image->width, 3}, at::kByte).clone();
    // A batch holds images of one size: a different size closes the batch.
    if (!pending.empty() && pending.front().sizes() != hwc.sizes()) flush(i);
    pending.push_back(hwc);
    if (static_cast<int64_t>(pending.size()) == network.batch()) flush(i + 1);
  }
  flush(total);
  return at::cat(parts);
}

}  // namespace longgan::gan

// Inception features of packed datasets (cached beside them) and image folders.
#include "gan/fid/image_set_features.h"

#include <gtest/gtest.h>

#include <fstream>

#include "checkpoints/atomic_file.h"
#include "datasets/image_io.h"
#include "datasets/packed_format.h"
#include "longgan/build_config.h"
#include "tests/datasets/temp_dir.h"

namespace longgan::gan {
namespace {
namespace fs = std::filesystem;
using datasets::testing::TempDir;

// A packed dataset of `images` [N, H, W, 3] uint8.
void write_dataset(const fs::path& path, const at::Tensor& images) {
  datasets::PackedWriter writer(path, images.size(1), images.size(2), 3, 1);
  for (int64_t i = 0; i < images.size(0); ++i) writer.add(images[i].contiguous().data_ptr<uint8_t>(), 0);
  writer.finish();
}

at::Tensor random_images(int64_t n, int64_t h, int64_t w, uint64_t seed) {
  torch::manual_seed(seed);
  return at::randint(0, 256, {n, h, w, 3}, at::kByte);
}

TEST(DatasetFeatures, CachedBesideTheDataReusedAndInvalidated) {
  TempDir dir;
  const fs::path data = dir / "tiny.lgd";
  const at::Tensor images = random_images(2, 16, 16, 2);
  write_dataset(data, images);
  InceptionNetwork network(find_inception_network(), torch::kCPU, 2);

  const DatasetFeatures first = packed_dataset_features(data, network);
  EXPECT_EQ(first.cache, CacheUse::kComputed);
  ASSERT_TRUE(fs::exists(feature_cache_path(data))) << first.cache_note;
  ASSERT_EQ(first.features.sizes(), (at::IntArrayRef{2, kInceptionFeatures}));
  // The features of the records in order, as the network computes them directly.
  EXPECT_TRUE(at::allclose(first.features, network.features(images.permute({0, 3, 1, 2})), 1e-4, 1e-4));
  EXPECT_TRUE(at::allclose(first.stats.mean, first.features.to(at::kDouble).mean(0)));

  const DatasetFeatures second = packed_dataset_features(data, network);
  EXPECT_EQ(second.cache, CacheUse::kReused);
  EXPECT_TRUE(at::equal(second.features, first.features));
  EXPECT_TRUE(at::equal(second.stats.cov, first.stats.cov));

  // New data under the same name: the cache no longer matches and is recomputed and replaced.
  write_dataset(data, random_images(2, 16, 16, 3));
  const DatasetFeatures third = packed_dataset_features(data, network);
  EXPECT_EQ(third.cache, CacheUse::kRecomputedStale);
  EXPECT_NE(third.cache_note.find("other data"), std::string::npos) << third.cache_note;
  EXPECT_FALSE(at::allclose(third.features, first.features));
  EXPECT_EQ(packed_dataset_features(data, network).cache, CacheUse::kReused);

  // A damaged cache file is recomputed, not trusted.
  checkpoints::write_file_atomic(feature_cache_path(data), "garbage");
  const DatasetFeatures fourth = packed_dataset_features(data, network);
  EXPECT_EQ(fourth.cache, CacheUse::kRecomputedStale);
  EXPECT_TRUE(at::allclose(fourth.features, third.features));
}

TEST(FolderFeatures, EveryImageAtItsOwnSize) {
  if (!LONGGAN_HAVE_OPENCV) GTEST_SKIP() << "this build has no OpenCV to decode images";
  TempDir dir;
  const at::Tensor small = random_images(2, 16, 16, 4), wide = random_images(1, 12, 20, 5);
  datasets::write_png((dir / "a1.png").string(), small[0].contiguous().data_ptr<uint8_t>(), 16, 16, 3);
  datasets::write_png((dir / "a2.png").string(), small[1].contiguous().data_ptr<uint8_t>(), 16, 16, 3);
  fs::create_directories(dir / "sub");
  datasets::write_png((dir / "sub" / "b.png").string(), wide[0].contiguous().data_ptr<uint8_t>(), 12, 20, 3);
  InceptionNetwork network(find_inception_network(), torch::kCPU, 8);
  const at::Tensor features = folder_features(dir.path(), network);
  ASSERT_EQ(features.sizes(), (at::IntArrayRef{3, kInceptionFeatures}));
  EXPECT_TRUE(at::allclose(features.narrow(0, 0, 2), network.features(small.permute({0, 3, 1, 2})), 1e-4, 1e-4));
  EXPECT_TRUE(at::allclose(features.narrow(0, 2, 1), network.features(wide.permute({0, 3, 1, 2})), 1e-4, 1e-4));

  std::ofstream(dir / "0broken.png") << "not a png";  // first in scan order: fails before any work
  try {
    folder_features(dir.path(), network);
    FAIL() << "a broken image was used";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("0broken.png"), std::string::npos) << e.what();
  }
  TempDir empty;
  EXPECT_THROW(folder_features(empty.path(), network), std::runtime_error);
}

}  // namespace
}  // namespace longgan::gan

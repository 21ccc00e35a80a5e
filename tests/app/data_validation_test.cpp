// Bad data stops `train` before anything is written; `info DATA.lgd --verify` checks every block.
#include <gtest/gtest.h>

#include <fstream>

#include "checkpoints/atomic_file.h"
#include "datasets/packed_format.h"
#include "longgan/build_config.h"
#include "tests/app/cli_test_util.h"

namespace longgan::app::testing {
namespace {
namespace fs = std::filesystem;

// 200 synthetic 32x32 images: 4 blocks of 64 records (3,072 bytes each).
fs::path prepared(const std::string& name) {
  const fs::path path = fresh_dir(name) / "data.lgd";
  auto result = run_longgan({"prepare", "--synthetic", "200", "--resolution", "32", "--output", path.string()});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return path;
}

// Flips one byte of image 150 (block 2), leaving header and labels intact.
void corrupt_block_two(const fs::path& path) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  const std::streamoff at = 64 + 150 * 32 * 32 * 3 + 5;
  f.seekg(at);
  char byte = 0;
  f.read(&byte, 1);
  byte = static_cast<char>(byte ^ 0x5a);
  f.seekp(at);
  f.write(&byte, 1);
}

TEST(DataValidation, InfoVerifyChecksEveryBlock) {
  const fs::path data = prepared("info_verify");
  auto good = run_longgan({"info", data.string(), "--verify"});
  EXPECT_EQ(good.exit_code, 0) << good.output;
  EXPECT_NE(good.output.find("images: 200 of 32x32x3"), std::string::npos) << good.output;
  EXPECT_NE(good.output.find("verified (XXH3-64, format 3): all 4 blocks"), std::string::npos) << good.output;

  corrupt_block_two(data);
  auto quick = run_longgan({"info", data.string()});  // the header and labels are still fine
  EXPECT_EQ(quick.exit_code, 0) << quick.output;
  auto bad = run_longgan({"info", data.string(), "--verify"});
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find("corrupted block 2"), std::string::npos) << bad.output;
}

TEST(DataValidation, TrainStopsOnACorruptBlockBeforeWritingAnything) {
  const fs::path data = prepared("train_verify");
  corrupt_block_two(data);
  const fs::path out = fresh_dir("train_verify_out") / "run";
  auto result = run_longgan({"train", "--data", data.string(), "--out", out.string(), "--steps", "1", "--resolution",
                             "32", "--ch", "8", "--batch", "2", "--g-attn", "16", "--d-attn", "16", "--device", "cpu"});
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("corrupted block 2"), std::string::npos) << result.output;
  EXPECT_FALSE(fs::exists(out)) << "the run directory was created";
}

// Issue 20: a dataset of no images (well-formed, valid checksums) is named as empty everywhere.
TEST(DataValidation, EmptyDatasetIsNamedByInfoTrainAndBenchLoader) {
  const fs::path dir = fresh_dir("empty_data");
  const fs::path data = dir / "empty.lgd";
  datasets::PackedWriter(data, 32, 32, 3, 1).finish();
  const std::string expected = "'" + data.string() + "' holds no images";
  const fs::path out = dir / "run";
  const std::vector<std::vector<std::string>> commands = {
      {"info", data.string()},
      {"info", data.string(), "--verify"},
      {"bench", "loader", "--data", data.string(), "--batch", "2", "--batches", "1"},
      {"train", "--data", data.string(), "--out", out.string(), "--steps", "1", "--resolution", "32", "--ch", "8",
       "--batch", "2", "--g-attn", "16", "--d-attn", "16", "--device", "cpu"}};
  for (const auto& command : commands) {
    auto result = run_longgan(command);
    EXPECT_EQ(result.exit_code, 1) << command[0] << ": " << result.output;
    EXPECT_NE(result.output.find(expected), std::string::npos) << command[0] << ": " << result.output;
    EXPECT_EQ(result.output.find("truncated"), std::string::npos) << command[0] << ": " << result.output;
  }
  EXPECT_FALSE(fs::exists(out)) << "the run directory was created";
}

TEST(DataValidation, PrepareRefusesToWriteAnEmptyDataset) {
  const fs::path dir = fresh_dir("prepare_empty");
  const fs::path output = dir / "out.lgd";
  auto none = run_longgan({"prepare", "--synthetic", "0", "--resolution", "32", "--output", output.string()});
  EXPECT_EQ(none.exit_code, 2) << none.output;  // a bad option value
  EXPECT_NE(none.output.find("--synthetic"), std::string::npos) << none.output;
  if (!LONGGAN_HAVE_OPENCV) GTEST_SKIP() << "image folders need OpenCV";
  const fs::path input = dir / "images";
  fs::create_directories(input);
  const std::vector<std::string> prepare = {"prepare", "--input", input.string(), "--output", output.string(),
                                            "--resolution", "32"};
  auto empty = run_longgan(prepare);
  EXPECT_EQ(empty.exit_code, 1) << empty.output;
  EXPECT_NE(empty.output.find("holds no images is refused"), std::string::npos) << empty.output;
  checkpoints::write_file_atomic(input / "broken.png", "not a PNG at all");
  auto unusable = run_longgan(prepare);
  EXPECT_EQ(unusable.exit_code, 1) << unusable.output;
  EXPECT_NE(unusable.output.find("none of the 1 image files"), std::string::npos) << unusable.output;
  EXPECT_NE(unusable.output.find("holds no images is refused"), std::string::npos) << unusable.output;
  EXPECT_FALSE(fs::exists(output)) << "an empty dataset was written";
}

}  // namespace
}  // namespace longgan::app::testing

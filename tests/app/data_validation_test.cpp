// Bad data stops `train` before anything is written; `info DATA.lgd --verify` checks every block.
#include <gtest/gtest.h>

#include <fstream>

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
  EXPECT_NE(good.output.find("verified (XXH3-64, format 2): all 4 blocks"), std::string::npos) << good.output;

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

}  // namespace
}  // namespace longgan::app::testing

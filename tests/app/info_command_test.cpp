// longgan info --verify names the checksum algorithm and format of datasets and checkpoints, old
// (format 1, FNV-1a) and new (format 2, XXH3-64).
#include <gtest/gtest.h>

#include "checkpoints/checkpoint.h"
#include "datasets/packed_format.h"
#include "tests/app/cli_test_util.h"
#include "tests/checkpoints/format_one.h"

namespace longgan::app::testing {
namespace {
namespace fs = std::filesystem;

// 70 images of 4x4 (two blocks) in dataset format `version`.
void write_dataset(const fs::path& path, uint32_t version) {
  datasets::PackedWriter writer(path, 4, 4, 3, 1, version);
  std::vector<uint8_t> image(4 * 4 * 3);
  for (int i = 0; i < 70; ++i) {
    for (size_t k = 0; k < image.size(); ++k) image[k] = static_cast<uint8_t>(i * 7 + k);
    writer.add(image.data(), 0);
  }
  writer.finish();
}

TEST(InfoCommand, DatasetVerifyNamesTheChecksumOfItsFormat) {
  const fs::path dir = fresh_dir("info_formats");
  for (const auto& [version, expected] : {std::pair{1u, "verified (FNV-1a, format 1): all 2 blocks"},
                                          std::pair{2u, "verified (XXH3-64, format 2): all 2 blocks"},
                                          std::pair{3u, "verified (XXH3-64, format 3): all 2 blocks"}}) {
    const fs::path data = dir / ("v" + std::to_string(version) + ".lgd");
    write_dataset(data, version);
    auto result = run_longgan({"info", data.string(), "--verify"});
    EXPECT_EQ(result.exit_code, 0) << result.output;
    EXPECT_NE(result.output.find(expected), std::string::npos) << result.output;
    // Where the images came from: recorded from format 3 on (a writer that sets no source: a folder).
    EXPECT_NE(result.output.find(version < 3 ? "source: not recorded (format " + std::to_string(version) + ")"
                                             : std::string("source: image folder")),
              std::string::npos)
        << result.output;
  }
  // A synthetic file names its generator, seed and motif.
  auto made = run_longgan({"prepare", "--synthetic", "3", "--resolution", "16", "--seed", "12", "--output",
                           (dir / "s.lgd").string()});
  ASSERT_EQ(made.exit_code, 0) << made.output;
  auto synthetic = run_longgan({"info", (dir / "s.lgd").string()});
  EXPECT_NE(synthetic.output.find("source: synthetic (generator 1, seed 12, corner motif 2 px"), std::string::npos)
      << synthetic.output;
  auto too_big = run_longgan({"prepare", "--synthetic", "3", "--resolution", "16", "--seed", "4294967296", "--output",
                              (dir / "big.lgd").string()});
  EXPECT_EQ(too_big.exit_code, 2) << too_big.output;
  EXPECT_NE(too_big.output.find("--seed of --synthetic must be below 4294967296"), std::string::npos) << too_big.output;
  EXPECT_FALSE(fs::exists(dir / "big.lgd"));
}

TEST(InfoCommand, CheckpointVerifyNamesTheChecksumOfItsFormat) {
  const fs::path run = fresh_dir("info_checkpoints");
  checkpoints::CheckpointWriter writer(run, checkpoints::RetentionPolicy{.keep_last = 5});
  const std::map<std::string, checkpoints::TensorMap> files = {{"G", {{"w", torch::arange(6, torch::kFloat32)}}}};
  const fs::path old_dir = writer.write(1, {{"model", {{"resolution", 32}}}}, files);
  checkpoints::testing::make_format_one(old_dir);
  const fs::path new_dir = writer.write(2, {{"model", {{"resolution", 32}}}}, files);
  auto result = run_longgan({"info", run.string(), "--verify"});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("ok      " + old_dir.string() + ": verified (FNV-1a, format 1)"), std::string::npos)
      << result.output;
  EXPECT_NE(result.output.find("ok      " + new_dir.string() + ": verified (XXH3-64, format 2)"), std::string::npos)
      << result.output;
  EXPECT_NE(result.output.find("2 of 2 checkpoints intact"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace longgan::app::testing

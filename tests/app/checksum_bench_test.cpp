// longgan bench checksum through the real binary: a small buffer and a file, JSON, usage errors.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "checkpoints/atomic_file.h"
#include "checkpoints/checksum.h"
#include "tests/app/cli_test_util.h"

namespace longgan::app::testing {
namespace {
namespace fs = std::filesystem;

TEST(ChecksumBench, ReportsGigabytesPerSecondOfEveryAlgorithm) {
  const fs::path dir = fresh_dir("bench_checksum");
  const fs::path json = dir / "checksum.json";
  auto result = run_longgan({"bench", "checksum", "--size-mb", "4", "--repeats", "2", "--json", json.string()});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("one thread"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("GB/s"), std::string::npos) << result.output;
  const auto doc = nlohmann::json::parse(checkpoints::read_file(json));
  EXPECT_EQ(doc["bytes"], 4 << 20);
  ASSERT_EQ(doc["results"].size(), 3u) << doc.dump();
  EXPECT_EQ(doc["results"][0]["algorithm"], "xxh3_64");
  for (const auto& entry : doc["results"]) EXPECT_GT(entry["gb_per_s"].get<double>(), 0.0) << entry.dump();
}

TEST(ChecksumBench, HashesAFileWithTheLibraryFunction) {
  const fs::path dir = fresh_dir("bench_checksum_file");
  const fs::path file = dir / "bytes.bin", json = dir / "checksum.json";
  const std::string bytes(100000, 'x');
  checkpoints::write_file_atomic(file, bytes);
  auto result = run_longgan({"bench", "checksum", "--file", file.string(), "--algorithms", "xxh3_64", "--repeats",
                             "1", "--json", json.string()});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto doc = nlohmann::json::parse(checkpoints::read_file(json));
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx",
                static_cast<unsigned long long>(checkpoints::xxh3_64(bytes.data(), bytes.size())));
  EXPECT_EQ(doc["results"][0]["hash"], hex);
}

TEST(ChecksumBench, UsageErrorsExitTwo) {
  auto unknown = run_longgan({"bench", "checksum", "--algorithms", "sha1"});
  EXPECT_EQ(unknown.exit_code, 2) << unknown.output;
  EXPECT_NE(unknown.output.find("sha1"), std::string::npos) << unknown.output;
  auto both = run_longgan({"bench", "checksum", "--size-mb", "1", "--file", "/etc/hostname"});
  EXPECT_EQ(both.exit_code, 2) << both.output;
  auto missing = run_longgan({"bench", "checksum", "--file", "/nonexistent/file.bin"});
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  EXPECT_NE(missing.output.find("/nonexistent/file.bin"), std::string::npos) << missing.output;
}

}  // namespace
}  // namespace longgan::app::testing

#include "checkpoints/checkpoint.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "checkpoints/atomic_file.h"
#include "tests/checkpoints/fresh_dir.h"

namespace longgan::checkpoints {
namespace {
namespace fs = std::filesystem;

using testing::fresh_dir;

std::map<std::string, TensorMap> sample_files(int64_t step) {
  TensorMap g{{"conv.weight", torch::arange(6, torch::kFloat32).reshape({2, 3}) + step},
              {"bn.running_mean", torch::full({4}, 0.5, torch::kFloat64)},
              {"counter", torch::tensor({step}, torch::kInt64)}};
  TensorMap d{{"linear.weight", torch::ones({3, 2}, torch::kBFloat16)}};
  return {{"G", g}, {"D", d}};
}

nlohmann::json sample_manifest() { return {{"model", {{"resolution", 32}}}, {"metrics", {{"loss_D", 1.5}}}}; }

void expect_same(const TensorMap& a, const TensorMap& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, tensor] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_EQ(tensor.dtype(), b.at(name).dtype()) << name;
    EXPECT_TRUE(torch::equal(tensor, b.at(name))) << name;
  }
}

TEST(Checkpoint, StepDirName) {
  EXPECT_EQ(step_dir_name(123), "step-000123");
  EXPECT_EQ(step_dir_name(12345678), "step-12345678");
  EXPECT_THROW(step_dir_name(-1), std::invalid_argument);
}

TEST(Checkpoint, RoundTrip) {
  fs::path run = fresh_dir("roundtrip");
  CheckpointWriter writer(run);
  fs::path dir = writer.write(7, sample_manifest(), sample_files(7));
  EXPECT_EQ(dir, run / "step-000007");
  EXPECT_EQ(read_file(run / "latest"), "step-000007\n");

  for (const fs::path& path : {run, dir}) {
    Checkpoint loaded = read_checkpoint(path);
    EXPECT_EQ(loaded.dir, dir);
    EXPECT_EQ(loaded.step, 7);
    EXPECT_EQ(loaded.manifest["format_version"], kFormatVersion);
    EXPECT_EQ(loaded.manifest["model"]["resolution"], 32);
    EXPECT_EQ(loaded.manifest["metrics"]["loss_D"], 1.5);
    ASSERT_EQ(loaded.files.size(), 2u);
    auto expected = sample_files(7);
    expect_same(loaded.files.at("G"), expected.at("G"));
    expect_same(loaded.files.at("D"), expected.at("D"));
  }
  remove_tree(run);
}

TEST(Checkpoint, NonContiguousTensorsRoundTrip) {
  auto t = torch::arange(12, torch::kFloat32).reshape({3, 4}).t();
  TensorMap back = deserialize_tensors(serialize_tensors({{"t", t}}), "memory");
  EXPECT_TRUE(torch::equal(back.at("t"), t));
}

TEST(Checkpoint, LeftoverTemporaryIsIgnoredAndCleaned) {
  fs::path run = fresh_dir("leftover");
  CheckpointWriter writer(run);
  writer.write(1, sample_manifest(), sample_files(1));
  // A crash in the middle of writing step 2 leaves a temporary with partial content.
  fs::path tmp = run / ".tmp-step-000002-99999";
  fs::create_directories(tmp);
  std::ofstream(tmp / "G.pt") << "partial";
  EXPECT_EQ(resolve_checkpoint(run), run / "step-000001");
  ASSERT_EQ(list_checkpoints(run).size(), 1u);
  writer.write(3, sample_manifest(), sample_files(3));
  EXPECT_FALSE(fs::exists(tmp));
  EXPECT_EQ(resolve_checkpoint(run), run / "step-000003");
  remove_tree(run);
}

TEST(Checkpoint, LatestMovesOnlyAfterCompleteWrite) {
  fs::path run = fresh_dir("latest_moves");
  CheckpointWriter writer(run);
  writer.write(1, sample_manifest(), sample_files(1));
  // A tensor that cannot be saved makes the write fail after some files are on disk.
  auto bad = sample_files(2);
  bad["H"] = TensorMap{{"undefined", at::Tensor()}};
  EXPECT_THROW(writer.write(2, sample_manifest(), bad), std::invalid_argument);
  EXPECT_EQ(read_file(run / "latest"), "step-000001\n");
  EXPECT_FALSE(fs::exists(run / "step-000002"));
  EXPECT_EQ(read_checkpoint(run).step, 1);
  remove_tree(run);
}

TEST(Checkpoint, MissingLatestFallsBackToNewestCompleteStep) {
  fs::path run = fresh_dir("no_latest");
  CheckpointWriter writer(run);
  writer.write(1, sample_manifest(), sample_files(1));
  writer.write(2, sample_manifest(), sample_files(2));
  fs::remove(run / "latest");
  EXPECT_EQ(resolve_checkpoint(run), run / "step-000002");
  remove_tree(run);
}

TEST(Checkpoint, RetentionKeepsLastKMarkedAndPeriodic) {
  fs::path run = fresh_dir("retention");
  CheckpointWriter writer(run, RetentionPolicy{.keep_last = 2, .keep_every = 4});
  writer.write(1, sample_manifest(), sample_files(1));
  mark_keep(run / "step-000001");
  for (int64_t step = 2; step <= 7; ++step) writer.write(step, sample_manifest(), sample_files(step));
  std::vector<int64_t> steps;
  for (const auto& [step, dir] : list_checkpoints(run)) steps.push_back(step);
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 4, 6, 7}));
  remove_tree(run);
}

TEST(Checkpoint, RetentionNeverDeletesLatest) {
  fs::path run = fresh_dir("retention_latest");
  {
    CheckpointWriter writer(run, RetentionPolicy{.keep_last = 1});
    writer.write(10, sample_manifest(), sample_files(10));
  }
  // A resumed run rewinding to an older step: `latest` names the newest write, which stays.
  CheckpointWriter writer(run, RetentionPolicy{.keep_last = 1});
  writer.write(5, sample_manifest(), sample_files(5));
  EXPECT_EQ(resolve_checkpoint(run), run / "step-000005");
  EXPECT_TRUE(fs::exists(run / "step-000005"));
  remove_tree(run);
}

TEST(Checkpoint, RewritingAStepReplacesIt) {
  fs::path run = fresh_dir("rewrite");
  CheckpointWriter writer(run);
  writer.write(4, sample_manifest(), sample_files(4));
  writer.write(4, sample_manifest(), sample_files(40));
  expect_same(read_checkpoint(run).files.at("G"), sample_files(40).at("G"));
  EXPECT_EQ(list_checkpoints(run).size(), 1u);
  remove_tree(run);
}

TEST(Checkpoint, InvalidPolicy) {
  EXPECT_THROW(CheckpointWriter("x", RetentionPolicy{.keep_last = 0}), std::invalid_argument);
  EXPECT_THROW(CheckpointWriter("x", RetentionPolicy{.keep_every = -1}), std::invalid_argument);
}

// The message of `f`'s std::runtime_error (empty when it does not throw one).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(Checkpoint, ClearErrors) {
  fs::path run = fresh_dir("errors");
  EXPECT_NE(error_of([&] { resolve_checkpoint(run / "nope"); }).find("does not exist"), std::string::npos);
  EXPECT_NE(error_of([&] { resolve_checkpoint(run); }).find("holds no checkpoint"), std::string::npos);

  CheckpointWriter writer(run);
  fs::path dir = writer.write(1, sample_manifest(), sample_files(1));

  // Newer format version.
  auto manifest = nlohmann::json::parse(read_file(dir / "manifest.json"));
  manifest["format_version"] = kFormatVersion + 1;
  write_file_atomic(dir / "manifest.json", manifest.dump());
  std::string message = error_of([&] { read_checkpoint(run); });
  EXPECT_NE(message.find("format version " + std::to_string(kFormatVersion + 1)), std::string::npos) << message;
  EXPECT_NE(message.find((dir / "manifest.json").string()), std::string::npos) << message;
  manifest["format_version"] = kFormatVersion;
  write_file_atomic(dir / "manifest.json", manifest.dump());

  // Corrupt tensor file.
  write_file_atomic(dir / "D.pt", "not a zip archive");
  message = error_of([&] { read_checkpoint(run); });
  EXPECT_NE(message.find((dir / "D.pt").string()), std::string::npos) << message;

  // Missing tensor file.
  fs::remove(dir / "D.pt");
  message = error_of([&] { read_checkpoint(run); });
  EXPECT_NE(message.find("missing"), std::string::npos) << message;
  EXPECT_NE(message.find((dir / "D.pt").string()), std::string::npos) << message;

  // Garbled manifest.
  write_file_atomic(dir / "manifest.json", "{ not json");
  message = error_of([&] { read_manifest(dir); });
  EXPECT_NE(message.find("cannot parse"), std::string::npos) << message;

  // `latest` naming a directory that is gone.
  write_file_atomic(run / "latest", "step-000099\n");
  message = error_of([&] { resolve_checkpoint(run); });
  EXPECT_NE(message.find("step-000099"), std::string::npos) << message;
  remove_tree(run);
}

// The Python of the project's venv, when it exists.
std::optional<std::string> find_python() {
  if (const char* env = std::getenv("LONGGAN_PYTHON"); env && *env) return std::string(env);
  const char* home = std::getenv("HOME");
  if (home == nullptr) return std::nullopt;
  fs::path venv = fs::path(home) / ".cache/longgan/venv/bin/python";
  if (fs::exists(venv)) return venv.string();
  return std::nullopt;
}

TEST(Checkpoint, PythonTorchLoadReadsTensorFiles) {
  auto python = find_python();
  if (!python) GTEST_SKIP() << "no Python with torch: set LONGGAN_PYTHON or create ~/.cache/longgan/venv (scripts/setup.sh)";
  if (std::system((*python + " -c 'import torch' >/dev/null 2>&1").c_str()) != 0) {
    GTEST_SKIP() << *python << " cannot import torch";
  }
  fs::path run = fresh_dir("python");
  fs::path dir = CheckpointWriter(run).write(5, sample_manifest(), sample_files(5));
  fs::path script = run / "check.py";
  std::ofstream(script) << "import sys, torch\n"
                           "g = torch.load(sys.argv[1] + '/G.pt')\n"
                           "d = torch.load(sys.argv[1] + '/D.pt')\n"
                           "assert torch.equal(g['conv.weight'], torch.arange(6.).reshape(2, 3) + 5), g\n"
                           "assert g['bn.running_mean'].dtype == torch.float64\n"
                           "assert g['counter'].item() == 5\n"
                           "assert d['linear.weight'].dtype == torch.bfloat16\n"
                           "print('ok', sorted(g))\n";
  std::string command = *python + " " + script.string() + " " + dir.string();
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  remove_tree(run);
}

}  // namespace
}  // namespace longgan::checkpoints

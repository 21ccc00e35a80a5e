// longgan bench attention through the real binary: output, JSON, usage errors.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <sstream>
#include <vector>

#include "app/bench/attention_bench.h"
#include "app/bench/layer_bench.h"
#include "checkpoints/atomic_file.h"
#include "tests/app/cli_test_util.h"

namespace {

using longgan::app::testing::fresh_dir;

// Runs longgan with space-separated arguments.
longgan::app::testing::RunResult run_longgan(const std::string& arguments) {
  std::vector<std::string> args;
  std::istringstream words(arguments);
  for (std::string word; words >> word;) args.push_back(word);
  return longgan::app::testing::run_longgan(args);
}

// Runs a benchmark with `--json PATH` appended; its output and the JSON it wrote (null if it failed).
struct BenchRun {
  longgan::app::testing::RunResult result;
  nlohmann::json doc;
};
BenchRun run_bench_json(const std::string& arguments, const std::filesystem::path& json_path) {
  BenchRun run{run_longgan(arguments + " --json " + json_path.string()), nullptr};
  if (run.result.exit_code == 0) {
    std::ifstream in(json_path);
    run.doc = nlohmann::json::parse(in);
  }
  return run;
}

TEST(BenchCommand, WritesTableAndJsonWithRatiosToDenseFromTheSameRun) {
  auto dir = fresh_dir("bench_json");
  auto [r, doc] = run_bench_json("bench attention --device cpu --types dense,smyrf,clustered,improved_clustered,"
                                 "combiner_axial --n 64,256 --repeats 1 --warmup 0", dir / "bench.json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("fwd+bwd ms"), std::string::npos) << r.output;
  ASSERT_EQ(doc["rows"].size(), 10u);  // 5 types x 2 lengths
  for (const auto& row : doc["rows"]) {
    ASSERT_FALSE(row.contains("error")) << row.dump();
    EXPECT_GT(row["forward_ms"].get<double>(), 0.0);
    EXPECT_GT(row["forward_backward_ms"].get<double>(), 0.0);
    EXPECT_EQ(row["m"].get<int64_t>() * 4, row["n"].get<int64_t>());
    if (row["type"] == "dense") {
      EXPECT_DOUBLE_EQ(row["forward_ratio_to_dense"].get<double>(), 1.0);
      EXPECT_DOUBLE_EQ(row["relative_error_vs_dense"].get<double>(), 0.0);
    } else {
      const double error = row["relative_error_vs_dense"].get<double>();
      EXPECT_TRUE(std::isfinite(error) && error >= 0.0) << row.dump();
      // The content-based types find the shared centres: closer to dense than all-zeros output
      // (error 1). combiner_axial summarises by grid position, and these tokens have no spatial
      // order, so no bound on its error holds here.
      if (row["type"] != "combiner_axial") EXPECT_LT(error, 1.0) << row.dump();
    }
  }
  longgan::checkpoints::remove_tree(dir);
}

TEST(BenchCommand, ExplicitSpecWithExactConfigurationHasNoError) {
  auto r = run_longgan("bench attention --types dense --spec smyrf:hashes=1,q_cluster=64,k_cluster=16 "
                       "--n 64 --repeats 1 --warmup 0 --no-backward");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto line = r.output.find("smyrf:hashes=1,q_cluster=64,k_cluster=16");
  ASSERT_NE(line, std::string::npos) << r.output;
  // One cluster holding every query and key is dense attention: the error column reads 0.0000.
  auto row_start = r.output.rfind('\n', line);
  EXPECT_NE(r.output.substr(row_start, line - row_start).find("0.0000"), std::string::npos) << r.output;
}

TEST(BenchCommand, ReadsRecordedTensorsFromPythonTorchSave) {
  const char* home = std::getenv("HOME");
  std::string venv = std::getenv("LONGGAN_VENV") ? std::getenv("LONGGAN_VENV")
                                                  : std::string(home ? home : "") + "/.cache/longgan/venv";
  std::string python = venv + "/bin/python";
  if (!std::filesystem::exists(python)) GTEST_SKIP() << "no Python with torch at " << python << " (scripts/setup.sh)";
  auto dir = fresh_dir("bench_qkv");
  auto file = dir / "qkv.pt";
  // Non-square lengths (48 queries on a 6x8 grid, 12 keys on 3x4) in bf16.
  std::string script = "import torch; g=torch.Generator().manual_seed(0); "
                       "torch.save({'q': torch.randn(1,2,48,8,generator=g).bfloat16(), "
                       "'k': torch.randn(1,2,12,8,generator=g).bfloat16(), "
                       "'v': torch.randn(1,2,12,32,generator=g).bfloat16()}, '" + file.string() + "')";
  ASSERT_EQ(std::system((python + " -c \"" + script + "\" 2>/dev/null").c_str()), 0);
  auto json_path = dir / "qkv.json";
  auto r = run_longgan("bench attention --qkv " + file.string() +
                       " --types dense,smyrf,combiner_axial --grid 6x8 --repeats 1 --warmup 0 --json " +
                       json_path.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[1, 2, 48, 8]"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(file.string()), std::string::npos) << r.output;
  std::ifstream in(json_path);
  auto doc = nlohmann::json::parse(in);
  ASSERT_EQ(doc["rows"].size(), 3u);
  for (const auto& row : doc["rows"]) {
    EXPECT_FALSE(row.contains("error")) << row.dump();
    EXPECT_EQ(row["dtype"], "bf16") << row.dump();  // the file's dtype ran, and is reported
  }
  // Without --grid, only combiner_axial needs a grid, and says so.
  auto no_grid = run_longgan("bench attention --qkv " + file.string() + " --types dense,smyrf,combiner_axial "
                             "--repeats 1 --warmup 0 --no-backward");
  EXPECT_EQ(no_grid.exit_code, 1) << no_grid.output;
  EXPECT_NE(no_grid.output.find("--grid"), std::string::npos) << no_grid.output;
  EXPECT_NE(no_grid.output.find("smyrf:hashes"), std::string::npos) << no_grid.output;  // its row still ran
  auto bad_grid = run_longgan("bench attention --qkv " + file.string() + " --grid 7x7");
  EXPECT_EQ(bad_grid.exit_code, 2) << bad_grid.output;
  EXPECT_NE(bad_grid.output.find("N=48"), std::string::npos) << bad_grid.output;
  longgan::checkpoints::remove_tree(dir);
}

TEST(BenchCommand, EveryBackendGetsARowNamingWhatRan) {
  auto dir = fresh_dir("bench_backends");
  auto json_path = dir / "bench.json";
  auto r = run_longgan("bench attention --types dense,smyrf,combiner_axial --backends auto,reference,fused,fused_math "
                       "--n 64 --repeats 1 --warmup 0 --json " + json_path.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(json_path);
  auto doc = nlohmann::json::parse(in);
  std::vector<std::string> kernels;
  for (const auto& row : doc["rows"]) kernels.push_back(row["type"].get<std::string>() + " " +
                                                        row["backend"].get<std::string>() + ": " +
                                                        row["kernel"].get<std::string>());
  // dense: the baseline (auto) plus 3; smyrf: 4; combiner_axial: auto and reference (no fused path).
  std::vector<std::string> want = {
      "dense auto: sdpa flash (padded to 64)", "dense reference: aten chunked",
      "dense fused: sdpa flash (padded to 64)", "dense fused_math: aten chunked",
      "smyrf auto: fused cpu_flash", "smyrf reference: aten reference", "smyrf fused: fused cpu_flash",
      "smyrf fused_math: fused math", "combiner_axial auto: aten reference",
      "combiner_axial reference: aten reference"};
  EXPECT_EQ(kernels, want);
  auto bad = run_longgan("bench attention --backends kernel --n 64");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("fused_math"), std::string::npos) << bad.output;
  longgan::checkpoints::remove_tree(dir);
}

TEST(BenchCommand, DefaultSmyrfBudgetFitsAnyLengths) {
  using longgan::attention::SmyrfOptions;
  // The budget for square grids: 8 clusters, or 2048 queries per cluster at most.
  auto fitted = std::get<SmyrfOptions>(longgan::app::default_bench_spec("smyrf", 16384, 4096));
  EXPECT_EQ(fitted.q_cluster, 2048);
  EXPECT_EQ(fitted.k_cluster, 512);
  fitted = std::get<SmyrfOptions>(longgan::app::default_bench_spec("smyrf", 65536, 16384));
  EXPECT_EQ(fitted.q_cluster, 2048);  // 32 clusters
  // 12 keys cannot be cut into 8 clusters of one size: 6 clusters of 8 queries and 2 keys.
  fitted = std::get<SmyrfOptions>(longgan::app::default_bench_spec("smyrf", 48, 12));
  EXPECT_EQ(fitted.q_cluster, 8);
  EXPECT_EQ(fitted.k_cluster, 2);
  for (int64_t n = 1; n <= 70; ++n) {
    for (int64_t m = 1; m <= 70; ++m) {
      EXPECT_NO_THROW(longgan::app::default_bench_spec("smyrf", n, m)) << n << " x " << m;
    }
  }
}

TEST(BenchCommand, UsageErrorsExitTwoAndNameTheOption) {
  auto unknown_type = run_longgan("bench attention --types dense,flash --n 64");
  EXPECT_EQ(unknown_type.exit_code, 2);
  EXPECT_NE(unknown_type.output.find("flash"), std::string::npos) << unknown_type.output;
  auto bad_inputs = run_longgan("bench attention --inputs uniform");
  EXPECT_EQ(bad_inputs.exit_code, 2);
  EXPECT_NE(bad_inputs.output.find("--inputs"), std::string::npos) << bad_inputs.output;
  auto bad_n = run_longgan("bench attention --n 64,abc");
  EXPECT_EQ(bad_n.exit_code, 2);
  EXPECT_NE(bad_n.output.find("--n"), std::string::npos) << bad_n.output;
  auto missing_what = run_longgan("bench");
  EXPECT_EQ(missing_what.exit_code, 2);
  auto bad_file = run_longgan("bench attention --qkv /nonexistent/qkv.pt");
  EXPECT_EQ(bad_file.exit_code, 1);
  EXPECT_NE(bad_file.output.find("/nonexistent/qkv.pt"), std::string::npos) << bad_file.output;
  auto help = run_longgan("bench --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("--qkv"), std::string::npos);
}

TEST(BenchCommand, LoaderReportsImagesPerSecondOfThePackedData) {
  auto dir = fresh_dir("bench_loader");
  auto data = dir / "tiny.lgd";
  ASSERT_EQ(run_longgan("prepare --synthetic 40 --resolution 32 --output " + data.string()).exit_code, 0);
  auto json_path = dir / "loader.json";
  auto r = run_longgan("bench loader --data " + data.string() + " --batch 8 --batches 12 --json " + json_path.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("images/s"), std::string::npos) << r.output;
  std::ifstream in(json_path);
  auto doc = nlohmann::json::parse(in);
  EXPECT_EQ(doc["resolution"], 32);
  EXPECT_EQ(doc["batches"], 12);  // 12 batches of 8 from 40 images: the loader wraps epochs
  EXPECT_GT(doc["images_per_s"].get<double>(), 0.0);

  auto missing = run_longgan("bench loader");
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_NE(missing.output.find("--data"), std::string::npos) << missing.output;
  auto absent = run_longgan("bench loader --data /nonexistent/data.lgd");
  EXPECT_EQ(absent.exit_code, 1) << absent.output;
  EXPECT_NE(absent.output.find("/nonexistent/data.lgd"), std::string::npos) << absent.output;
}

TEST(BenchLayer, RowsNameTheKernelThatRanAndWhereTheTimeWent) {
  auto dir = fresh_dir("bench_layer");
  auto [r, doc] = run_bench_json("bench layer --resolution 32 --ch 8 --batch 2 --types dense,smyrf,clustered "
                                 "--repeats 1 --warmup 0 --phases", dir / "layer.json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("forward+backward: layout"), std::string::npos) << r.output;
  ASSERT_EQ(doc["rows"].size(), 3u);
  const int64_t channels = longgan::app::generator_attention_channels(32, 8);
  for (const auto& row : doc["rows"]) {
    ASSERT_FALSE(row.contains("error")) << row.dump();
    EXPECT_EQ(row["channels"].get<int64_t>(), channels);
    EXPECT_EQ(row["n"].get<int64_t>(), 1024);
    EXPECT_EQ(row["m"].get<int64_t>(), 256);
    EXPECT_EQ(row["dtype"].get<std::string>(), "fp32");
    EXPECT_GT(row["forward_backward_ms"].get<double>(), 0.0) << row.dump();
    const auto& phases = row["forward_backward_phases_ms"];
    for (const char* phase : {"layout", "kernel", "other", "total"}) EXPECT_TRUE(phases.contains(phase)) << row.dump();
  }
  const auto& dense = doc["rows"][0];
  EXPECT_EQ(dense["kernel"].get<std::string>().rfind("sdpa flash", 0), 0u) << dense.dump();
  EXPECT_DOUBLE_EQ(dense["relative_error_vs_dense"].get<double>(), 0.0);
  const auto& smyrf = doc["rows"][1];
  EXPECT_EQ(smyrf["kernel"].get<std::string>(), "fused cpu_flash");
  // A bare name is fitted to the block's lengths, as in training: 8 clusters of 128 queries and 32 keys.
  EXPECT_EQ(smyrf["spec"].get<std::string>(), "smyrf:hashes=4,q_cluster=128,k_cluster=32");
  for (const char* phase : {"hash", "gather", "merge", "backward kernel", "backward merge"}) {
    EXPECT_TRUE(smyrf["forward_backward_phases_ms"].contains(phase)) << phase << " " << smyrf.dump();
  }
  const double error = smyrf["relative_error_vs_dense"].get<double>();
  EXPECT_TRUE(error > 0.0 && error < 1.0) << smyrf.dump();
  longgan::checkpoints::remove_tree(dir);
}

TEST(BenchLayer, RunsUnderCpuBf16Autocast) {
  auto r = run_longgan("bench layer --resolution 32 --channels 16 --batch 1 --types dense "
                       "--spec smyrf:hashes=1,q_cluster=1024,k_cluster=256 --repeats 1 --warmup 0 --dtype bf16");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("bf16 autocast"), std::string::npos) << r.output;
  // One cluster: SMYRF is exact, so its error is bf16 rounding only.
  auto line = r.output.substr(r.output.find("smyrf "));
  std::istringstream fields(line);
  std::string type;
  double fwd, fwd_ratio, both, both_ratio, peak, error;
  fields >> type >> fwd >> fwd_ratio >> both >> both_ratio >> peak >> error;
  EXPECT_LT(error, 0.02) << line;
}

TEST(BenchLayer, BadOptionsAreUsageErrorsNamingTheOption) {
  for (const auto& [arguments, named] : std::vector<std::pair<std::string, std::string>>{
           {"bench layer", "--resolution"},
           {"bench layer --resolution 48", "--resolution"},
           {"bench layer --resolution 32 --channels 12", "--channels"},
           {"bench layer --resolution 32 --dtype fp16", "--dtype"},
           {"bench layer --resolution 32 --types dense,fast", "--types"},
           {"bench layer --resolution 32 --device tpu", "--device"}}) {
    auto r = run_longgan(arguments);
    EXPECT_EQ(r.exit_code, 2) << arguments << "\n" << r.output;
    EXPECT_NE(r.output.find(named), std::string::npos) << arguments << "\n" << r.output;
  }
}

TEST(BenchLayer, AttentionBenchPrintsPhasesToo) {
  auto r = run_longgan("bench attention --types dense,smyrf --n 256 --repeats 1 --warmup 0 --phases");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("smyrf auto N=256, forward+backward: hash"), std::string::npos) << r.output;
}

}  // namespace

namespace {

TEST(BenchStep, ProfilesTheWholeStepPerAttentionTypeAgainstDense) {
  const auto dir = fresh_dir("bench_step");
  const std::string json_path = (dir / "step.json").string();
  const auto result = longgan::app::testing::run_longgan(
      {"bench", "step", "--resolution", "32", "--ch", "8", "--batch", "2", "--warmup", "0", "--repeats", "1", "--types",
       "dense;smyrf:hashes=2,q_cluster=256,k_cluster=64;none", "--json", json_path});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("D step: loss and backward"), std::string::npos) << result.output;
  std::ifstream file(json_path);
  const nlohmann::json doc = nlohmann::json::parse(file);
  ASSERT_EQ(doc["rows"].size(), 3u);
  EXPECT_EQ(doc["images_per_step"], 4);  // batch 2 x 2 D steps
  for (const auto& row : doc["rows"]) {
    const double total = row["profiled_step_ms"].get<double>();
    double sections = 0;
    for (const char* name : {"D step: G forward (fakes, no grad)", "D step: D forward (fake + real)",
                             "D step: loss and backward", "D step: optimizer", "G step: G forward", "G step: D forward",
                             "G step: loss and backward", "G step: ortho and optimizer", "G_ema update"}) {
      ASSERT_TRUE(row["sections"].contains(name)) << name << " " << row;
      EXPECT_GT(row["sections"][name].get<double>(), 0.0) << name;
      sections += row["sections"][name].get<double>();
    }
    // The sections do not overlap and cover nearly all of the step.
    EXPECT_LE(sections, total * 1.001) << row;
    EXPECT_GE(sections, total * 0.7) << row;
    EXPECT_GT(row["sections"]["spectral norm (inside the passes)"].get<double>(), 0.0);
  }
  const auto& dense = doc["rows"][0];
  const auto& smyrf = doc["rows"][1];
  const auto& none = doc["rows"][2];
  EXPECT_EQ(dense["ratio_to_first"], 1.0);
  EXPECT_FALSE(dense["phases"].contains("hash"));
  EXPECT_GT(smyrf["phases"]["hash"].get<double>(), 0.0);
  // G attention at 32 and D attention at 16, each in three passes of a step: six calls.
  int64_t calls = 0;
  for (const auto& [name, count] : smyrf["implementations"].items()) calls += count.get<int64_t>();
  EXPECT_EQ(calls, 6) << smyrf["implementations"];
  EXPECT_TRUE(none["implementations"].empty());
  EXPECT_TRUE(none["phases"].empty());

  const auto bad = longgan::app::testing::run_longgan({"bench", "step", "--types", "dense;bogus"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("--types"), std::string::npos) << bad.output;
}

}  // namespace

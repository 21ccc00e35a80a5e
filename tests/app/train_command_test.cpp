// longgan train / sample end to end on a tiny model (32x32, ch 8, CPU, a few steps).
#include <gtest/gtest.h>

#include <iterator>
#include <sstream>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "checkpoints/atomic_file.h"
#include "checkpoints/checkpoint.h"
#include "tests/app/cli_test_util.h"

namespace longgan::app::testing {
namespace {
namespace fs = std::filesystem;

const fs::path& dataset_path() {
  static const fs::path path = fresh_dir("train_data") / "synthetic32.lgd";
  return path;
}
const fs::path& dataset() { return dataset_path(); }

// Makes the small synthetic dataset once; every test here trains on it.
void prepare_dataset() {
  static const bool prepared = [] {
    auto result = run_longgan({"prepare", "--synthetic", "64", "--resolution", "32", "--output", dataset_path().string()});
    EXPECT_EQ(result.exit_code, 0) << result.output;
    return result.exit_code == 0;
  }();
  ASSERT_TRUE(prepared) << "longgan prepare --synthetic failed; see the first test's output";
}

std::vector<std::string> tiny_train(const fs::path& out, int steps) {
  return {"train", "--data", dataset().string(), "--out", out.string(), "--steps", std::to_string(steps),
          "--resolution", "32", "--ch", "8", "--batch", "4", "--g-attn", "16", "--d-attn", "16",
          "--attention", "smyrf:hashes=2,q_cluster=64,k_cluster=16", "--seed", "5", "--device", "cpu",
          "--sample-every", "2", "--samples", "4", "--checkpoint-every", "2"};
}

TEST(TrainCommand, WritesRunFilesAndCheckpointThatLoads) {
  prepare_dataset();
  if (::testing::Test::HasFatalFailure()) return;
  fs::path run = fresh_dir("train_basic");
  auto result = run_longgan(tiny_train(run, 2));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  // A new run starts with the summary of the networks it trains (G attention at 16x16, pooled keys).
  EXPECT_NE(result.output.find("smyrf N=256 M=64"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("total D"), std::string::npos) << result.output;
  EXPECT_TRUE(fs::exists(run / "config.json"));
  EXPECT_TRUE(fs::exists(run / "samples" / "step-000002.png"));
  auto metrics = checkpoints::read_file(run / "metrics.jsonl");
  EXPECT_EQ(std::count(metrics.begin(), metrics.end(), '\n'), 2) << metrics;
  // Each line says when (unix seconds) and how fast (training images per second).
  const auto last = nlohmann::json::parse(metrics.substr(metrics.rfind('\n', metrics.size() - 2) + 1));
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_GT(last["time"].get<double>(), now - 600) << last;
  EXPECT_LE(last["time"].get<double>(), now) << last;
  EXPECT_GT(last["images_per_second"].get<double>(), 0) << last;
  auto checkpoint = checkpoints::read_checkpoint(run);
  EXPECT_EQ(checkpoint.step, 2);
  EXPECT_EQ(checkpoint.manifest["attention"]["type"], "smyrf");
  EXPECT_TRUE(checkpoint.files.count("G_ema")) << checkpoint.manifest.dump();
  auto info = run_longgan({"info", run.string()});
  EXPECT_EQ(info.exit_code, 0) << info.output;
  EXPECT_NE(info.output.find("smyrf"), std::string::npos) << info.output;
  checkpoints::remove_tree(run);
}

TEST(TrainCommand, ResumeIsBitExact) {
  prepare_dataset();
  if (::testing::Test::HasFatalFailure()) return;
  fs::path straight = fresh_dir("train_straight");
  fs::path resumed = fresh_dir("train_resumed");
  ASSERT_EQ(run_longgan(tiny_train(straight, 4)).exit_code, 0);
  ASSERT_EQ(run_longgan(tiny_train(resumed, 2)).exit_code, 0);
  auto result = run_longgan(with(tiny_train(resumed, 4), {"--resume"}));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  expect_identical_checkpoints(straight, resumed);
  EXPECT_EQ(metrics_without_timing(straight / "metrics.jsonl"), metrics_without_timing(resumed / "metrics.jsonl"));
  // log.txt keeps what both processes printed, the resumed part after a marker.
  const std::string log = checkpoints::read_file(resumed / "log.txt");
  const size_t marker = log.find("=== resumed from " + (resumed / "step-000002").string() + " (step 2) at ");
  ASSERT_NE(marker, std::string::npos) << log;
  EXPECT_NE(log.find("total D"), std::string::npos) << log;  // the first process's model summary
  EXPECT_LT(log.find("done: step 2"), marker) << log;
  EXPECT_GT(log.find("done: step 4"), marker) << log;
  EXPECT_NE(log.find("data verified"), std::string::npos) << log;  // printed before the run was accepted
  EXPECT_EQ(log.find('\r'), std::string::npos) << log;
  EXPECT_EQ(log.find('\x1b'), std::string::npos) << log;
  checkpoints::remove_tree(straight);
  checkpoints::remove_tree(resumed);
}

TEST(TrainCommand, SampleGridsDoNotChangeTheTraining) {
  // The grids render with hashing attention (smyrf) from a generator of their own: a run that
  // renders every step trains exactly as one that renders every other step, and both draw the
  // same grid at step 2.
  prepare_dataset();
  if (::testing::Test::HasFatalFailure()) return;
  fs::path every_other = fresh_dir("grids_every_other"), every = fresh_dir("grids_every");
  ASSERT_EQ(run_longgan(tiny_train(every_other, 2)).exit_code, 0);
  auto result = run_longgan(with(tiny_train(every, 2), {"--sample-every", "1"}));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  ASSERT_TRUE(fs::exists(every / "samples" / "step-000001.png"));
  expect_identical_checkpoints(every_other / "step-000002", every / "step-000002");
  EXPECT_EQ(checkpoints::read_file(every_other / "samples" / "step-000002.png"),
            checkpoints::read_file(every / "samples" / "step-000002.png"));
  checkpoints::remove_tree(every_other);
  checkpoints::remove_tree(every);
}

TEST(TrainCommand, KilledDuringCheckpointWriteKeepsThePreviousOne) {
  prepare_dataset();
  if (::testing::Test::HasFatalFailure()) return;
  fs::path run = fresh_dir("train_crash");
  ASSERT_EQ(run_longgan(tiny_train(run, 2)).exit_code, 0);
  pid_t pid = start_longgan(with(tiny_train(run, 4), {"--resume"}), run / "crash.log",
                            {"LONGGAN_TEST_PAUSE_IN_CHECKPOINT=30"});
  // The step-4 checkpoint's temporary directory with its tensor files: the writer is paused there.
  bool writing = wait_until([&] {
    for (const auto& entry : fs::directory_iterator(run)) {
      if (entry.path().filename().string().rfind(".tmp-step-000004", 0) == 0 && fs::exists(entry.path() / "G.pt")) {
        return true;
      }
    }
    return false;
  }, 120);
  ::kill(pid, SIGKILL);
  EXPECT_EQ(wait_for(pid), 128 + SIGKILL);
  ASSERT_TRUE(writing) << checkpoints::read_file(run / "crash.log");
  EXPECT_EQ(checkpoints::read_checkpoint(run).step, 2);
  auto result = run_longgan(with(tiny_train(run, 4), {"--resume"}));
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(checkpoints::read_checkpoint(run).step, 4);
  for (const auto& entry : fs::directory_iterator(run)) {
    EXPECT_NE(entry.path().filename().string().rfind(".tmp-", 0), 0u) << entry.path();
  }
  checkpoints::remove_tree(run);
}

TEST(TrainCommand, SigintCheckpointsAndExits130) {
  prepare_dataset();
  if (::testing::Test::HasFatalFailure()) return;
  fs::path run = fresh_dir("train_sigint");
  pid_t pid = start_longgan(with(tiny_train(run, 100000), {"--checkpoint-every", "1000", "--sample-every", "0"}),
                            run / "sigint.log");
  bool started = wait_until([&] {
    return fs::exists(run / "metrics.jsonl") && checkpoints::read_file(run / "metrics.jsonl").find("\"step\":2") != std::string::npos;
  }, 120);
  ::kill(pid, SIGINT);
  EXPECT_EQ(wait_for(pid), 130) << checkpoints::read_file(run / "sigint.log");
  ASSERT_TRUE(started);
  auto metrics = checkpoints::read_file(run / "metrics.jsonl");
  int64_t lines = std::count(metrics.begin(), metrics.end(), '\n');
  const int64_t step = checkpoints::read_checkpoint(run).step;
  EXPECT_EQ(step, lines);
  // The advice it prints works as written: that command resumes the run (stopped again here).
  const std::string log = checkpoints::read_file(run / "sigint.log");
  const std::string marker = "resume with: longgan ";
  const size_t at = log.find(marker);
  ASSERT_NE(at, std::string::npos) << log;
  std::istringstream advised(log.substr(at + marker.size(), log.find('\n', at) - at - marker.size()));
  std::vector<std::string> words{std::istream_iterator<std::string>(advised), std::istream_iterator<std::string>()};
  EXPECT_EQ(words, (std::vector<std::string>{"train", "--out", run.string(), "--resume"}));
  pid = start_longgan(words, run / "resumed.log");
  const std::string next = "\"step\":" + std::to_string(step + 1) + ",";
  bool resumed = wait_until([&] { return checkpoints::read_file(run / "metrics.jsonl").find(next) != std::string::npos; },
                            120);
  ::kill(pid, SIGINT);
  EXPECT_EQ(wait_for(pid), 130) << checkpoints::read_file(run / "resumed.log");
  EXPECT_TRUE(resumed) << checkpoints::read_file(run / "resumed.log");
  EXPECT_NE(checkpoints::read_file(run / "resumed.log").find("resuming from"), std::string::npos);
  checkpoints::remove_tree(run);
}

TEST(TrainCommand, ResumeWithAnotherModelConfigNamesTheMismatch) {
  prepare_dataset();
  if (::testing::Test::HasFatalFailure()) return;
  fs::path run = fresh_dir("train_mismatch");
  ASSERT_EQ(run_longgan(tiny_train(run, 2)).exit_code, 0);
  auto result = run_longgan(with(tiny_train(run, 4), {"--resume", "--ch", "16"}));
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_NE(result.output.find("model.ch (--ch): checkpoint 8, now 16"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("--allow-config-change"), std::string::npos) << result.output;
  // Allowed, the weights of the checkpoint still do not fit the wider model: named by shape.
  result = run_longgan(with(tiny_train(run, 4), {"--resume", "--ch", "16", "--allow-config-change"}));
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("shape"), std::string::npos) << result.output;
  auto again = run_longgan(tiny_train(run, 4));  // no --resume into a run with checkpoints
  EXPECT_EQ(again.exit_code, 2) << again.output;
  EXPECT_NE(again.output.find("pass --resume to continue that run"), std::string::npos) << again.output;
  // Its advice, followed: the same command with --resume continues the run.
  auto resumed = run_longgan(with(tiny_train(run, 4), {"--resume"}));
  EXPECT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_EQ(checkpoints::read_checkpoint(run).step, 4);
  checkpoints::remove_tree(run);
}

TEST(TrainCommand, DistributedSettingsAreRecordedAndAResumeKeepsThem) {
  prepare_dataset();
  if (::testing::Test::HasFatalFailure()) return;
  fs::path run = fresh_dir("train_record");
  auto first = run_longgan(with(tiny_train(run, 2), {"--sync-bn", "0", "--dist-timeout", "60", "--dist-check-every", "5"}));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  auto config = nlohmann::json::parse(checkpoints::read_file(run / "config.json"));
  EXPECT_EQ(config["run"]["sync_bn"], false);
  EXPECT_EQ(config["run"]["dist_timeout"], 60.0);
  EXPECT_EQ(config["run"]["dist_check_every"], 5);
  // Resumed without the flags: the recorded values, not the defaults.
  ASSERT_EQ(run_longgan(with(tiny_train(run, 4), {"--resume"})).exit_code, 0);
  config = nlohmann::json::parse(checkpoints::read_file(run / "config.json"));
  EXPECT_EQ(config["run"]["sync_bn"], false);
  EXPECT_EQ(config["run"]["dist_check_every"], 5);
  // A value that changes results is refused by name (all of them at once); timeouts may change.
  auto changed = run_longgan(with(tiny_train(run, 6), {"--resume", "--sync-bn", "true", "--lr-g", "0.001",
                                                       "--dist-timeout", "30"}));
  EXPECT_EQ(changed.exit_code, 2) << changed.output;
  EXPECT_NE(changed.output.find("run.sync_bn (--sync-bn): checkpoint false, now true"), std::string::npos) << changed.output;
  EXPECT_NE(changed.output.find("train.lr_g (--lr-g): checkpoint"), std::string::npos) << changed.output;
  EXPECT_EQ(changed.output.find("dist_timeout"), std::string::npos) << changed.output;
  EXPECT_EQ(checkpoints::read_checkpoint(run).step, 4);
  auto allowed = run_longgan(with(tiny_train(run, 6), {"--resume", "--sync-bn", "true", "--allow-config-change"}));
  ASSERT_EQ(allowed.exit_code, 0) << allowed.output;
  EXPECT_EQ(nlohmann::json::parse(checkpoints::read_file(run / "config.json"))["run"]["sync_bn"], true);
  checkpoints::remove_tree(run);
}

TEST(SampleCommand, SamplingStatisticsAreChosenAndRecorded) {
  prepare_dataset();
  if (::testing::Test::HasFatalFailure()) return;
  fs::path run = fresh_dir("sample_stats");
  ASSERT_EQ(run_longgan(with(tiny_train(run, 2), {"--sampling-stats", "standing", "--standing-stats", "3"})).exit_code, 0);
  auto render = [&](const std::string& name, const std::vector<std::string>& more) {
    auto result = run_longgan(with({"sample", "--checkpoint", run.string(), "--out", (run / name).string(), "--n", "4"}, more));
    EXPECT_EQ(result.exit_code, 0) << result.output;
    return nlohmann::json::parse(checkpoints::read_file(run / (name + ".json")));
  };
  // The run's own setting (standing, 3 passes) unless a flag says otherwise.
  auto own = render("own.png", {});
  EXPECT_EQ(own["sampling_stats"], "standing");
  EXPECT_EQ(own["standing_stats"], 3);
  EXPECT_EQ(render("running.png", {"--sampling-stats", "running"})["sampling_stats"], "running");
  auto standing = render("standing.png", {"--sampling-stats", "standing", "--standing-stats", "3"});
  EXPECT_EQ(standing["sampling_stats"], "standing");
  EXPECT_EQ(standing["standing_stats"], 3);
  EXPECT_EQ(render("batch.png", {"--sampling-stats", "batch"})["sampling_stats"], "batch");
  EXPECT_EQ(checkpoints::read_file(run / "own.png"), checkpoints::read_file(run / "standing.png"));
  EXPECT_NE(checkpoints::read_file(run / "running.png"), checkpoints::read_file(run / "standing.png"));
  EXPECT_NE(checkpoints::read_file(run / "running.png"), checkpoints::read_file(run / "batch.png"));

  auto bad = run_longgan({"sample", "--checkpoint", run.string(), "--out", (run / "bad.png").string(),
                          "--sampling-stats", "median"});
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("--sampling-stats"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("running, batch or standing"), std::string::npos) << bad.output;
  auto zero = run_longgan({"sample", "--checkpoint", run.string(), "--out", (run / "bad.png").string(),
                           "--standing-stats", "0"});
  EXPECT_EQ(zero.exit_code, 2) << zero.output;
  EXPECT_FALSE(fs::exists(run / "bad.png"));
  auto train_bad = run_longgan(with(tiny_train(fresh_dir("bad_stats"), 1), {"--sampling-stats", "mean"}));
  EXPECT_EQ(train_bad.exit_code, 2) << train_bad.output;
  EXPECT_NE(train_bad.output.find("run.sampling_stats"), std::string::npos) << train_bad.output;
  checkpoints::remove_tree(run);
}

TEST(SampleCommand, AttentionSwapRecordedAndCompared) {
  prepare_dataset();
  if (::testing::Test::HasFatalFailure()) return;
  fs::path run = fresh_dir("sample_swap");
  ASSERT_EQ(run_longgan(tiny_train(run, 2)).exit_code, 0);
  fs::path png = run / "dense.png";
  auto result = run_longgan({"sample", "--checkpoint", run.string(), "--out", png.string(), "--n", "4", "--seed", "1",
                             "--attention", "dense"});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  ASSERT_TRUE(fs::exists(png));
  auto sidecar = nlohmann::json::parse(checkpoints::read_file(run / "dense.png.json"));
  EXPECT_EQ(sidecar["attention"]["type"], "dense");
  EXPECT_EQ(sidecar["seed"], 1);

  // "smyrf" alone is the checkpoint's own smyrf options: no difference at all.
  auto compare = run_longgan({"sample", "--checkpoint", run.string(), "--out", (run / "cmp.png").string(), "--n",
                              "4", "--compare-attention", "dense,smyrf:hashes=1,q_cluster=256,k_cluster=64,smyrf"});
  ASSERT_EQ(compare.exit_code, 0) << compare.output;
  EXPECT_NE(compare.output.find("mean |difference|"), std::string::npos) << compare.output;
  auto record = nlohmann::json::parse(checkpoints::read_file(run / "cmp.png.json"));
  ASSERT_EQ(record["compare"].size(), 3u) << record.dump();
  EXPECT_EQ(record["compare"][0]["attention"]["type"], "dense");
  EXPECT_EQ(record["compare"][2]["attention"]["q_cluster"], 64);
  EXPECT_EQ(record["compare"][2]["mean_abs_pixel_difference"].get<double>(), 0.0);
  // One cluster of every query and key (exact smyrf) matches dense up to float rounding.
  EXPECT_NEAR(record["compare"][1]["mean_abs_pixel_difference"].get<double>(),
              record["compare"][0]["mean_abs_pixel_difference"].get<double>(), 0.05);

  auto too_big = run_longgan({"sample", "--checkpoint", run.string(), "--out", (run / "bad.png").string(),
                              "--compare-attention", "dense,smyrf:q_cluster=4096,k_cluster=1024"});
  EXPECT_EQ(too_big.exit_code, 2) << too_big.output;
  EXPECT_NE(too_big.output.find("--compare-attention smyrf:q_cluster=4096"), std::string::npos) << too_big.output;
  EXPECT_FALSE(fs::exists(run / "bad.png"));

  // With --attention the comparison is against what --attention renders, and the record says so.
  auto against = run_longgan({"sample", "--checkpoint", run.string(), "--out", (run / "vs_dense.png").string(), "--n",
                              "2", "--attention", "dense", "--compare-attention", "dense,smyrf"});
  ASSERT_EQ(against.exit_code, 0) << against.output;
  EXPECT_NE(against.output.find("against --attention dense"), std::string::npos) << against.output;
  EXPECT_NE(against.output.find("(attention dense;"), std::string::npos) << against.output;
  auto against_record = nlohmann::json::parse(checkpoints::read_file(run / "vs_dense.png.json"));
  EXPECT_EQ(against_record["attention"]["type"], "dense");
  EXPECT_EQ(against_record["compare"][0]["mean_abs_pixel_difference"].get<double>(), 0.0);
  checkpoints::remove_tree(run);
}

}  // namespace
}  // namespace longgan::app::testing

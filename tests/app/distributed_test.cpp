// longgan train as 2 ranks (2 processes on localhost, Gloo, the environment torchrun sets)
// against one process with the global batch; resume, a killed rank and a signalled rank.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "checkpoints/atomic_file.h"
#include "checkpoints/checkpoint.h"
#include "gan/distributed/process_group.h"
#include "tests/free_port.h"
#include "tests/app/cli_test_util.h"

namespace longgan::app::testing {
namespace {
using longgan::testing::free_port;
namespace fs = std::filesystem;

const fs::path& dataset() {
  static const fs::path path = [] {
    fs::path file = fresh_dir("distributed_data") / "synthetic32.lgd";
    auto result = run_longgan({"prepare", "--synthetic", "64", "--resolution", "32", "--output", file.string()});
    EXPECT_EQ(result.exit_code, 0) << result.output;
    return file;
  }();
  return path;
}

// A tiny run. Adam's epsilon is raised from 1e-6 to 1e-3: with a tiny epsilon Adam normalizes
// each gradient element to about +-lr whatever its size, so the float32 rounding differences of
// near-zero gradients (biases before a batch norm have an exact gradient of zero) between a
// batch of 4 and two all-reduced batches of 2 would become full-size updates.
std::vector<std::string> tiny_train(const fs::path& out, int steps, int batch) {
  return {"train", "--data", dataset().string(), "--out", out.string(), "--steps", std::to_string(steps),
          "--resolution", "32", "--ch", "8", "--batch", std::to_string(batch), "--g-attn", "16", "--d-attn", "16",
          "--attention", "dense", "--seed", "5", "--device", "cpu", "--adam-eps", "1e-3",
          "--sample-every", "2", "--samples", "4", "--checkpoint-every", "2", "--dist-timeout", "30"};
}

struct Ranks {
  std::vector<pid_t> pids;
  std::vector<fs::path> logs;
  std::string output(int rank) const { return checkpoints::read_file(logs[static_cast<size_t>(rank)]); }
};

Ranks start_ranks(const std::vector<std::string>& args, const fs::path& log_dir, int ranks = 2) {
  const int port = free_port();
  Ranks result;
  for (int r = 0; r < ranks; ++r) {
    result.logs.push_back(log_dir / ("rank" + std::to_string(r) + ".log"));
    result.pids.push_back(start_longgan(args, result.logs.back(),
                                        {"RANK=" + std::to_string(r), "WORLD_SIZE=" + std::to_string(ranks),
                                         "LOCAL_RANK=" + std::to_string(r), "MASTER_ADDR=127.0.0.1",
                                         "MASTER_PORT=" + std::to_string(port)}));
  }
  return result;
}

// Exit codes of all ranks.
std::vector<int> wait_all(const Ranks& ranks) {
  std::vector<int> codes;
  for (pid_t pid : ranks.pids) codes.push_back(wait_for(pid));
  return codes;
}

// ||a - b|| / ||b|| over every tensor of a checkpoint file (parameters and buffers).
double relative_difference(const checkpoints::TensorMap& a, const checkpoints::TensorMap& b) {
  double num = 0, den = 0;
  for (const auto& [name, tensor] : b) {
    const at::Tensor x = a.at(name).to(at::kDouble), y = tensor.to(at::kDouble);
    num += (x - y).square().sum().item<double>();
    den += y.square().sum().item<double>();
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

int64_t lines(const fs::path& file) {
  const std::string text = checkpoints::read_file(file);
  return std::count(text.begin(), text.end(), '\n');
}

TEST(Distributed, TwoRanksMatchOneProcessWithTheGlobalBatch) {
  if (!gan::ProcessGroup::backend_available(c10::DeviceType::CPU)) GTEST_SKIP() << "built without Gloo (libgloo-dev)";
  dataset();
  const fs::path single = fresh_dir("distributed_single"), two = fresh_dir("distributed_two");
  const fs::path logs = fresh_dir("distributed_two_logs");
  auto one = run_longgan(tiny_train(single, 3, 4));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  Ranks ranks = start_ranks(tiny_train(two, 3, 2), logs);
  const auto codes = wait_all(ranks);
  ASSERT_EQ(codes, (std::vector<int>{0, 0})) << ranks.output(0) << "\n---\n" << ranks.output(1);
  EXPECT_NE(ranks.output(0).find("distributed: 2 ranks (gloo)"), std::string::npos) << ranks.output(0);
  EXPECT_EQ(ranks.output(1).find("done:"), std::string::npos) << "rank 1 prints nothing: " << ranks.output(1);

  auto a = checkpoints::read_checkpoint(single), b = checkpoints::read_checkpoint(two);
  ASSERT_EQ(b.step, 3);
  for (const char* file : {"G", "G_ema", "D"}) {
    EXPECT_LT(relative_difference(b.files.at(file), a.files.at(file)), 1e-5) << file;
  }
  // G's batch norm statistics, one by one.
  int checked = 0;
  for (const auto& [name, tensor] : a.files.at("G")) {
    if (name.find("running_") == std::string::npos) continue;
    ++checked;
    EXPECT_LT(relative_difference({{name, b.files.at("G").at(name)}}, {{name, tensor}}), 1e-5) << name;
  }
  EXPECT_GT(checked, 4);
  EXPECT_TRUE(torch::equal(a.files.at("loader").at("position"), b.files.at("loader").at("position")));
  EXPECT_TRUE(torch::equal(a.files.at("trainer").at("generator"), b.files.at("trainer").at("generator")));
  // Rank 0 alone wrote (and locked the run directory): one metrics line and one sample per step, the checkpoints of steps 2 and 3.
  EXPECT_EQ(lines(two / "metrics.jsonl"), 3);
  EXPECT_EQ(std::distance(fs::directory_iterator(two / "samples"), fs::directory_iterator()), 1);
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(two)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"config.json", "latest", "lock", "log.txt", "metrics.jsonl", "samples", "step-000002",
                                             "step-000003", "tensorboard"}));

  // Without cross-replica batch norm the ranks normalize with the statistics of their half batch.
  const fs::path local = fresh_dir("distributed_local_bn");
  Ranks unsynced = start_ranks(with(tiny_train(local, 2, 2), {"--sync-bn", "false"}), fresh_dir("distributed_local_logs"));
  ASSERT_EQ(wait_all(unsynced), (std::vector<int>{0, 0})) << unsynced.output(0);
  auto c = checkpoints::read_checkpoint(local), a2 = checkpoints::read_checkpoint(single / "step-000002");
  EXPECT_GT(relative_difference(c.files.at("G"), a2.files.at("G")), 1e-3);
  checkpoints::remove_tree(single);
  checkpoints::remove_tree(local);
}

TEST(Distributed, TwoRanksWithDiffAugmentMatchOneProcess) {
  // The augmentation parameters are drawn for the global batch on every rank and each rank applies
  // its own samples' draws: 2 ranks of 2 augment exactly as 1 process of 4.
  if (!gan::ProcessGroup::backend_available(c10::DeviceType::CPU)) GTEST_SKIP() << "built without Gloo (libgloo-dev)";
  dataset();
  const std::vector<std::string> diffaug{"--diffaug", "color,translation,cutout"};
  const fs::path single = fresh_dir("distributed_diffaug_single"), two = fresh_dir("distributed_diffaug_two");
  auto one = run_longgan(with(tiny_train(single, 2, 4), diffaug));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  Ranks ranks = start_ranks(with(tiny_train(two, 2, 2), diffaug), fresh_dir("distributed_diffaug_logs"));
  ASSERT_EQ(wait_all(ranks), (std::vector<int>{0, 0})) << ranks.output(0) << "\n---\n" << ranks.output(1);
  EXPECT_NE(checkpoints::read_file(two / "config.json").find("\"diffaug\": \"color,translation,cutout\""),
            std::string::npos);
  auto a = checkpoints::read_checkpoint(single), b = checkpoints::read_checkpoint(two);
  ASSERT_EQ(b.step, 2);
  for (const char* file : {"G", "D"}) EXPECT_LT(relative_difference(b.files.at(file), a.files.at(file)), 1e-5) << file;
  EXPECT_TRUE(torch::equal(a.files.at("trainer").at("generator"), b.files.at("trainer").at("generator")));
  // Without the augmentation the same run ends elsewhere: the check above is not vacuous.
  const fs::path plain = fresh_dir("distributed_diffaug_plain");
  ASSERT_EQ(run_longgan(tiny_train(plain, 2, 4)).exit_code, 0);
  const double off = relative_difference(checkpoints::read_checkpoint(plain).files.at("D"), a.files.at("D"));
  std::printf("D with and without DiffAugment after 2 steps: relative difference %.3g\n", off);
  EXPECT_GT(off, 1e-4);
  for (const fs::path& dir : {single, two, plain}) checkpoints::remove_tree(dir);
}

TEST(Distributed, ResumeOfATwoRankRunIsBitExact) {
  if (!gan::ProcessGroup::backend_available(c10::DeviceType::CPU)) GTEST_SKIP() << "built without Gloo (libgloo-dev)";
  dataset();
  const fs::path straight = fresh_dir("distributed_straight"), resumed = fresh_dir("distributed_resumed");
  Ranks full = start_ranks(tiny_train(straight, 3, 2), fresh_dir("distributed_straight_logs"));
  ASSERT_EQ(wait_all(full), (std::vector<int>{0, 0})) << full.output(0);
  Ranks first = start_ranks(tiny_train(resumed, 2, 2), fresh_dir("distributed_first_logs"));
  ASSERT_EQ(wait_all(first), (std::vector<int>{0, 0})) << first.output(0);
  Ranks second = start_ranks(with(tiny_train(resumed, 3, 2), {"--resume", "--dist-check-every", "1"}),
                             fresh_dir("distributed_second_logs"));
  ASSERT_EQ(wait_all(second), (std::vector<int>{0, 0})) << second.output(0) << "\n---\n" << second.output(1);
  EXPECT_NE(second.output(0).find("resuming from"), std::string::npos) << second.output(0);
  auto a = checkpoints::read_checkpoint(straight), b = checkpoints::read_checkpoint(resumed);
  ASSERT_EQ(b.step, 3);
  for (const auto& [file, tensors] : a.files) {
    for (const auto& [name, tensor] : tensors) {
      EXPECT_TRUE(torch::equal(tensor, b.files.at(file).at(name))) << file << "/" << name;
    }
  }
  EXPECT_EQ(metrics_without_timing(straight / "metrics.jsonl"), metrics_without_timing(resumed / "metrics.jsonl"));
  checkpoints::remove_tree(straight);
  checkpoints::remove_tree(resumed);
}

bool reached_step(const fs::path& run, int step) {
  return fs::exists(run / "metrics.jsonl") &&
         checkpoints::read_file(run / "metrics.jsonl").find("\"step\":" + std::to_string(step)) != std::string::npos;
}

TEST(Distributed, KilledRankMakesTheOtherFailWithinTheTimeout) {
  if (!gan::ProcessGroup::backend_available(c10::DeviceType::CPU)) GTEST_SKIP() << "built without Gloo (libgloo-dev)";
  dataset();
  const fs::path run = fresh_dir("distributed_killed");
  Ranks ranks = start_ranks(with(tiny_train(run, 100000, 2), {"--dist-timeout", "15", "--sample-every", "0",
                                                               "--checkpoint-every", "1000"}),
                            fresh_dir("distributed_killed_logs"));
  const bool started = wait_until([&] { return reached_step(run, 2); }, 120);
  ::kill(ranks.pids[1], SIGKILL);
  const auto killed_at = std::chrono::steady_clock::now();
  const int code = wait_for(ranks.pids[0]);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  EXPECT_EQ(wait_for(ranks.pids[1]), 128 + SIGKILL);
  ASSERT_TRUE(started) << ranks.output(0);
  EXPECT_EQ(code, 1) << ranks.output(0);
  EXPECT_LT(seconds, 15 + 10);
  EXPECT_NE(ranks.output(0).find("distributed: rank 0 of 2"), std::string::npos) << ranks.output(0);
  checkpoints::remove_tree(run);
}

TEST(Distributed, SigtermOnOneRankStopsAllRanksAtOneCheckpoint) {
  if (!gan::ProcessGroup::backend_available(c10::DeviceType::CPU)) GTEST_SKIP() << "built without Gloo (libgloo-dev)";
  dataset();
  const fs::path run = fresh_dir("distributed_sigterm");
  Ranks ranks = start_ranks(with(tiny_train(run, 100000, 2), {"--sample-every", "0", "--checkpoint-every", "1000"}),
                            fresh_dir("distributed_sigterm_logs"));
  const bool started = wait_until([&] { return reached_step(run, 2); }, 120);
  ::kill(ranks.pids[1], SIGTERM);
  const auto codes = wait_all(ranks);
  ASSERT_TRUE(started) << ranks.output(0);
  EXPECT_EQ(codes, (std::vector<int>{128 + SIGTERM, 128 + SIGTERM})) << ranks.output(0) << "\n---\n" << ranks.output(1);
  const int64_t step = checkpoints::read_checkpoint(run).step;
  EXPECT_EQ(step, lines(run / "metrics.jsonl"));
  EXPECT_EQ(checkpoints::list_checkpoints(run).size(), 1u);
  EXPECT_NE(ranks.output(0).find("stopped by signal 15"), std::string::npos) << ranks.output(0);
  checkpoints::remove_tree(run);
}

}  // namespace
}  // namespace longgan::app::testing

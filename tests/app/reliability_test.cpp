// Run-directory reliability end to end: the lock, damaged checkpoints, non-finite state,
// validation before writing, data changes on resume, leftovers of dead writers.
#include <gtest/gtest.h>

#include <iterator>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "checkpoints/atomic_file.h"
#include "checkpoints/checkpoint.h"
#include "tests/app/cli_test_util.h"

namespace longgan::app::testing {
namespace {
namespace fs = std::filesystem;

const fs::path& data_dir() {
  static const fs::path dir = fresh_dir("reliability_data");
  return dir;
}

// Two small synthetic datasets (different contents), made once.
fs::path dataset(int count) {
  fs::path path = data_dir() / ("synthetic32_" + std::to_string(count) + ".lgd");
  if (!fs::exists(path)) {
    auto result = run_longgan({"prepare", "--synthetic", std::to_string(count), "--resolution", "32", "--output",
                               path.string()});
    EXPECT_EQ(result.exit_code, 0) << result.output;
  }
  return path;
}

std::vector<std::string> tiny_train(const fs::path& out, int steps, int count = 64) {
  return {"train", "--data", dataset(count).string(), "--out", out.string(), "--steps", std::to_string(steps),
          "--resolution", "32", "--ch", "8", "--batch", "4", "--g-attn", "16", "--d-attn", "16",
          "--attention", "smyrf:hashes=2,q_cluster=64,k_cluster=16", "--seed", "5", "--device", "cpu",
          "--sample-every", "2", "--samples", "4", "--checkpoint-every", "2"};
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(RunReliability, SecondTrainerOnARunDirectoryIsRefused) {
  fs::path run = fresh_dir("rel_lock");
  ASSERT_EQ(run_longgan(tiny_train(run, 2)).exit_code, 0);
  // The first trainer pauses in its step-4 checkpoint write, holding the lock.
  pid_t first = start_longgan(with(tiny_train(run, 4), {"--resume"}), run / "first.log",
                              {"LONGGAN_TEST_PAUSE_IN_CHECKPOINT=6"});
  const std::string pid = std::to_string(first);
  bool locked = wait_until([&] {
    return fs::exists(run / "lock") && checkpoints::read_file(run / "lock") == pid + "\n";
  }, 120);
  auto second = run_longgan(with(tiny_train(run, 6), {"--resume"}));
  EXPECT_EQ(wait_for(first), 0) << checkpoints::read_file(run / "first.log");
  ASSERT_TRUE(locked);
  EXPECT_NE(second.exit_code, 0) << second.output;
  EXPECT_TRUE(contains(second.output, "in use by another longgan train (pid " + pid + ",")) << second.output;
  // The first one finished undisturbed.
  EXPECT_EQ(checkpoints::read_checkpoint(run).step, 4);
  auto metrics = checkpoints::read_file(run / "metrics.jsonl");
  EXPECT_EQ(std::count(metrics.begin(), metrics.end(), '\n'), 4) << metrics;
  // Released on exit: the next trainer runs.
  EXPECT_EQ(run_longgan(with(tiny_train(run, 6), {"--resume"})).exit_code, 0);
  checkpoints::remove_tree(run);
}

TEST(RunReliability, DamagedCheckpointIsNamedEverywhere) {
  fs::path run = fresh_dir("rel_damaged");
  ASSERT_EQ(run_longgan(tiny_train(run, 4)).exit_code, 0);
  const fs::path file = run / "step-000004" / "G_ema.pt";
  std::string bytes = checkpoints::read_file(file);
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x10);
  checkpoints::write_file_durable(file, bytes);

  auto sample = run_longgan({"sample", "--checkpoint", run.string(), "--out", (run / "s.png").string(), "--n", "4"});
  EXPECT_EQ(sample.exit_code, 1) << sample.output;
  EXPECT_TRUE(contains(sample.output, file.string())) << sample.output;
  EXPECT_FALSE(fs::exists(run / "s.png"));
  auto info = run_longgan({"info", run.string()});
  EXPECT_EQ(info.exit_code, 1) << info.output;
  EXPECT_TRUE(contains(info.output, file.string())) << info.output;

  auto verify = run_longgan({"info", run.string(), "--verify"});
  EXPECT_EQ(verify.exit_code, 1) << verify.output;
  EXPECT_TRUE(contains(verify.output, "DAMAGED " + (run / "step-000004").string())) << verify.output;
  EXPECT_TRUE(contains(verify.output, "ok      " + (run / "step-000002").string())) << verify.output;
  EXPECT_TRUE(contains(verify.output, file.string())) << verify.output;

  // Resume names the damaged file and offers the previous intact step.
  auto resume = run_longgan(with(tiny_train(run, 6), {"--resume"}));
  EXPECT_EQ(resume.exit_code, 1) << resume.output;
  EXPECT_TRUE(contains(resume.output, file.string())) << resume.output;
  EXPECT_TRUE(contains(resume.output, "previous intact checkpoint is '" + (run / "step-000002").string()))
      << resume.output;
  // A step directory missing a file (half deleted) is never resumed from; the intact one is offered.
  fs::remove(run / "step-000004" / "D.pt");
  auto incomplete = run_longgan(with(tiny_train(run, 6), {"--resume"}));
  EXPECT_EQ(incomplete.exit_code, 1) << incomplete.output;
  EXPECT_TRUE(contains(incomplete.output, (run / "step-000004" / "D.pt").string())) << incomplete.output;
  EXPECT_TRUE(contains(incomplete.output, "newest intact checkpoint is '" + (run / "step-000002").string()))
      << incomplete.output;
  // Following its advice resumes.
  fs::rename(run / "step-000004", run / "damaged-step-000004");
  checkpoints::write_file_atomic(run / "latest", "step-000002\n");
  EXPECT_EQ(run_longgan(with(tiny_train(run, 4), {"--resume"})).exit_code, 0);
  auto again = run_longgan({"info", run.string(), "--verify"});
  EXPECT_EQ(again.exit_code, 0) << again.output;
  checkpoints::remove_tree(run);
}

TEST(RunReliability, NonFiniteOptimizerStateIsNotCheckpointed) {
  fs::path run = fresh_dir("rel_nonfinite");
  auto result = run_longgan(tiny_train(run, 4), {"LONGGAN_TEST_INF_IN_STATE_AT_STEP=4"});
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_TRUE(contains(result.output, "non-finite training state at step 4")) << result.output;
  // The error that ended the run is in its log too.
  EXPECT_TRUE(contains(checkpoints::read_file(run / "log.txt"), "non-finite training state at step 4"));
  EXPECT_TRUE(contains(result.output, "exp_avg_sq")) << result.output;
  EXPECT_TRUE(contains(result.output, "Last good checkpoint: " + (run / "step-000002").string())) << result.output;
  EXPECT_FALSE(fs::exists(run / "step-000004"));
  EXPECT_EQ(checkpoints::read_checkpoint(run).step, 2);
  // The advised command works as written: it resumes from step 2 with another seed to the end.
  const size_t open = result.output.find("`longgan "), close = result.output.find('`', open + 1);
  ASSERT_NE(open, std::string::npos) << result.output;
  ASSERT_NE(close, std::string::npos) << result.output;
  std::istringstream advised(result.output.substr(open + 9, close - open - 9));
  std::vector<std::string> words{std::istream_iterator<std::string>(advised), std::istream_iterator<std::string>()};
  EXPECT_EQ(words, (std::vector<std::string>{"train", "--out", run.string(), "--resume", "--seed", "6",
                                             "--allow-config-change"}));
  auto resumed = run_longgan(words);
  EXPECT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_EQ(checkpoints::read_checkpoint(run).step, 4);
  checkpoints::remove_tree(run);
}

TEST(RunReliability, RefusedResumeWritesNothing) {
  fs::path run = fresh_dir("rel_refused");
  ASSERT_EQ(run_longgan(tiny_train(run, 2)).exit_code, 0);
  const std::string config = checkpoints::read_file(run / "config.json");
  const std::string log = checkpoints::read_file(run / "log.txt");
  const auto written = fs::last_write_time(run / "config.json");
  // Refused for the changed setting, and (allowed) for the weights that do not fit: nothing written.
  auto result = run_longgan(with(tiny_train(run, 4), {"--resume", "--ch", "16"}));
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_TRUE(contains(result.output, "model.ch (--ch)")) << result.output;
  result = run_longgan(with(tiny_train(run, 4), {"--resume", "--ch", "16", "--allow-config-change"}));
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_TRUE(contains(result.output, "shape")) << result.output;
  EXPECT_EQ(checkpoints::read_file(run / "config.json"), config);
  EXPECT_EQ(checkpoints::read_file(run / "log.txt"), log);
  EXPECT_EQ(fs::last_write_time(run / "config.json"), written);
  checkpoints::remove_tree(run);
}

TEST(RunReliability, ResumeOnOtherDataIsRefusedUnlessAllowed) {
  fs::path run = fresh_dir("rel_data");
  ASSERT_EQ(run_longgan(tiny_train(run, 2)).exit_code, 0);
  const std::string config = checkpoints::read_file(run / "config.json");
  auto refused = run_longgan(with(tiny_train(run, 4, 48), {"--resume"}));
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_TRUE(contains(refused.output, dataset(64).string())) << refused.output;
  EXPECT_TRUE(contains(refused.output, dataset(48).string())) << refused.output;
  EXPECT_TRUE(contains(refused.output, "--allow-data-change")) << refused.output;
  EXPECT_EQ(checkpoints::read_file(run / "config.json"), config);
  auto allowed = run_longgan(with(tiny_train(run, 4, 48), {"--resume", "--allow-data-change"}));
  EXPECT_EQ(allowed.exit_code, 0) << allowed.output;
  EXPECT_EQ(checkpoints::read_checkpoint(run).manifest["data"]["file"], dataset(48).string());
  checkpoints::remove_tree(run);
}

TEST(RunReliability, LeftoversOfDeadWritersAreRemovedOnStart) {
  fs::path run = fresh_dir("rel_leftovers");
  ASSERT_EQ(run_longgan(tiny_train(run, 2)).exit_code, 0);
  pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  const std::string suffix = "-" + std::to_string(dead);
  fs::create_directories(run / (".tmp-step-000004" + suffix));
  checkpoints::write_file_durable(run / (".tmp-step-000004" + suffix) / "G.pt", "partial");
  checkpoints::write_file_durable(run / (".tmp-config.json" + suffix), "{");
  checkpoints::write_file_durable(run / "samples" / (".tmp-step-000004.png" + suffix), "png");
  auto result = run_longgan(with(tiny_train(run, 4), {"--resume"}));
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "removed leftover temporary '" + (run / (".tmp-config.json" + suffix)).string()))
      << result.output;
  for (const fs::path& dir : {run, run / "samples"}) {
    for (const auto& entry : fs::directory_iterator(dir)) {
      EXPECT_NE(entry.path().filename().string().rfind(".tmp-", 0), 0u) << entry.path();
    }
  }
  checkpoints::remove_tree(run);
}

}  // namespace
}  // namespace longgan::app::testing

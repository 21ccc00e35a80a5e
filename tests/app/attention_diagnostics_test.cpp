// The attention diagnostics end to end: gamma and the branch ratio in metrics.jsonl (equal to the
// checkpoint's gamma) and in `info RUN`, the ablation spec `none` in train and sample, and the
// swap advisor (`metrics --attention-error ... --advise`) on a trained checkpoint.
#include <gtest/gtest.h>

#include <fstream>

#include "checkpoints/atomic_file.h"
#include "checkpoints/checkpoint.h"
#include "tests/app/cli_test_util.h"

namespace longgan::app::testing {
namespace {
namespace fs = std::filesystem;

// The metrics.jsonl line of `step`.
nlohmann::json metrics_line(const fs::path& run, int64_t step) {
  std::ifstream in(run / "metrics.jsonl");
  std::string text;
  while (std::getline(in, text)) {
    auto line = nlohmann::json::parse(text);
    if (line.value("step", int64_t{-1}) == step) return line;
  }
  return {};
}

std::vector<std::string> tiny_train(const fs::path& data, const fs::path& run, const std::string& attention) {
  return {"train", "--data", data.string(), "--out", run.string(), "--steps", "2", "--resolution", "32", "--ch", "8",
          "--batch", "4", "--g-attn", "16", "--d-attn", "16", "--attention", attention, "--device", "cpu",
          "--sample-every", "0", "--log-every", "1"};
}

TEST(AttentionDiagnostics, WeightsLoggedAblationAndAdvisor) {
  const fs::path dir = fresh_dir("attention_diagnostics");
  const fs::path data = dir / "tiny.lgd", run = dir / "run", control = dir / "none";
  auto prepared = run_longgan({"prepare", "--synthetic", "8", "--resolution", "32", "--output", data.string()});
  ASSERT_EQ(prepared.exit_code, 0) << prepared.output;
  auto trained = run_longgan(tiny_train(data, run, "dense"));
  ASSERT_EQ(trained.exit_code, 0) << trained.output;

  // Gamma and the branch ratio of every block, every --log-every step; gamma equals the checkpoint's.
  const auto checkpoint = checkpoints::read_checkpoint(run);
  const auto line = metrics_line(run, 2);
  int blocks = 0;
  for (const char* network : {"G", "D"}) {
    for (const auto& [name, tensor] : checkpoint.files.at(network)) {
      if (name.rfind("attention.", 0) != 0 || name.find(".gamma") == std::string::npos) continue;
      const std::string block = name.substr(0, name.find(".gamma"));
      const std::string prefix = std::string("attention/") + network + "/" + block + "/";
      ASSERT_TRUE(line.contains(prefix + "gamma")) << line.dump(2);
      EXPECT_EQ(line[prefix + "gamma"].get<double>(), tensor.item<double>()) << prefix;
      EXPECT_NE(tensor.item<double>(), 0.0) << prefix << ": two steps move gamma off its initial 0";
      ASSERT_TRUE(line.contains(prefix + "branch_ratio")) << line.dump(2);
      EXPECT_GT(line[prefix + "branch_ratio"].get<double>(), 0.0);
      ++blocks;
    }
  }
  EXPECT_EQ(blocks, 2);
  auto info = run_longgan({"info", run.string()});
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_NE(info.output.find("attention weights"), std::string::npos) << info.output;
  EXPECT_NE(info.output.find("on the training batch of step 2"), std::string::npos) << info.output;
  EXPECT_NE(info.output.find("G attention."), std::string::npos) << info.output;
  EXPECT_NE(info.output.find("; branch "), std::string::npos) << info.output;

  // The ablation as a control run: the blocks return their input, gamma never moves, the ratio is 0.
  auto ablated = run_longgan(tiny_train(data, control, "none"));
  ASSERT_EQ(ablated.exit_code, 0) << ablated.output;
  const auto control_line = metrics_line(control, 2);
  int zero = 0;
  for (const auto& item : control_line.items()) {
    if (item.key().rfind("attention/", 0) != 0) continue;
    EXPECT_EQ(item.value().get<double>(), 0.0) << item.key();
    ++zero;
  }
  EXPECT_EQ(zero, 4);  // gamma and branch ratio of G's and D's block
  auto sampled = run_longgan({"sample", "--checkpoint", run.string(), "--out", (dir / "none.png").string(), "--n", "4",
                              "--attention", "none", "--device", "cpu"});
  ASSERT_EQ(sampled.exit_code, 0) << sampled.output;
  EXPECT_TRUE(fs::exists(dir / "none.png"));

  // The advisor: one SMYRF cluster holding every query and key is dense exactly; `none` costs
  // nothing, so a loose bound picks it; the JSON has every block and spec.
  const std::string exact = "smyrf:hashes=1,q_cluster=256,k_cluster=64";
  auto advised = run_longgan({"metrics", "--checkpoint", run.string(), "--attention-error", exact + ",none", "--advise",
                              "1e9", "--n", "2", "--device", "cpu", "--json", (dir / "advice.json").string()});
  ASSERT_EQ(advised.exit_code, 0) << advised.output;
  EXPECT_NE(advised.output.find("advice: none keeps every block's output within 1e+09"), std::string::npos)
      << advised.output;
  EXPECT_NE(advised.output.find("swap with: longgan sample --checkpoint"), std::string::npos) << advised.output;
  const auto report = nlohmann::json::parse(checkpoints::read_file(dir / "advice.json"));
  EXPECT_EQ(report["advice"], "none");
  ASSERT_EQ(report["blocks"].size(), 2u) << report.dump(2);
  for (const auto& block : report["blocks"]) {
    ASSERT_EQ(block["specs"].size(), 3u) << block.dump(2);
    EXPECT_EQ(block["specs"][0]["spec"], "dense");
    EXPECT_EQ(block["specs"][0]["block_error"], 0.0);
    EXPECT_LT(block["specs"][1]["attention_error"].get<double>(), 1e-5) << block.dump(2);
    EXPECT_LT(block["specs"][1]["block_error"].get<double>(), 1e-6) << block.dump(2);
    EXPECT_EQ(block["specs"][2]["attention_error"], 1.0);  // zero output against dense's
    EXPECT_GT(block["specs"][2]["block_error"].get<double>(), 0.0);
  }
  // A spec that does not fit a block is reported there, never picked; bad usage is exit 2.
  auto unfit = run_longgan({"metrics", "--checkpoint", run.string(), "--attention-error",
                            "smyrf:hashes=1,q_cluster=256,k_cluster=256", "--advise", "1", "--n", "2", "--device", "cpu"});
  ASSERT_EQ(unfit.exit_code, 0) << unfit.output;
  EXPECT_NE(unfit.output.find("does not fit"), std::string::npos) << unfit.output;
  EXPECT_NE(unfit.output.find("keep dense"), std::string::npos) << unfit.output;
  auto lonely = run_longgan({"metrics", "--checkpoint", run.string(), "--advise", "0.1"});
  EXPECT_EQ(lonely.exit_code, 2) << lonely.output;
  EXPECT_NE(lonely.output.find("--advise goes with --attention-error"), std::string::npos) << lonely.output;
  checkpoints::remove_tree(dir);
}

}  // namespace
}  // namespace longgan::app::testing

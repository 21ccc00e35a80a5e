// Every command's --help and usage errors.
#include <gtest/gtest.h>

#include "tests/app/cli_test_util.h"

namespace longgan::app::testing {
namespace {

struct HelpCase {
  std::string command;
  std::vector<std::string> options;
};

void PrintTo(const HelpCase& c, std::ostream* out) { *out << c.command; }

class CommandHelp : public ::testing::TestWithParam<HelpCase> {};

TEST_P(CommandHelp, ExitsZeroAndListsOptions) {
  auto result = run_longgan({GetParam().command, "--help"});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  for (const auto& option : GetParam().options) {
    EXPECT_NE(result.output.find(option), std::string::npos) << option << " missing from:\n" << result.output;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Commands, CommandHelp,
    ::testing::Values(
        HelpCase{"train",
                 {"--data", "--out", "--config", "--steps", "--seed", "--resolution", "--ch", "--g-attn", "--d-attn",
                  "--attention", "--resume", "--device", "--batch", "--sample-every", "--checkpoint-every", "--keep",
                  "--eval-every", "--eval-n", "--inception", "--diffaug"}},
        HelpCase{"sample",
                 {"--checkpoint", "--out", "--n N", "--seed", "--truncation", "--attention", "--grid", "--interp",
                  "--compare-attention", "--z FILE also works", "--labels"}},
        HelpCase{"metrics",
                 {"--real", "--fake", "--checkpoint", "--n N", "--seed", "--truncation", "--attention",
                  "--compare-attention", "--json", "--inception", "--kid-subsets", "--device"}},
        HelpCase{"info", {"checkpoint"}},
        HelpCase{"import", {"biggan-pytorch WEIGHTS --out RUN", "--suffix", "--tfhub", "--G_ch", "--hier", "--D_thin"}},
        HelpCase{"export", {"biggan-pytorch RUN --out DIR", "--out"}}),
    [](const auto& info) { return info.param.command; });

TEST(CliUsage, ErrorsExitTwoWithAMessage) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  std::vector<Case> cases{
      {{"train", "--out", "/tmp/x"}, "--data"},
      {{"train", "--data", "d.lgd"}, "--out"},
      {{"train", "--data", "d.lgd", "--out", "/tmp/x", "--steps", "ten"}, "--steps"},
      {{"train", "--data", "d.lgd", "--out", "/tmp/x", "--attention", "nonsense"}, "nonsense"},
      {{"train", "--bogus"}, "bogus"},
      {{"sample", "--out", "x.png"}, "--checkpoint"},
      {{"info"}, "checkpoint"},
      {{"metrics", "--real", "x"}, "--fake"},
      {{"info", "a", "b"}, "b"},
      // Bad values of model and training options are usage errors too, caught before the data is opened.
      {{"train", "--data", "d.lgd", "--out", "/tmp/x", "--ch", "0"}, "ch"},
      {{"train", "--data", "d.lgd", "--out", "/tmp/x", "--batch", "-1"}, "batch"},
      {{"train", "--data", "d.lgd", "--out", "/tmp/x", "--attention", "smyrf:q_cluster=100000"}, "attention"},
      {{"train", "--data", "d.lgd", "--out", "/tmp/x", "--seed=-5"}, "--seed must be a non-negative integer"},
      {{"train", "--data", "d.lgd", "--out", "/tmp/x", "--diffaug", "color,flip"}, "diffaug (--diffaug): unknown name \"flip\""},
      {{"train", "--data", "/tmp", "--out", "/tmp/x"}, "is a directory; a packed dataset file (.lgd) is expected"},
      {{"sample", "--checkpoint", "c", "--out", "x.png", "--seed=-5"}, "--seed must be a non-negative integer"},
      {{"sample", "--checkpoint", "c", "--out", "x.png", "--seed", "-5"}, "--seed must be a non-negative integer"},
      {{"sample", "--checkpoint", "c", "--out", "x.png", "--truncation", "-1"}, "--truncation must be >= 0"},
  };
  for (const auto& c : cases) {
    auto result = run_longgan(c.args);
    std::string joined;
    for (const auto& a : c.args) joined += a + " ";
    EXPECT_EQ(result.exit_code, 2) << joined << "\n" << result.output;
    EXPECT_NE(result.output.find(c.message), std::string::npos) << joined << "\n" << result.output;
  }
}

TEST(CliUsage, MissingCheckpointIsARuntimeError) {
  auto result = run_longgan({"info", "/nonexistent/run"});
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("/nonexistent/run"), std::string::npos) << result.output;
}

TEST(InfoCommand, ModelSummaryOfThe128PresetWithoutACheckpoint) {
  auto result = run_longgan({"info", "--model", "--resolution", "128", "--ch", "96", "--g-attn", "128", "--d-attn", "64",
                             "--attention", "smyrf:hashes=4,q_cluster=2048,k_cluster=512"});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::printf("%s", result.output.c_str());
  EXPECT_NE(result.output.find("smyrf N=16384 M=4096"), std::string::npos) << result.output;  // G attention at 128
  EXPECT_NE(result.output.find("smyrf N=4096 M=1024"), std::string::npos) << result.output;   // D attention at 64
  EXPECT_NE(result.output.find("[3, 128, 128]"), std::string::npos) << result.output;
  auto both = run_longgan({"info", "--model", "/some/run"});
  EXPECT_EQ(both.exit_code, 2) << both.output;
}

}  // namespace
}  // namespace longgan::app::testing

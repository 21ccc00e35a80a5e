#include "app/run_config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <iostream>
#include <sstream>

#include "app/checkpoint_io.h"
#include "app/cli.h"
#include "app/evaluation.h"
#include "app/progress.h"
#include "app/train/step_log.h"

namespace longgan::app {
namespace {

nlohmann::json defaults() {
  return {{"model", {{"resolution", 32}, {"ch", 64}, {"G_attn", {16}}, {"attention", {{"type", "dense"}}}}},
          {"train", {{"batch", 16}, {"lr_G", 1e-4}, {"ema", true}, {"name", "x"}}}};
}

std::vector<ConfigFlag> flags() {
  return {{"resolution", "model", "resolution", ""}, {"ch", "model", "ch", ""},
          {"g-attn", "model", "G_attn", ""},          {"attention", "model", "attention", ""},
          {"batch", "train", "batch", ""},            {"lr-g", "train", "lr_G", ""},
          {"ema", "train", "ema", ""}};
}

cxxopts::ParseResult parse(std::vector<std::string> args, cxxopts::Options& options) {
  std::vector<char*> argv{const_cast<char*>("test")};
  for (auto& a : args) argv.push_back(a.data());
  return options.parse(static_cast<int>(argv.size()), argv.data());
}

TEST(RunConfig, FindConfigFlagSearchesTheTablesInOrder) {
  const std::vector<ConfigFlag> model = flags();
  const std::vector<ConfigFlag> other = {{"width", "model", "ch", ""}, {"steps", "run", "steps", ""}};
  const ConfigFlag* found = find_config_flag({&model, &other}, "model", "ch");
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->flag, "ch");  // the first table's flag, not the later "width"
  found = find_config_flag({&other, &model}, "model", "ch");
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->flag, "width");
  found = find_config_flag({&model, &other}, "run", "steps");
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->flag, "steps");
  EXPECT_EQ(find_config_flag({&model, &other}, "train", "ch"), nullptr);  // the key under another section
  EXPECT_EQ(find_config_flag({&model}, "run", "steps"), nullptr);
}

TEST(RunConfig, FileThenFlagsOverrideDefaults) {
  auto config = defaults();
  overlay_config(config, {{"model", {{"ch", 32}, {"resolution", 64}}}}, "cfg.json");
  cxxopts::Options options("test");
  add_config_flags(options, "", flags());
  auto args = parse({"--ch", "16", "--g-attn", "16,32", "--lr-g", "2e-4", "--ema", "false", "--attention",
                     "smyrf:hashes=2,q_cluster=64,k_cluster=16"},
                    options);
  apply_config_flags(config, args, flags());
  EXPECT_EQ(config["model"]["ch"], 16);
  EXPECT_EQ(config["model"]["resolution"], 64);
  EXPECT_EQ(config["model"]["G_attn"], nlohmann::json({16, 32}));
  EXPECT_DOUBLE_EQ(config["train"]["lr_G"].get<double>(), 2e-4);
  EXPECT_EQ(config["train"]["ema"], false);
  EXPECT_EQ(config["model"]["attention"]["type"], "smyrf");
  EXPECT_EQ(config["model"]["attention"]["hashes"], 2);
}

TEST(RunConfig, WholeNumberForARealKeyStaysReal) {
  auto config = defaults();
  overlay_config(config, {{"train", {{"lr_G", 1}, {"batch", 8}}}}, "cfg.json");
  EXPECT_TRUE(config["train"]["lr_G"].is_number_float());
  EXPECT_TRUE(config["train"]["batch"].is_number_integer());
  // So a flag over the file's value parses as a number, not as an integer.
  EXPECT_DOUBLE_EQ(parse_flag_value("lr-g", "5e-5", config["train"]["lr_G"]).get<double>(), 5e-5);
}

TEST(RunConfig, UnknownKeysAndBadValuesAreUsageErrors) {
  auto config = defaults();
  EXPECT_THROW(overlay_config(config, {{"modle", {}}}, "cfg.json"), UsageError);
  EXPECT_THROW(overlay_config(config, {{"model", {{"chh", 3}}}}, "cfg.json"), UsageError);
  try {
    overlay_config(config, {{"model", {{"chh", 3}}}}, "cfg.json");
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("model.chh"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("resolution"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_flag_value("ch", "1.5", 3), UsageError);
  EXPECT_THROW(parse_flag_value("lr-g", "fast", 1e-4), UsageError);
  EXPECT_THROW(parse_flag_value("ema", "maybe", true), UsageError);
  EXPECT_THROW(parse_flag_value("attention", "smyrf:bogus=1", nlohmann::json{{"type", "dense"}}), UsageError);
}

TEST(CheckpointIo, SplitAndJoinState) {
  checkpoints::TensorMap state{{"G.blocks.0.weight", torch::ones({2})},
                               {"G_ema.blocks.0.weight", torch::zeros({2})},
                               {"step", torch::tensor({3})}};
  auto files = split_state(state);
  ASSERT_EQ(files.size(), 3u);
  EXPECT_TRUE(files.at("G").count("blocks.0.weight"));
  EXPECT_TRUE(files.at("misc").count("step"));
  auto back = join_state(files);
  ASSERT_EQ(back.size(), state.size());
  for (const auto& [name, tensor] : state) EXPECT_TRUE(torch::equal(back.at(name), tensor)) << name;
}

TEST(Progress, FormatDuration) {
  EXPECT_EQ(ProgressReporter::format_duration(12.4), "12s");
  EXPECT_EQ(ProgressReporter::format_duration(185), "3m05s");
  EXPECT_EQ(ProgressReporter::format_duration(3725), "1h02m");
}

TEST(Progress, PlainLinesEveryNSteps) {
  std::ostringstream out;
  ProgressReporter progress(out, "step", 0, 4, /*interactive=*/false, /*line_every=*/2);
  for (int64_t step = 1; step <= 4; ++step) progress.update(step, 8.0, "img/s", {{"loss_D", 1.0}, {"loss_G", 0.5}});
  std::string text = out.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2) << text;
  EXPECT_NE(text.find("step 2/4 (50%)  8.0 img/s  loss_D 1.0000  loss_G 0.5000  ETA "), std::string::npos) << text;
  EXPECT_NE(text.find("step 4/4 (100%)"), std::string::npos) << text;
  EXPECT_EQ(text.find('\r'), std::string::npos) << text;
}

TEST(Progress, TerminalBarIsRedrawnInPlaceAndEndsItsLine) {
  std::ostringstream out;
  ProgressReporter progress(out, "step", 0, 2, /*interactive=*/true, /*line_every=*/1);
  progress.update(1, 1.0, "img/s");
  progress.update(2, 1.0, "img/s");  // the last one is always drawn
  const std::string text = out.str();
  EXPECT_NE(text.find("\rstep 1/2 [##########..........] (50%)"), std::string::npos) << text;
  EXPECT_NE(text.find("\rstep 2/2 [####################] (100%)"), std::string::npos) << text;
  EXPECT_EQ(text.back(), '\n');
}

TEST(Progress, ImgPerSecondCountsTrainingTimeOnly) {
  std::ostringstream out;
  StepLog log("/nonexistent", /*writes_files=*/false, out, 0, 1, 1, {}, false);
  log.progress(1, 100, {}, /*training_seconds=*/4.0);  // 25 img/s, whatever the wall time was
  EXPECT_NE(out.str().find("25.0 img/s"), std::string::npos) << out.str();
}

TEST(Progress, CountedWorkShowsPercentageAndEtaWithOneLinePerTenSeconds) {
  std::ostringstream captured;
  std::streambuf* original = std::cerr.rdbuf(captured.rdbuf());
  {
    ProgressReporter progress = stderr_count_progress("features", 200);  // stderr is not a terminal under ctest
    progress.update(10);
    progress.update(50);  // within 10 s of the last line: not printed
    progress.update(200);
  }
  std::cerr.rdbuf(original);
  const std::string text = captured.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2) << text;
  EXPECT_NE(text.find("features: 10/200 (5%)  "), std::string::npos) << text;
  EXPECT_NE(text.find(" images/s  ETA "), std::string::npos) << text;
  EXPECT_NE(text.find("features: 200/200 (100%)"), std::string::npos) << text;
  EXPECT_EQ(text.find("50/200"), std::string::npos) << text;
}

// Regression: the FID features' reporter is made at the first callback, after the first batch;
// its first line said "320000000.0 images/s  ETA 0s".
TEST(Progress, RateCountsFromWhenTheWorkStarted) {
  std::ostringstream out;
  ProgressReporter progress(out, "features:", 0, 100, /*interactive=*/false, /*line_every=*/0,
                            std::chrono::steady_clock::now() - std::chrono::seconds(2));
  progress.update(32);
  EXPECT_NE(out.str().find("features: 32/100 (32%)  16.0 images/s  ETA 4s"), std::string::npos) << out.str();

  std::ostringstream captured;
  std::streambuf* original = std::cerr.rdbuf(captured.rdbuf());
  {
    const gan::FeatureProgress callback = stderr_progress("real");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the first batch
    callback(32, 100);
  }
  std::cerr.rdbuf(original);
  const std::string text = captured.str();
  const auto at = text.find("(32%)  ");
  ASSERT_NE(at, std::string::npos) << text;
  EXPECT_LE(std::stod(text.substr(at + 7)), 320.0) << text;  // 32 images in >= 0.1 s
}

}  // namespace
}  // namespace longgan::app

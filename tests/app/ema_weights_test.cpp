// G_ema's two forms as `train` records and resumes them, and the --weights / --sample-weights that
// render G as well as G_ema (train grids, sample).
#include <gtest/gtest.h>

#include "checkpoints/atomic_file.h"
#include "checkpoints/checkpoint.h"
#include "tests/app/cli_test_util.h"

namespace longgan::app::testing {
namespace {
namespace fs = std::filesystem;

const fs::path& dataset() {
  static const fs::path path = [] {
    const fs::path file = fresh_dir("ema_data") / "synthetic32.lgd";
    auto result = run_longgan({"prepare", "--synthetic", "16", "--resolution", "32", "--output", file.string()});
    EXPECT_EQ(result.exit_code, 0) << result.output;
    return file;
  }();
  return path;
}

std::vector<std::string> tiny_train(const fs::path& out, int steps) {
  return {"train", "--data", dataset().string(), "--out", out.string(), "--steps", std::to_string(steps),
          "--resolution", "32", "--ch", "8", "--batch", "4", "--g-attn", "16", "--d-attn", "16",
          "--attention", "dense", "--seed", "5", "--device", "cpu", "--sample-every", "0", "--checkpoint-every", "2"};
}

nlohmann::json config_of(const fs::path& run) {
  return nlohmann::json::parse(checkpoints::read_file(run / "config.json"));
}

TEST(EmaFlags, HalfLifeIsTheDefaultRecordedWithTheImagesSeen) {
  const fs::path run = fresh_dir("ema_default");
  auto result = run_longgan(tiny_train(run, 2));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto train = config_of(run)["train"];
  EXPECT_EQ(train["ema"], "half_life");
  EXPECT_EQ(train["ema_kimg"], 500.0);
  EXPECT_EQ(train["ema_rampup"], 0.05);
  auto checkpoint = checkpoints::read_checkpoint(run);
  EXPECT_EQ(checkpoint.files.at("trainer").at("images_seen").item<int64_t>(), 8);  // 2 steps of batch 4

  // --ema-decay / --ema-start imply BigGAN's form, --ema-kimg / --ema-rampup the half-life form.
  const fs::path decay = fresh_dir("ema_decay_flag");
  ASSERT_EQ(run_longgan(with(tiny_train(decay, 1), {"--ema-decay", "0.999", "--ema-start", "0"})).exit_code, 0);
  EXPECT_EQ(config_of(decay)["train"]["ema"], "decay");
  EXPECT_EQ(config_of(decay)["train"]["ema_decay"], 0.999);
  const fs::path kimg = fresh_dir("ema_kimg_flag");
  ASSERT_EQ(run_longgan(with(tiny_train(kimg, 1), {"--ema-kimg", "10", "--ema-rampup", "0"})).exit_code, 0);
  EXPECT_EQ(config_of(kimg)["train"]["ema"], "half_life");
  EXPECT_EQ(config_of(kimg)["train"]["ema_kimg"], 10.0);
  EXPECT_EQ(config_of(kimg)["train"]["ema_rampup"], 0.0);
  for (const auto& dir : {run, decay, kimg}) checkpoints::remove_tree(dir);
}

TEST(EmaFlags, BadValuesExit2NamingTheFlag) {
  const fs::path run = fresh_dir("ema_bad");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"--ema-kimg", "0"}, "--ema-kimg"},       {{"--ema-kimg", "-1"}, "--ema-kimg"},
      {{"--ema-kimg", "nan"}, "--ema-kimg"},     {{"--ema-rampup", "-0.05"}, "--ema-rampup"},
      {{"--ema-rampup", "nan"}, "--ema-rampup"}, {{"--ema-decay", "1.5"}, "--ema-decay"},
      {{"--ema-decay", "nan"}, "--ema-decay"},   {{"--ema-start", "-1"}, "--ema-start"},
      {{"--ema", "fast"}, "--ema"},              {{"--ema-kimg", "10", "--ema-decay", "0.9"}, "--ema-decay"},
      {{"--weights", "d"}, "--weights"},         {{"--sample-weights", "g,g"}, "--sample-weights"},
  };
  for (const auto& [flags, named] : cases) {
    auto result = run_longgan(with(tiny_train(run, 1), flags));
    EXPECT_EQ(result.exit_code, 2) << flags[0] << " " << flags[1] << ": " << result.output;
    EXPECT_NE(result.output.find(named), std::string::npos) << flags[0] << " " << flags[1] << ": " << result.output;
  }
  // From a config file: the file and the field are named.
  checkpoints::write_file_atomic(run / "zero.json", R"({"train": {"ema_kimg": 0}})");
  auto file = run_longgan(with(tiny_train(run, 1), {"--config", (run / "zero.json").string()}));
  EXPECT_EQ(file.exit_code, 2) << file.output;
  EXPECT_NE(file.output.find("zero.json"), std::string::npos) << file.output;
  EXPECT_NE(file.output.find("ema_kimg"), std::string::npos) << file.output;
  EXPECT_TRUE(checkpoints::list_checkpoints(run).empty());
  checkpoints::remove_tree(run);
}

TEST(EmaFlags, CheckpointOfTheDecayEraWithoutImagesSeenResumesBitExact) {
  // A run of the BigGAN form, its step-2 checkpoint rewritten as LongGAN wrote it before the
  // half-life form (no "ema", "ema_kimg", "ema_rampup" in its config, no trainer.images_seen),
  // resumes in the decay form and ends as the uninterrupted run does.
  const std::vector<std::string> decay{"--ema-decay", "0.5", "--ema-start", "1"};
  const fs::path straight = fresh_dir("ema_old_straight"), old = fresh_dir("ema_old_resumed");
  ASSERT_EQ(run_longgan(with(tiny_train(straight, 4), decay)).exit_code, 0);
  auto step2 = checkpoints::read_checkpoint(straight / "step-000002");
  nlohmann::json manifest = step2.manifest;
  for (const char* key : {"ema", "ema_kimg", "ema_rampup"}) {
    manifest["config"]["train"].erase(key);
    manifest["train"].erase(key);
  }
  for (const char* key : {"weights", "sample_weights"}) manifest["config"]["run"].erase(key);
  for (const char* key : {"format_version", "step", "files", "checksums"}) manifest.erase(key);
  auto files = step2.files;
  files.at("trainer").erase("images_seen");
  checkpoints::CheckpointWriter(old).write(2, manifest, files);

  auto resumed = run_longgan(with(tiny_train(old, 4), {"--resume"}));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_EQ(config_of(old)["train"]["ema"], "decay");
  expect_identical_checkpoints(straight, old);
  checkpoints::remove_tree(straight);
  checkpoints::remove_tree(old);
}

TEST(WeightsFlag, SampleRendersGOrGEmaAndRecordsWhich) {
  const fs::path run = fresh_dir("weights_sample");
  // Decay 0.5 from step 1: G_ema differs from G.
  auto trained = run_longgan(with(tiny_train(run, 2), {"--ema-decay", "0.5", "--ema-start", "1", "--sample-every", "2",
                                                       "--samples", "4", "--sample-weights", "g_ema,g"}));
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  // Grids of both: G_ema's under the usual name, G's with -g.
  ASSERT_TRUE(fs::exists(run / "samples" / "step-000002.png"));
  ASSERT_TRUE(fs::exists(run / "samples" / "step-000002-g.png"));
  EXPECT_NE(checkpoints::read_file(run / "samples" / "step-000002.png"),
            checkpoints::read_file(run / "samples" / "step-000002-g.png"));
  EXPECT_EQ(config_of(run)["run"]["sample_weights"], "g_ema,g");

  auto render = [&](const std::string& name, const std::vector<std::string>& more) {
    auto result = run_longgan(with({"sample", "--checkpoint", run.string(), "--out", (run / name).string(), "--n", "4",
                                    "--device", "cpu"}, more));
    EXPECT_EQ(result.exit_code, 0) << result.output;
    return nlohmann::json::parse(checkpoints::read_file(run / (name + ".json")));
  };
  EXPECT_EQ(render("ema.png", {})["weights"], "g_ema");
  EXPECT_EQ(render("g.png", {"--weights", "g"})["weights"], "g");
  EXPECT_EQ(render("ema_again.png", {"--weights", "g_ema"})["weights"], "g_ema");
  EXPECT_NE(checkpoints::read_file(run / "ema.png"), checkpoints::read_file(run / "g.png"));
  EXPECT_EQ(checkpoints::read_file(run / "ema.png"), checkpoints::read_file(run / "ema_again.png"));
  auto bad = run_longgan({"sample", "--checkpoint", run.string(), "--out", (run / "bad.png").string(), "--weights", "D"});
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("--weights"), std::string::npos) << bad.output;
  EXPECT_FALSE(fs::exists(run / "bad.png"));
  checkpoints::remove_tree(run);
}

}  // namespace
}  // namespace longgan::app::testing

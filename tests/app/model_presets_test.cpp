// Defaults per resolution: the preset of the resolution (given, else the data's) under the fields
// the user set, the same model in `info --model` as in `train`.
#include <gtest/gtest.h>

#include "app/model_presets.h"
#include "checkpoints/atomic_file.h"
#include "gan/model_config.h"
#include "tests/app/cli_test_util.h"

namespace longgan::app::testing {
namespace {
namespace fs = std::filesystem;

TEST(ModelPreset, LargeResolutionsPutSmyrfAttentionAtTheFullResolutionOfG) {
  for (int64_t r : {128, 256}) {
    const gan::ModelConfig model = gan::model_config_from_json(model_preset(r));  // validates: SMYRF fits
    EXPECT_EQ(model.resolution, r);
    EXPECT_EQ(model.g_attn, std::vector<int64_t>{r});
    EXPECT_TRUE(model.d_attn.empty());
    EXPECT_EQ(model.ch, 96);
    EXPECT_EQ(attention::to_string(model.attention), "smyrf:hashes=4,q_cluster=2048,k_cluster=512");
  }
}

TEST(ModelPreset, SmallResolutionsAreCpuModelsWithAttentionAtTheTopOfG) {
  for (int64_t r : {32, 64}) {
    const gan::ModelConfig model = gan::model_config_from_json(model_preset(r));
    EXPECT_EQ(model.resolution, r);
    EXPECT_EQ(model.ch, 32);
    EXPECT_EQ(model.g_attn, std::vector<int64_t>{r});
    EXPECT_EQ(model.d_attn, std::vector<int64_t>{r / 2});
    EXPECT_EQ(attention::to_string(model.attention), "dense");
  }
  // The 32 preset is the built-in default of every release so far: runs without a config agree.
  gan::ModelConfig old_default = gan::ModelConfig::preset(32);
  old_default.ch = 32;
  EXPECT_EQ(model_preset(32), gan::to_json(old_default));
}

TEST(ResolveModelSection, GivenFieldsOverrideThePresetOneByOne) {
  nlohmann::json model = model_preset(32);
  model["resolution"] = 128;
  model["ch"] = 8;
  const nlohmann::json resolved = resolve_model_section(model, {"resolution", "ch"}, std::nullopt);
  EXPECT_EQ(resolved["ch"], 8);
  EXPECT_EQ(resolved["resolution"], 128);
  EXPECT_EQ(resolved["g_attn"], nlohmann::json::array({128}));
  EXPECT_EQ(resolved["attention"]["type"], "smyrf");
  // Fields not given are the preset's even where `model` holds other values (the 32 defaults).
  EXPECT_EQ(resolved["hierarchical_z"], false);
}

TEST(ResolveModelSection, ResolutionComesFromTheDataUnlessGiven) {
  const nlohmann::json model = model_preset(32);
  EXPECT_EQ(resolve_model_section(model, {}, 64), model_preset(64));
  EXPECT_EQ(resolve_model_section(model, {}, std::nullopt), model_preset(32));
  // A given resolution wins (train then refuses data of another size, naming both).
  EXPECT_EQ(resolve_model_section(model, {"resolution"}, 64)["resolution"], 32);
}

TEST(InfoCommand, ResolutionFlagShowsThatResolutionsPreset) {
  auto result = run_longgan({"info", "--model", "--resolution", "128"});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("smyrf N=16384 M=4096"), std::string::npos) << result.output;  // G attention at 128
  EXPECT_EQ(result.output.find("N=1024 "), std::string::npos) << result.output;               // not the 32 preset's
  auto narrow = run_longgan({"info", "--model", "--resolution", "128", "--ch", "8"});
  ASSERT_EQ(narrow.exit_code, 0) << narrow.output;
  EXPECT_NE(narrow.output.find("smyrf N=16384 M=4096"), std::string::npos) << narrow.output;
  EXPECT_NE(narrow.output, result.output);  // ch 8, not 96
}

TEST(TrainCommand, ResolutionAndPresetComeFromTheData) {
  const fs::path dir = fresh_dir("train_resolution_from_data");
  const fs::path data = dir / "d64.lgd";
  ASSERT_EQ(run_longgan({"prepare", "--synthetic", "8", "--resolution", "64", "--output", data.string()}).exit_code, 0);
  const std::vector<std::string> common{"--steps", "1", "--ch", "8", "--batch", "2", "--device", "cpu",
                                        "--sample-every", "0", "--attention", "smyrf:hashes=1,q_cluster=256,k_cluster=64"};
  auto result = run_longgan(with({"train", "--data", data.string(), "--out", (dir / "run").string()}, common));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto config = nlohmann::json::parse(checkpoints::read_file(dir / "run" / "config.json"));
  EXPECT_EQ(config["model"]["resolution"], 64);
  EXPECT_EQ(config["model"]["g_attn"], nlohmann::json::array({64}));  // the 64 preset's, recorded resolved
  EXPECT_EQ(config["model"]["ch"], 8);                               // the flag's
  EXPECT_NE(result.output.find("smyrf N=4096 M=1024"), std::string::npos) << result.output;
  // A resolution that is given must match the data.
  auto mismatch = run_longgan(with({"train", "--data", data.string(), "--out", (dir / "run32").string(),
                                    "--resolution", "32", "--g-attn", "32", "--attention", "dense"},
                                   {"--steps", "1", "--ch", "8", "--batch", "2", "--device", "cpu"}));
  EXPECT_NE(mismatch.exit_code, 0) << mismatch.output;
  EXPECT_NE(mismatch.output.find("holds 64x64 images but model.resolution is 32"), std::string::npos) << mismatch.output;
  EXPECT_FALSE(fs::exists(dir / "run32" / "config.json"));
  checkpoints::remove_tree(dir);
}

}  // namespace
}  // namespace longgan::app::testing

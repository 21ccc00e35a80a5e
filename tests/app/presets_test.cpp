// The presets of configs/ (the SMYRF paper's CelebA-HQ run and its dense baseline): they parse as
// `train --config` parses them, validate, and build the networks the paper's configuration
// describes; a bad value in a config file is reported with the file and the field.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "app/run_config.h"
#include "app/session_config.h"
#include "gan/discriminator.h"
#include "gan/generator.h"
#include "gan/model_config.h"
#include "gan/sampling.h"
#include "gan/trainer.h"
#include "tests/app/cli_test_util.h"

namespace longgan::app::testing {
namespace {
namespace fs = std::filesystem;

// CTest sets LONGGAN_SOURCE_DIR (tests/CMakeLists.txt).
fs::path preset(const std::string& name) {
  const char* source = std::getenv("LONGGAN_SOURCE_DIR");
  EXPECT_NE(source, nullptr) << "LONGGAN_SOURCE_DIR is not set: run this test through ctest";
  return fs::path(source == nullptr ? "." : source) / "configs" / name;
}

// Parameter counts from the architecture alone (DESIGN.md §4 channel plans, BigGAN's layers),
// independent of the modules: no shared embedding (each conditional batch norm owns gain and bias
// tables [classes, channels]), no hierarchical z, D without attention.
int64_t conv(int64_t in, int64_t out, int64_t k) { return in * out * k * k + out; }
int64_t self_attention(int64_t c) {
  return 2 * (c * (c / 8)) + c * (c / 2) + (c / 2) * c + 1;  // theta, phi, g, o (no bias) + gamma
}

int64_t generator_params_128(int64_t ch, int64_t z_dim, int64_t classes, int64_t attention_at) {
  const std::vector<int64_t> in{16, 16, 8, 4, 2}, out{16, 8, 4, 2, 1}, res{8, 16, 32, 64, 128};
  int64_t total = z_dim * 16 * ch * 16 + 16 * ch * 16;  // linear z -> 4x4 (with bias)
  for (size_t i = 0; i < in.size(); ++i) {
    const int64_t a = in[i] * ch, b = out[i] * ch;
    total += 2 * classes * a + 2 * classes * b;  // cbn1, cbn2: gain and bias tables
    total += conv(a, b, 3) + conv(b, b, 3) + conv(a, b, 1);
    if (res[i] == attention_at) total += self_attention(b);
  }
  return total + 2 * ch + conv(ch, 3, 3);  // out BN (affine) + conv to RGB
}

int64_t discriminator_params_128(int64_t ch, int64_t classes) {
  const std::vector<int64_t> in{3, ch, 2 * ch, 4 * ch, 8 * ch, 16 * ch};
  const std::vector<int64_t> out{ch, 2 * ch, 4 * ch, 8 * ch, 16 * ch, 16 * ch};
  int64_t total = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    const bool downsample = i + 1 < in.size();
    total += conv(in[i], out[i], 3) + conv(out[i], out[i], 3) +
             (downsample || in[i] != out[i] ? conv(in[i], out[i], 1) : 0);
  }
  return total + (16 * ch + 1) + classes * 16 * ch;  // logit linear + class projection
}

int64_t count(const torch::nn::Module& module) {
  int64_t total = 0;
  for (const auto& p : module.parameters()) total += p.numel();
  return total;
}

// The model and train sections as `train --config FILE` builds them: the defaults overlaid by the file.
nlohmann::json load_preset(const fs::path& file) {
  const nlohmann::json json = read_json_file(file);
  nlohmann::json config = default_session_config();
  overlay_config(config, {{"model", json.at("model")}, {"train", json.at("train")}}, file.string());
  return config;
}

void expect_paper_hyperparameters(const gan::TrainConfig& train) {
  EXPECT_EQ(train.batch, 32);
  EXPECT_EQ(train.accumulate, 1);
  EXPECT_EQ(train.lr_g, 5e-5);
  EXPECT_EQ(train.lr_d, 2e-4);
  EXPECT_EQ(train.beta1, 0.0);
  EXPECT_EQ(train.beta2, 0.999);
  EXPECT_EQ(train.d_steps, 2);
  EXPECT_EQ(train.ortho, 0.0);      // the released config's G_ortho 0
  EXPECT_EQ(train.ema, "decay");     // BigGAN's form, as released
  EXPECT_EQ(train.ema_decay, 0.0);  // no EMA: G_ema copies G every step
  EXPECT_EQ(train.init, "ortho");
}

void expect_paper_model(const gan::ModelConfig& model) {
  EXPECT_EQ(model.resolution, 128);
  EXPECT_EQ(model.ch, 96);
  EXPECT_EQ(model.z_dim, 120);
  EXPECT_EQ(model.n_classes, 1);
  EXPECT_TRUE(model.d_attn.empty());
  EXPECT_TRUE(model.key_pool);
  EXPECT_FALSE(model.hierarchical_z);
  EXPECT_FALSE(model.shared_embedding);
  EXPECT_EQ(model.sn_eps, 1e-6);
}

struct Built {
  gan::Generator g{nullptr};
  gan::Discriminator d{nullptr};
};

// Construction init only (normal draws), not the trainer's orthogonal init of 150M weights.
Built build(const gan::ModelConfig& model) {
  Built built;
  gan::with_seeded_global_generator(0, [&] {
    built.g = gan::Generator(model);
    built.d = gan::Discriminator(model);
  });
  return built;
}

TEST(Presets, SmyrfCelebaHq128ParsesValidatesAndBuildsThePapersModel) {
  const nlohmann::json config = load_preset(preset("smyrf_celebahq128.json"));
  const gan::ModelConfig model = gan::model_config_from_json(config["model"]);  // validates
  const gan::TrainConfig train = gan::train_config_from_json(config["train"]);
  ASSERT_NO_THROW(train.validate());
  expect_paper_model(model);
  expect_paper_hyperparameters(train);
  EXPECT_EQ(model.g_attn, std::vector<int64_t>{128});

  // SMYRF at 128: 16,384 queries; keys max-pooled 2x2 to 4,096. Clusters of 2,048 queries and 512
  // keys divide both lengths into the same number of clusters (8), so nothing is padded.
  const auto& smyrf = std::get<attention::SmyrfOptions>(model.attention);
  EXPECT_EQ(smyrf.hashes, 4);
  const int64_t n = 128 * 128, m = n / 4;
  EXPECT_EQ(smyrf.q_cluster, 2048);
  EXPECT_EQ(smyrf.k_cluster, 512);
  EXPECT_EQ(n % smyrf.q_cluster, 0);
  EXPECT_EQ(m % smyrf.k_cluster, 0);
  EXPECT_EQ(n / smyrf.q_cluster, 8);
  EXPECT_EQ(m / smyrf.k_cluster, 8);
  EXPECT_NO_THROW(attention::validate_lengths(model.attention, n, m));

  const Built built = build(model);
  ASSERT_EQ(built.g->attention.size(), 1u);
  ASSERT_TRUE(built.g->attention.contains(4));  // after the block that outputs 128x128
  // The options run as written (not fitted to the block).
  EXPECT_EQ(std::get<attention::SmyrfOptions>(built.g->attention.at(4)->attention_spec()), smyrf);
  EXPECT_TRUE(built.d->attention.empty());
  EXPECT_TRUE(built.g->shared.is_empty());
  EXPECT_EQ(count(*built.g), generator_params_128(96, 120, 1, 128));
  EXPECT_EQ(count(*built.d), discriminator_params_128(96, 1));
}

TEST(Presets, DenseCelebaHq64ParsesValidatesAndBuildsTheBaseline) {
  const nlohmann::json config = load_preset(preset("dense_celebahq64.json"));
  const gan::ModelConfig model = gan::model_config_from_json(config["model"]);
  const gan::TrainConfig train = gan::train_config_from_json(config["train"]);
  ASSERT_NO_THROW(train.validate());
  expect_paper_model(model);  // 128x128 images as the SMYRF run; "64" is where attention sits
  expect_paper_hyperparameters(train);
  EXPECT_EQ(model.g_attn, std::vector<int64_t>{64});
  EXPECT_TRUE(std::holds_alternative<attention::DenseOptions>(model.attention));

  const Built built = build(model);
  ASSERT_EQ(built.g->attention.size(), 1u);
  EXPECT_TRUE(built.g->attention.contains(3));  // after the block that outputs 64x64
  EXPECT_TRUE(built.d->attention.empty());
  EXPECT_EQ(count(*built.g), generator_params_128(96, 120, 1, 64));
  EXPECT_EQ(count(*built.d), discriminator_params_128(96, 1));
}

// Through the binary: `train --config PRESET` with overrides on the command line trains a step and
// records the preset's values, and the overrides, in the run's config.json.
TEST(Presets, TrainConfigRunsAStepWithOverrides) {
  const fs::path dir = fresh_dir("presets_train");
  const fs::path data = dir / "synthetic128.lgd";
  auto prepared = run_longgan({"prepare", "--synthetic", "4", "--resolution", "128", "--output", data.string()});
  ASSERT_EQ(prepared.exit_code, 0) << prepared.output;
  const fs::path file = preset("smyrf_celebahq128.json");
  const fs::path run = dir / "run";
  auto result = run_longgan({"train", "--config", file.string(), "--data", data.string(), "--out", run.string(),
                             "--ch", "8", "--batch", "2", "--steps", "1", "--samples", "2", "--device", "cpu"});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::ifstream in(run / "config.json");
  const nlohmann::json written = nlohmann::json::parse(in);
  const nlohmann::json json = read_json_file(file);
  for (const char* section : {"model", "train", "run"}) {
    for (const auto& [key, value] : json.at(section).items()) {
      SCOPED_TRACE(std::string(section) + "." + key);
      if (key == "ch" || key == "batch" || key == "steps") continue;
      EXPECT_EQ(written.at(section).at(key), value);
    }
  }
  EXPECT_EQ(written["model"]["ch"], 8);
  EXPECT_EQ(written["train"]["batch"], 2);
  EXPECT_EQ(written["run"]["steps"], 1);
  EXPECT_EQ(json["run"]["sampling_stats"], "running");  // G in eval mode, as the released run sampled
}

TEST(Presets, InfoModelSummarizesAConfigFile) {
  auto result = run_longgan({"info", "--model", "--config", preset("smyrf_celebahq128.json").string()});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("smyrf N=16384 M=4096"), std::string::npos) << result.output;
  for (int64_t total : {generator_params_128(96, 120, 1, 128), discriminator_params_128(96, 1)}) {
    EXPECT_NE(result.output.find(" " + std::to_string(total) + "\n"), std::string::npos) << total;
  }
  // Flags still win over the file; --config alone is not a checkpoint summary.
  result = run_longgan({"info", "--model", "--config", preset("smyrf_celebahq128.json").string(), "--ch", "8"});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("ch 8,"), std::string::npos) << result.output;
  EXPECT_EQ(run_longgan({"info", "--config", preset("smyrf_celebahq128.json").string()}).exit_code, 2);
}

fs::path write_config(const fs::path& dir, const std::string& name, const nlohmann::json& json) {
  const fs::path file = dir / name;
  std::ofstream(file) << json.dump(2);
  return file;
}

TEST(Presets, BadValueInAConfigFileNamesTheFileAndTheField) {
  const fs::path dir = fresh_dir("presets_bad");
  const std::string missing_data = (dir / "none.lgd").string();
  auto train = [&](const fs::path& file, std::vector<std::string> more = {}) {
    return run_longgan(with({"train", "--config", file.string(), "--data", missing_data, "--out",
                             (dir / "run").string(), "--device", "cpu"},
                            more));
  };
  nlohmann::json bad_model = read_json_file(preset("smyrf_celebahq128.json"));
  bad_model["model"]["sn_eps"] = 0;
  const fs::path model_file = write_config(dir, "bad_model.json", bad_model);
  auto result = train(model_file);
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_NE(result.output.find("config file '" + model_file.string() + "'"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("sn_eps"), std::string::npos) << result.output;

  const fs::path train_file = write_config(dir, "bad_train.json", {{"train", {{"lr_g", -1.0}}}});
  result = train(train_file);
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_NE(result.output.find(train_file.string()), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("lr_g"), std::string::npos) << result.output;

  const fs::path type_file = write_config(dir, "bad_type.json", {{"model", {{"shared_embedding", "no"}}}});
  result = train(type_file);
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_NE(result.output.find(type_file.string()), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("shared_embedding"), std::string::npos) << result.output;

  // A flag that replaces the bad value: the config is fine (the run then stops at the missing data).
  result = train(model_file, {"--sn-eps", "1e-6"});
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_EQ(result.output.find("sn_eps"), std::string::npos) << result.output;
  // A bad flag over a good file is the flag's error, not the file's.
  result = train(preset("smyrf_celebahq128.json"), {"--sn-eps", "-1"});
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_NE(result.output.find("sn_eps"), std::string::npos) << result.output;
  EXPECT_EQ(result.output.find("config file"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace longgan::app::testing

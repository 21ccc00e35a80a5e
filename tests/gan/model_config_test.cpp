#include "gan/model_config.h"
#include "gan/trainer.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

namespace longgan::gan {
namespace {

std::string error_of(const nlohmann::json& json) {
  try {
    model_config_from_json(json);
  } catch (const std::invalid_argument& error) {
    return error.what();
  }
  return "";
}

TEST(ModelConfig, JsonRoundTrip) {
  ModelConfig config = ModelConfig::preset(64);
  config.ch = 24;
  config.z_dim = 100;
  config.shared_dim = 32;
  config.n_classes = 10;
  config.g_attn = {32, 64};
  config.d_attn = {16};
  config.key_pool = false;
  config.heads = 3;
  config.hierarchical_z = false;
  config.shared_embedding = false;
  config.sn_eps = 1e-6;
  const nlohmann::json json = to_json(config);
  for (const char* key : {"resolution", "ch", "z_dim", "shared_dim", "n_classes", "g_attn", "d_attn",
                          "attention", "key_pool", "heads", "hierarchical_z", "shared_embedding", "sn_eps",
                          "spectral_norm", "bn_eps", "d_wide"}) {
    EXPECT_TRUE(json.contains(key)) << key;
  }
  EXPECT_EQ(json.size(), 16u);
  EXPECT_EQ(json["shared_embedding"], false);
  EXPECT_EQ(json["sn_eps"].get<double>(), 1e-6);
  const ModelConfig back = model_config_from_json(json);
  EXPECT_EQ(to_json(back), json);
}

TEST(ModelConfig, PresetDefaultsPutAttentionAtLargestResolutionUpTo64) {
  EXPECT_EQ(ModelConfig::preset(32).g_attn, std::vector<int64_t>{32});
  EXPECT_EQ(ModelConfig::preset(32).d_attn, std::vector<int64_t>{16});
  EXPECT_EQ(ModelConfig::preset(64).d_attn, std::vector<int64_t>{32});
  EXPECT_EQ(ModelConfig::preset(128).g_attn, std::vector<int64_t>{64});
  EXPECT_EQ(ModelConfig::preset(256).d_attn, std::vector<int64_t>{64});
  const ModelConfig from_json = model_config_from_json({{"resolution", 32}});
  EXPECT_EQ(from_json.g_attn, std::vector<int64_t>{32});
  EXPECT_EQ(from_json.ch, 64);
}

TEST(ModelConfig, ChannelPlans) {
  ModelConfig config = ModelConfig::preset(128);
  config.ch = 1;
  std::vector<int64_t> g_out, g_res, d_in, d_res;
  for (const BlockPlan& b : generator_plan(config)) g_out.push_back(b.out_channels), g_res.push_back(b.resolution);
  for (const BlockPlan& b : discriminator_plan(config)) d_in.push_back(b.in_channels), d_res.push_back(b.resolution);
  EXPECT_EQ(g_out, (std::vector<int64_t>{16, 8, 4, 2, 1}));
  EXPECT_EQ(g_res, (std::vector<int64_t>{8, 16, 32, 64, 128}));
  EXPECT_EQ(d_in, (std::vector<int64_t>{3, 1, 2, 4, 8, 16}));
  EXPECT_EQ(d_res, (std::vector<int64_t>{64, 32, 16, 8, 4, 4}));
  config.resolution = 32;
  d_res.clear();
  for (const BlockPlan& b : discriminator_plan(config)) d_res.push_back(b.resolution);
  EXPECT_EQ(d_res, (std::vector<int64_t>{16, 8, 8, 8}));  // BigGAN D32: ends at 8x8
}

TEST(ModelConfig, LatentSplitGivesRemainderToFirstChunk) {
  const LatentSplit split = latent_split(ModelConfig::preset(256));  // 6 blocks, 7 slots
  EXPECT_EQ(split.chunk, 17);
  EXPECT_EQ(split.first, 120 - 6 * 17);
}

TEST(ModelConfig, RejectsInvalidConfigsNamingTheField) {
  EXPECT_NE(error_of({{"resolution", 32}, {"g_attn", {48}}}).find("g_attn"), std::string::npos);
  EXPECT_NE(error_of({{"resolution", 32}, {"d_attn", {32}}}).find("d_attn"), std::string::npos);
  EXPECT_NE(error_of({{"resolution", 32}, {"ch", 5}}).find("ch"), std::string::npos);
  EXPECT_NE(error_of({{"resolution", 32}, {"ch", 8}, {"heads", 3}}).find("heads"), std::string::npos);
  EXPECT_NE(error_of({{"resolution", 48}}).find("resolution"), std::string::npos);
  EXPECT_NE(error_of({{"resolution", 32}, {"chanels", 8}}).find("chanels"), std::string::npos);
  EXPECT_NE(error_of({{"resolution", 32}, {"ch", "wide"}}).find("ch"), std::string::npos);
  EXPECT_NE(error_of({{"resolution", 32}, {"attention", {{"type", "nope"}}}}).find("attention"), std::string::npos);
  EXPECT_NE(error_of({{"resolution", 32}, {"n_classes", 0}}).find("n_classes"), std::string::npos);
}

TEST(ModelConfig, SharedEmbeddingAndSnEpsDefaultsAndErrors) {
  // Configs written before the two keys existed (checkpoint manifests) read as today's models.
  const ModelConfig old = model_config_from_json({{"resolution", 32}, {"ch", 8}});
  EXPECT_TRUE(old.shared_embedding);
  EXPECT_EQ(old.sn_eps, 1e-12);
  const ModelConfig set = model_config_from_json(
      {{"resolution", 32}, {"ch", 8}, {"hierarchical_z", false}, {"shared_embedding", false}, {"sn_eps", 1e-6}});
  EXPECT_FALSE(set.shared_embedding);
  EXPECT_EQ(set.sn_eps, 1e-6);
  // Per-layer class tables take the class alone: hierarchical z (z chunks in the conditioning) is refused.
  const std::string hierarchical = error_of({{"resolution", 32}, {"ch", 8}, {"shared_embedding", false}});
  EXPECT_NE(hierarchical.find("shared_embedding"), std::string::npos) << hierarchical;
  EXPECT_NE(hierarchical.find("hierarchical_z false"), std::string::npos) << hierarchical;
  for (double bad : {0.0, -1e-6}) {
    const std::string error = error_of({{"resolution", 32}, {"ch", 8}, {"sn_eps", bad}});
    EXPECT_NE(error.find("sn_eps"), std::string::npos) << error;
  }
  EXPECT_NE(error_of({{"resolution", 32}, {"sn_eps", "small"}}).find("sn_eps"), std::string::npos);
  EXPECT_NE(error_of({{"resolution", 32}, {"shared_embedding", 0.5}}).find("shared_embedding"), std::string::npos);
  ModelConfig infinite = ModelConfig::preset(32);
  infinite.sn_eps = std::numeric_limits<double>::infinity();
  EXPECT_THROW(infinite.validate(), std::invalid_argument);
}

TEST(ModelConfig, FieldsAreReadStrictlyAsTheTrainSection) {
  // A fraction for an integer is refused, not truncated (96.5 once became ch 96), as in the train section.
  EXPECT_EQ(error_of({{"resolution", 32}, {"ch", 96.5}}), "model config: ch: wrong type (got 96.5, expected an integer)");
  EXPECT_EQ(error_of({{"resolution", 32.0}}), "model config: resolution: wrong type (got 32.0, expected an integer)");
  EXPECT_NE(error_of({{"resolution", 32}, {"g_attn", {16.5}}}).find("g_attn: wrong type (got [16.5], expected a list of integers)"),
            std::string::npos);
  EXPECT_NE(error_of({{"resolution", 32}, {"key_pool", 1}}).find("key_pool: wrong type (got 1, expected true or false)"),
            std::string::npos);
  EXPECT_NE(error_of({{"resolution", 32}, {"heads", "1"}}).find("heads: wrong type"), std::string::npos);
  try {
    train_config_from_json({{"batch", 1.5}});
    ADD_FAILURE() << "batch 1.5 accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "train config: batch: wrong type (got 1.5, expected an integer)");
  }
}

TEST(ModelConfig, EveryFieldRoundTripsThroughTheFieldTables) {
  // Every field away from its default: a key bound to the wrong member, or missing from a table,
  // comes back different.
  ModelConfig model = ModelConfig::preset(64);
  model.ch = 24;
  model.z_dim = 100;
  model.shared_dim = 40;
  model.n_classes = 5;
  model.g_attn = {32, 64};
  model.d_attn = {16};
  model.attention = attention::SmyrfOptions{.hashes = 2, .q_cluster = 256, .k_cluster = 256};  // no key pooling: M = N
  model.key_pool = false;
  model.heads = 2;
  model.hierarchical_z = false;
  model.shared_embedding = false;
  model.sn_eps = 1e-6;
  model.spectral_norm = "biggan";
  model.bn_eps = 1e-4;
  model.d_wide = false;
  const nlohmann::json model_json = to_json(model);
  EXPECT_EQ(model_json.size(), 16u) << model_json;
  EXPECT_EQ(to_json(model_config_from_json(model_json)), model_json);
  EXPECT_EQ(model_json["g_attn"], nlohmann::json::array({32, 64}));
  EXPECT_EQ(model_json["sn_eps"], 1e-6);

  TrainConfig train;
  train.batch = 7;
  train.lr_g = 2e-4;
  train.lr_d = 3e-4;
  train.beta1 = 0.5;
  train.beta2 = 0.99;
  train.eps = 1e-8;
  train.d_steps = 3;
  train.accumulate = 2;
  train.ortho = 0.5;
  train.ema = "decay";
  train.ema_kimg = 20;
  train.ema_rampup = 0.1;
  train.ema_decay = 0.999;
  train.ema_start = 50;
  train.seed = 99;
  train.bf16 = false;
  train.init = "xavier";
  train.diffaug = "color";
  const nlohmann::json train_json = to_json(train);
  EXPECT_EQ(train_json.size(), 18u) << train_json;
  EXPECT_EQ(to_json(train_config_from_json(train_json)), train_json);
  EXPECT_EQ(train_json["seed"], 99u);
  EXPECT_EQ(train_json["ema_start"], 50);
}


TEST(ModelConfig, BigGanOptionsDefaultsAndErrors) {
  const ModelConfig defaults;
  EXPECT_EQ(defaults.spectral_norm, "longgan");
  EXPECT_EQ(defaults.bn_eps, 1e-5);
  EXPECT_TRUE(defaults.d_wide);
  // A config.json written before these options reads as before.
  nlohmann::json old = to_json(ModelConfig::preset(32));
  old.erase("spectral_norm");
  old.erase("bn_eps");
  old.erase("d_wide");
  EXPECT_EQ(to_json(model_config_from_json(old)), to_json(ModelConfig::preset(32)));

  ModelConfig config = ModelConfig::preset(32);
  config.spectral_norm = "miyato";
  try {
    config.validate();
    FAIL() << "an unknown spectral norm style was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("spectral_norm: 'miyato' is not known; use longgan"), std::string::npos)
        << e.what();
  }
  config = ModelConfig::preset(32);
  config.bn_eps = 0;
  try {
    config.validate();
    FAIL() << "bn_eps 0 was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("bn_eps: must be a finite number > 0"), std::string::npos) << e.what();
  }
}

TEST(ModelConfig, Resolution512PlansAsBigGanPyTorch) {
  ModelConfig config = ModelConfig::preset(512);
  config.ch = 1;
  // BigGAN-PyTorch's G_arch[512]: in [16,16,8,8,4,2,1] out [16,8,8,4,2,1,1], resolutions 8..512.
  const std::vector<BlockPlan> g = generator_plan(config);
  ASSERT_EQ(g.size(), 7u);
  const std::vector<int64_t> g_in{16, 16, 8, 8, 4, 2, 1}, g_out{16, 8, 8, 4, 2, 1, 1};
  for (size_t i = 0; i < g.size(); ++i) {
    EXPECT_EQ(g[i].in_channels, g_in[i]) << i;
    EXPECT_EQ(g[i].out_channels, g_out[i]) << i;
    EXPECT_EQ(g[i].resolution, int64_t(8) << i) << i;
  }
  const std::vector<BlockPlan> d = discriminator_plan(config);
  ASSERT_EQ(d.size(), 8u);
  EXPECT_EQ(d.front().in_channels, 3);
  EXPECT_EQ(d.front().resolution, 256);
  EXPECT_EQ(d.back().out_channels, 16);
  EXPECT_EQ(d.back().resolution, 4);
  EXPECT_EQ(config.g_attn, std::vector<int64_t>{64});
  EXPECT_EQ(latent_split(config).blocks, 7);
}

}  // namespace
}  // namespace longgan::gan

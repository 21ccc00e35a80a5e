#include "gan/summary.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "gan/discriminator.h"
#include "gan/generator.h"

namespace longgan::gan {
namespace {

// Parameter counts from the channel plan, layer by layer (independent of the modules).
int64_t conv(int64_t in, int64_t out, int64_t k, bool bias) { return in * out * k * k + (bias ? out : 0); }
int64_t linear(int64_t in, int64_t out, bool bias) { return in * out + (bias ? out : 0); }
int64_t cbn(int64_t channels, int64_t cond) { return 2 * linear(cond, channels, false); }
int64_t self_attention(int64_t c) {
  return 2 * conv(c, c / 8, 1, false) + conv(c, c / 2, 1, false) + conv(c / 2, c, 1, false) + 1;  // + gamma
}

TEST(ParameterCount, Preset128Ch96MatchesChannelPlanFormulae) {
  ModelConfig config = ModelConfig::preset(128);
  config.ch = 96;  // z 120, shared 128, one class, attention at 64 in G and D
  const int64_t ch = 96;
  const int64_t z_chunk = 120 / 6, first = 120 - 5 * z_chunk, cond = 128 + z_chunk;

  const std::vector<int64_t> g_in{16, 16, 8, 4, 2}, g_out{16, 8, 4, 2, 1}, g_res{8, 16, 32, 64, 128};
  int64_t g = 1 * 128 + linear(first, 16 * ch * 16, true);  // shared embedding, z -> 4x4
  for (size_t i = 0; i < g_in.size(); ++i) {
    const int64_t in = g_in[i] * ch, out = g_out[i] * ch;
    g += cbn(in, cond) + conv(in, out, 3, true) + cbn(out, cond) + conv(out, out, 3, true) + conv(in, out, 1, true);
    if (g_res[i] == 64) g += self_attention(out);
  }
  g += 2 * ch + conv(ch, 3, 3, true);  // out BN (affine) + conv to RGB

  const std::vector<int64_t> d_in{3, ch, 2 * ch, 4 * ch, 8 * ch, 16 * ch};
  const std::vector<int64_t> d_out{ch, 2 * ch, 4 * ch, 8 * ch, 16 * ch, 16 * ch};
  const std::vector<int64_t> d_res{64, 32, 16, 8, 4, 4};
  int64_t d = 0;
  for (size_t i = 0; i < d_in.size(); ++i) {
    const bool downsample = i + 1 < d_in.size();
    const bool learnable_shortcut = downsample || d_in[i] != d_out[i];
    d += conv(d_in[i], d_out[i], 3, true) + conv(d_out[i], d_out[i], 3, true) +
         (learnable_shortcut ? conv(d_in[i], d_out[i], 1, true) : 0);
    if (d_res[i] == 64) d += self_attention(d_out[i]);
  }
  d += linear(16 * ch, 1, true) + 1 * 16 * ch;  // logit + class projection embedding

  auto count = [](const torch::nn::Module& m) {
    int64_t n = 0;
    for (const auto& p : m.parameters()) n += p.numel();
    return n;
  };
  const int64_t g_model = count(*Generator(config));
  const int64_t d_model = count(*Discriminator(config));
  std::printf("128/ch96: G formula %lld model %lld; D formula %lld model %lld\n", static_cast<long long>(g),
              static_cast<long long>(g_model), static_cast<long long>(d), static_cast<long long>(d_model));
  EXPECT_EQ(g_model, g);
  EXPECT_EQ(d_model, d);
}

TEST(ModelSummary, ListsBlocksShapesParamsAndAttentionTokens) {
  ModelConfig config = ModelConfig::preset(32);
  config.ch = 8;
  const std::string text = model_summary(config);
  std::printf("%s", text.c_str());
  EXPECT_NE(text.find("GBlock 32->32"), std::string::npos);
  EXPECT_NE(text.find("[3, 32, 32]"), std::string::npos);
  EXPECT_NE(text.find("dense N=1024 M=256"), std::string::npos);  // G attention at 32
  EXPECT_NE(text.find("dense N=256 M=64"), std::string::npos);    // D attention at 16
  EXPECT_NE(text.find("total G"), std::string::npos);
  EXPECT_NE(text.find("total D"), std::string::npos);
}

TEST(ModelSummary, WithoutSharedEmbeddingCountsTheBatchNormTables) {
  ModelConfig config = ModelConfig::preset(32);
  config.ch = 8;  // G: 3 blocks of 32 channels
  config.n_classes = 5;
  config.hierarchical_z = false;
  config.shared_embedding = false;
  config.sn_eps = 1e-6;
  const std::string text = model_summary(config);
  std::printf("%s", text.c_str());
  EXPECT_NE(text.find("sn_eps 1e-06"), std::string::npos) << text;
  EXPECT_NE(text.find("none (class tables per CBN)"), std::string::npos) << text;
  EXPECT_EQ(text.find("embedding 5x"), std::string::npos) << text;
  // A block: two CBNs with gain and bias tables [5, 32], conv3x3 x2, conv1x1 shortcut.
  const int64_t block = 2 * 2 * 5 * 32 + 2 * conv(32, 32, 3, true) + conv(32, 32, 1, true);
  char row[64];
  std::snprintf(row, sizeof row, "%14lld", static_cast<long long>(block));
  EXPECT_NE(text.find(std::string("[32, 8, 8]         ") + row), std::string::npos) << text;
  std::snprintf(row, sizeof row, "%14lld", static_cast<long long>(
      linear(120, 32 * 16, true) + 3 * block + self_attention(32) + 2 * 32 + conv(32, 3, 3, true)));
  EXPECT_NE(text.find(std::string("total G") + std::string(64 - 7, ' ') + " " + row), std::string::npos) << text;
}

TEST(ModelSummary, BareAttentionNameIsFittedPerBlock) {
  // At 32x32 the default SMYRF clusters (2048/512) exceed G's 1,024 and D's 256 tokens.
  ModelConfig config = ModelConfig::preset(32);
  config.ch = 8;
  config.attention = attention::parse_attention_spec("smyrf");
  ASSERT_NO_THROW(config.validate());
  const std::string text = model_summary(config);
  EXPECT_NE(text.find("smyrf:hashes=4,q_cluster=128,k_cluster=32 (fitted) N=1024 M=256"), std::string::npos) << text;
  EXPECT_NE(text.find("smyrf:hashes=4,q_cluster=32,k_cluster=8 (fitted) N=256 M=64"), std::string::npos) << text;
  // The networks run with the fitted specs.
  Generator g(config);
  Discriminator d(config);
  for (const auto& [index, block] : g->attention) {
    EXPECT_EQ(std::get<attention::SmyrfOptions>(block->attention_spec()).q_cluster, 128);
  }
  for (const auto& [index, block] : d->attention) {
    EXPECT_EQ(std::get<attention::SmyrfOptions>(block->attention_spec()).q_cluster, 32);
  }
  torch::manual_seed(0);
  auto images = g->forward(torch::randn({2, config.z_dim}), torch::zeros({2}, torch::kLong));
  EXPECT_EQ(images.sizes(), (std::vector<int64_t>{2, 3, 32, 32}));
  EXPECT_EQ(d->forward(images, torch::zeros({2}, torch::kLong)).size(0), 2);
  // Switching to another bare name fits again; chosen options that do not fit are refused.
  g->set_attention(attention::parse_attention_spec("clustered"));
  EXPECT_EQ(std::get<attention::ClusteredOptions>(g->attention.begin()->second->attention_spec()).clusters, 100);
  config.attention = attention::parse_attention_spec("smyrf:hashes=2,q_cluster=2048,k_cluster=256");
  EXPECT_THROW(config.validate(), std::invalid_argument);
}

}  // namespace
}  // namespace longgan::gan

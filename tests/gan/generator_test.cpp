#include "gan/generator.h"

#include <gtest/gtest.h>

#include "gan/discriminator.h"

#include <map>
#include <string>
#include <vector>

namespace longgan::gan {
namespace {

ModelConfig tiny(int64_t resolution, int64_t ch) {
  ModelConfig config = ModelConfig::preset(resolution);
  config.ch = ch;
  config.shared_dim = 16;
  config.n_classes = 3;
  return config;
}

void expect_shapes(const ModelConfig& config, int64_t batch) {
  torch::manual_seed(0);
  Generator g(config);
  Discriminator d(config);
  const at::Tensor z = torch::randn({batch, config.z_dim});
  const at::Tensor labels = torch::randint(config.n_classes, {batch}, at::kLong);
  const at::Tensor images = g->forward(z, labels);
  EXPECT_EQ(images.sizes(), (std::vector<int64_t>{batch, 3, config.resolution, config.resolution}));
  EXPECT_LE(images.abs().max().item<double>(), 1.0);
  const at::Tensor logits = d->forward(images, labels);
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{batch}));
  EXPECT_TRUE(at::isfinite(logits).all().item<bool>());
}

TEST(GeneratorDiscriminator, ShapesPreset32) { expect_shapes(tiny(32, 16), 2); }
TEST(GeneratorDiscriminator, ShapesPreset64) { expect_shapes(tiny(64, 8), 2); }
TEST(GeneratorDiscriminator, ShapesPreset128) { expect_shapes(tiny(128, 8), 1); }

TEST(GeneratorDiscriminator, NonHierarchicalLatent) {
  ModelConfig config = tiny(32, 8);
  config.hierarchical_z = false;
  expect_shapes(config, 2);
}

TEST(GeneratorDiscriminator, AttentionBlocksWhereListed) {
  ModelConfig config = tiny(64, 8);
  config.g_attn = {16, 64};
  config.d_attn = {8};
  Generator g(config);
  Discriminator d(config);
  ASSERT_EQ(g->attention.size(), 2u);
  EXPECT_TRUE(g->attention.contains(1));  // block 1 outputs 16
  EXPECT_TRUE(g->attention.contains(3));  // block 3 outputs 64
  ASSERT_EQ(d->attention.size(), 1u);
  EXPECT_TRUE(d->attention.contains(2));  // D 64: 32, 16, 8, 4, 4
}

TEST(GeneratorDiscriminator, OrthoParametersExcludeEmbeddingAndGains) {
  Generator g(tiny(32, 8));
  size_t expected = 0;
  for (const auto& item : g->named_parameters()) {
    const bool excluded = item.key().starts_with("shared.") || item.key().find(".cbn") != std::string::npos;
    if (!excluded && item.value().dim() >= 2) ++expected;
  }
  EXPECT_EQ(g->ortho_parameters().size(), expected);
  // linear, 3 blocks x 3 convs, attention 4 convs, out conv.
  EXPECT_EQ(expected, 1u + 9u + 4u + 1u);
}

}  // namespace
}  // namespace longgan::gan

namespace longgan::gan {
namespace {

std::map<std::string, std::vector<int64_t>> state_shapes(const torch::nn::Module& module) {
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& item : module.named_parameters()) shapes[item.key()] = item.value().sizes().vec();
  for (const auto& item : module.named_buffers()) shapes["buffer:" + item.key()] = item.value().sizes().vec();
  return shapes;
}

TEST(GeneratorDiscriminator, StateKeysAndShapesIndependentOfAttentionType) {
  const ModelConfig base = tiny(32, 8);
  const auto g_reference = state_shapes(*Generator(base));
  const auto d_reference = state_shapes(*Discriminator(base));
  for (const std::string& name : attention::attention_type_names()) {
    SCOPED_TRACE(name);
    ModelConfig config = base;
    config.attention = attention::parse_attention_spec(name);
    try {
      config.validate();
    } catch (const std::invalid_argument&) {
      // Default options do not fit these tiny lengths: switch a dense-built model instead.
      Generator g(base);
      g->set_attention(config.attention);
      EXPECT_EQ(state_shapes(*g), g_reference);
      continue;
    }
    EXPECT_EQ(state_shapes(*Generator(config)), g_reference);
    EXPECT_EQ(state_shapes(*Discriminator(config)), d_reference);
  }
}

}  // namespace
}  // namespace longgan::gan

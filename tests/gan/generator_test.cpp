#include "gan/generator.h"

#include <gtest/gtest.h>

#include "gan/discriminator.h"
#include "gan/spectral_norm.h"

#include <algorithm>
#include <cmath>
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

TEST(GeneratorDiscriminator, WithoutSharedEmbeddingEachBatchNormOwnsClassTables) {
  ModelConfig shared = tiny(32, 8);  // 3 classes, shared_dim 16
  shared.hierarchical_z = false;     // the conditioning vector is the embedding alone: [C, 16] gain/bias
  ModelConfig own = shared;
  own.shared_embedding = false;
  const auto reference = state_shapes(*Generator(shared));
  const auto tables = state_shapes(*Generator(own));
  size_t tables_seen = 0;
  for (const auto& [name, shape] : reference) {
    SCOPED_TRACE(name);
    const bool cbn_weight = name.find(".cbn") != std::string::npos &&
                            (name.ends_with(".gain.weight") || name.ends_with(".bias.weight"));
    const bool cbn_u = name.find(".cbn") != std::string::npos && (name.ends_with(".gain.u") || name.ends_with(".bias.u"));
    if (name.starts_with("shared.") || cbn_u) {
      EXPECT_FALSE(tables.contains(name));  // no shared embedding; plain tables have no spectral norm
    } else if (cbn_weight) {
      ASSERT_EQ(shape, (std::vector<int64_t>{shape[0], 16}));
      ASSERT_TRUE(tables.contains(name));
      EXPECT_EQ(tables.at(name), (std::vector<int64_t>{3, shape[0]}));  // [n_classes, channels]
      ++tables_seen;
    } else {
      ASSERT_TRUE(tables.contains(name));
      EXPECT_EQ(tables.at(name), shape);
    }
  }
  EXPECT_EQ(tables_seen, 3u * 2u * 2u);  // 3 blocks x 2 CBNs x (gain, bias)
  for (const auto& [name, shape] : tables) EXPECT_TRUE(reference.contains(name)) << "new name " << name;
  EXPECT_EQ(state_shapes(*Discriminator(own)), state_shapes(*Discriminator(shared)));

  // The class picks the rows: different classes, different images; only used rows get gradients.
  torch::manual_seed(4);
  Generator g(own);
  const at::Tensor z = torch::randn({1, own.z_dim}).expand({3, own.z_dim}).contiguous();
  const at::Tensor images = g->forward(z, torch::arange(3, at::kLong));
  EXPECT_FALSE(at::allclose(images[0], images[1]));
  EXPECT_FALSE(at::allclose(images[1], images[2]));
  g->zero_grad();
  g->forward(torch::randn({2, own.z_dim}), torch::zeros({2}, at::kLong)).square().sum().backward();
  const at::Tensor grad = g->blocks[0]->cbn1->gain_table->weight.grad();
  ASSERT_TRUE(grad.defined());
  EXPECT_GT(grad[0].abs().sum().item<double>(), 0.0);
  EXPECT_EQ(grad.slice(0, 1).abs().sum().item<double>(), 0.0);
}

// Every module that owns a power-iteration vector `u` is a spectral norm layer; each must carry eps.
void expect_sn_eps_everywhere(torch::nn::Module& model, double eps) {
  int64_t owners_of_u = 0, checked = 0;
  model.apply([&](torch::nn::Module& module) {
    for (const auto& buffer : module.named_buffers(/*recurse=*/false)) owners_of_u += buffer.key() == "u";
    const double* slot = nullptr;
    if (auto* conv = module.as<SNConv2dImpl>()) slot = &conv->eps;
    if (auto* linear = module.as<SNLinearImpl>()) slot = &linear->eps;
    if (auto* embedding = module.as<SNEmbeddingImpl>()) slot = &embedding->eps;
    if (slot == nullptr) return;
    EXPECT_EQ(*slot, eps) << module.name();
    ++checked;
  });
  EXPECT_GT(checked, 0);
  EXPECT_EQ(checked, owners_of_u);
}

TEST(GeneratorDiscriminator, SnEpsReachesEverySpectralNorm) {
  ModelConfig config = tiny(32, 8);
  config.g_attn = {16, 32};  // attention blocks' convs too
  EXPECT_EQ(config.sn_eps, kDefaultSpectralNormEps);
  expect_sn_eps_everywhere(*Generator(config), kDefaultSpectralNormEps);
  expect_sn_eps_everywhere(*Discriminator(config), kDefaultSpectralNormEps);
  config.sn_eps = 1e-6;
  expect_sn_eps_everywhere(*Generator(config), 1e-6);
  expect_sn_eps_everywhere(*Discriminator(config), 1e-6);
  config.hierarchical_z = false;
  config.shared_embedding = false;
  expect_sn_eps_everywhere(*Generator(config), 1e-6);
  // It changes what the networks compute (weights tiny enough that the floor binds).
  ModelConfig floor = tiny(32, 8);
  floor.sn_eps = 10.0;
  torch::manual_seed(6);
  Discriminator plain(tiny(32, 8));
  torch::manual_seed(6);
  Discriminator floored(floor);
  const at::Tensor images = torch::rand({2, 3, 32, 32}) * 2 - 1;
  const at::Tensor labels = torch::zeros({2}, at::kLong);
  EXPECT_FALSE(at::allclose(plain->forward(images, labels), floored->forward(images, labels)));
}

}  // namespace
}  // namespace longgan::gan

namespace longgan::gan {
namespace {

TEST(GeneratorDiscriminator, WatchedSigmasAreTheAttentionAndEndLayersAndLeaveTheStateAlone) {
  ModelConfig config = tiny(32, 8);  // G attention at 32, D attention at 16
  torch::manual_seed(0);
  Generator g(config);
  Discriminator d(config);
  g->train();
  std::vector<at::Tensor> before;
  for (const auto& buffer : g->buffers()) before.push_back(buffer.clone());
  const auto sigmas = watched_sigmas(*g);
  std::vector<std::string> names;
  for (const auto& [name, sigma] : sigmas) {
    names.push_back(name);
    EXPECT_TRUE(std::isfinite(sigma) && sigma > 0) << name << " " << sigma;
  }
  // G's attention follows block 2 (32x32); the layers are its four 1x1 convs.
  EXPECT_EQ(names, (std::vector<std::string>{"attention.2.g", "attention.2.o", "attention.2.phi",
                                             "attention.2.theta", "linear", "out_conv"}));
  // The value is u^T W v of the stored u: the sigma the next forward divides by before its update.
  auto* linear = g->linear.get();
  at::Tensor u = linear->u.clone();
  EXPECT_NEAR(sigmas.at("linear"), spectral_sigma(linear->weight.detach(), u, 0).item<double>(), 1e-6);
  const auto buffers = g->buffers();
  for (size_t i = 0; i < buffers.size(); ++i) EXPECT_TRUE(at::equal(buffers[i], before[i])) << i;
  const auto d_sigmas = watched_sigmas(*d);
  EXPECT_EQ(std::count_if(d_sigmas.begin(), d_sigmas.end(),
                          [](const auto& item) { return item.first.starts_with("attention."); }),
            4);
  EXPECT_TRUE(d_sigmas.contains("linear"));  // D's last SN layer before the class projection
  EXPECT_TRUE(d_sigmas.contains("blocks.0.conv1"));
}

}  // namespace
}  // namespace longgan::gan

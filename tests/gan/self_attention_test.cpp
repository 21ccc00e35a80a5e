#include "gan/self_attention.h"

#include <gtest/gtest.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>

#include <string>
#include <vector>

#include "attention/call_profile.h"
#include "gan/discriminator.h"
#include "gan/generator.h"

namespace longgan::gan {
namespace {

TEST(SelfAttention, GammaZeroIsIdentity) {
  torch::manual_seed(0);
  SelfAttention block(16, attention::DenseOptions{});
  const at::Tensor x = torch::randn({2, 16, 8, 8});
  EXPECT_TRUE(at::equal(block->forward(x), x));
}

TEST(SelfAttention, NonzeroGammaChangesOutputAndMatchesManualFormula) {
  torch::manual_seed(1);
  SelfAttention block(16, attention::DenseOptions{}, /*key_pool=*/true, /*heads=*/2);
  block->eval();
  {
    torch::NoGradGuard no_grad;
    block->gamma.fill_(0.5);
  }
  const at::Tensor x = torch::randn({2, 16, 4, 6});
  const at::Tensor out = block->forward(x);
  // Manual: per head, softmax(theta^T phi) g with scale 1.
  const at::Tensor theta = block->theta->forward(x).reshape({2, 2, 1, 24});
  const at::Tensor phi = at::max_pool2d(block->phi->forward(x), {2, 2}).reshape({2, 2, 1, 6});
  const at::Tensor g = at::max_pool2d(block->g->forward(x), {2, 2}).reshape({2, 2, 4, 6});
  const at::Tensor weights = at::softmax(at::matmul(theta.transpose(-1, -2), phi), -1);  // [2,2,24,6]
  const at::Tensor attended = at::matmul(g, weights.transpose(-1, -2)).reshape({2, 8, 4, 6});
  const at::Tensor expected = x + 0.5 * block->o->forward(attended);
  EXPECT_TRUE(at::allclose(out, expected, 1e-5, 1e-5));
  EXPECT_FALSE(at::allclose(out, x));
}

TEST(SelfAttention, WithoutKeyPoolKeepsShape) {
  torch::manual_seed(2);
  SelfAttention block(8, attention::DenseOptions{}, /*key_pool=*/false);
  const at::Tensor x = torch::randn({1, 8, 5, 3});
  EXPECT_EQ(block->forward(x).sizes(), x.sizes());
}

double relative_error(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).norm().item<double>() / std::max(1e-30, b.norm().item<double>());
}

// The token-major block (batched products, tokens with unit last stride) against the channel-major
// computation it replaced (1x1 convolutions, transposed token views): same output, same gradients
// for the input and every parameter, for every type, heads 1 and 2, pooled keys or not.
TEST(SelfAttention, TokenLayoutEqualsTheChannelMajorReference) {
  // Options for an 8x6 map: 48 queries, 12 pooled keys (48 unpooled).
  auto spec_for = [](int type, bool key_pool) -> attention::AttentionSpec {
    switch (type) {
      case 0: return attention::DenseOptions{};
      case 1: return attention::SmyrfOptions{.hashes = 2, .q_cluster = 8, .k_cluster = key_pool ? 2 : 8};
      case 2: return attention::ClusteredOptions{.clusters = 5};
      case 3: return attention::ImprovedClusteredOptions{.clustering = {.clusters = 5}, .topk = 4};
      default: return attention::CombinerAxialOptions{};
    }
  };
  for (int type = 0; type < 5; ++type) {
    for (int64_t heads : {1, 2}) {
      for (bool key_pool : {true, false}) {
        const auto spec = spec_for(type, key_pool);
        const std::string what = attention::to_string(spec) + " heads " + std::to_string(heads) +
                                 (key_pool ? " pooled" : " unpooled");
        torch::manual_seed(3);
        SelfAttention block(32, spec, key_pool, heads);
        block->eval();  // no power iteration: both calls see the same weights
        {
          torch::NoGradGuard no_grad;
          block->gamma.fill_(0.7);
        }
        auto run = [&](bool reference) {
          torch::manual_seed(5);
          auto x = torch::randn({2, 32, 8, 6}).requires_grad_(true);
          block->set_generator(at::make_generator<at::CPUGeneratorImpl>(11));
          block->zero_grad();
          auto out = reference ? block->forward_reference(x) : block->forward(x);
          (out * out).sum().backward();
          std::vector<at::Tensor> results = {out.detach(), x.grad()};
          for (const auto& p : block->parameters()) results.push_back(p.grad().clone());
          return results;
        };
        auto got = run(false), want = run(true);
        ASSERT_EQ(got.size(), want.size());
        for (size_t i = 0; i < got.size(); ++i) {
          EXPECT_LT(relative_error(got[i], want[i]), 1e-5) << what << ": result " << i;
        }
      }
    }
  }
}

ModelConfig dense_model(int64_t resolution) {
  ModelConfig config = ModelConfig::preset(resolution);
  config.ch = 16;
  config.attention = attention::DenseOptions{};
  return config;
}

// Dense attention in the model's own blocks (G and D, the shapes training hands them) reaches
// SDPA's fused kernel, never the chunked fallback.
TEST(SelfAttention, DenseBlocksOfGAndDRunSdpaOnTheCpu) {
  torch::manual_seed(6);
  const ModelConfig config = dense_model(32);
  Generator g(config);
  Discriminator d(config);
  attention::CallProfile profile;
  {
    const attention::ScopedCallProfile recording(profile);
    auto images = g->forward(torch::randn({2, config.z_dim}), torch::zeros({2}, at::kLong));
    d->forward(images, torch::zeros({2}, at::kLong)).sum().backward();
  }
  ASSERT_EQ(profile.implementations.size(), config.g_attn.size() + config.d_attn.size());
  for (const auto& name : profile.implementations) EXPECT_EQ(name.rfind("sdpa flash", 0), 0u) << name;
  EXPECT_GT(profile.milliseconds[attention::kPhaseLayout], 0.0);
  EXPECT_GT(profile.milliseconds[attention::kPhaseKernel], 0.0);
}

// Under the CPU's bf16 autocast (what CUDA training runs, here on every CI machine) the block
// gives bf16 tokens to the library and finite gradients to every parameter. SMYRF with one cluster
// is exact, so the output differs from the fp32 block by bf16 rounding only.
TEST(SelfAttention, TrainsUnderBf16Autocast) {
  torch::manual_seed(7);
  SelfAttention block(32, attention::SmyrfOptions{.hashes = 2, .q_cluster = 64, .k_cluster = 16});
  block->eval();  // the same spectral-norm u for both forwards (its autocast case: SpectralNorm tests)
  {
    torch::NoGradGuard no_grad;
    block->gamma.fill_(0.5);
  }
  auto x = torch::randn({2, 32, 8, 8}).requires_grad_(true);
  attention::CallProfile profile;
  at::autocast::set_autocast_enabled(at::kCPU, true);
  at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
  at::Tensor out;
  {
    const attention::ScopedCallProfile recording(profile);
    out = block->forward(x);
  }
  at::autocast::set_autocast_enabled(at::kCPU, false);
  at::autocast::clear_cache();
  out.to(at::kFloat).square().sum().backward();
  ASSERT_EQ(profile.implementations, std::vector<std::string>{"fused cpu_flash"});
  EXPECT_TRUE(at::isfinite(x.grad()).all().item<bool>());
  for (const auto& p : block->parameters()) {
    ASSERT_TRUE(p.grad().defined());
    EXPECT_TRUE(at::isfinite(p.grad()).all().item<bool>());
  }
  auto reference = block->forward_reference(x.detach());
  EXPECT_EQ(out.scalar_type(), at::kFloat);  // x + gamma * (bf16 map): the residual stays fp32
  EXPECT_LT(relative_error(out.detach() - x.detach(), reference - x.detach()), 0.02);
}

TEST(SelfAttention, RejectsChannelsNotDivisibleByEightTimesHeads) {
  EXPECT_THROW(SelfAttention(12, attention::DenseOptions{}), std::invalid_argument);
  EXPECT_THROW(SelfAttention(16, attention::DenseOptions{}, true, 4), std::invalid_argument);
}

}  // namespace
}  // namespace longgan::gan

namespace longgan::gan {
namespace {

// The ablation: with `none` the block returns its input exactly, whatever gamma, and records a
// branch ratio of 0; with another type the ratio is ||out - x|| / ||x|| of the same call.
TEST(SelfAttention, NoneReturnsTheInputAndBranchRatioMeasuresTheBranch) {
  torch::manual_seed(3);
  SelfAttention block(16, attention::DenseOptions{});
  {
    torch::NoGradGuard no_grad;
    block->gamma.fill_(0.75);
  }
  EXPECT_FALSE(block->last_branch_ratio().has_value());
  const at::Tensor x = torch::randn({2, 16, 8, 8});
  const at::Tensor dense = block->forward(x);
  ASSERT_FALSE(at::equal(dense, x));
  const double expected = (dense - x).norm().item<double>() / x.norm().item<double>();
  ASSERT_TRUE(block->last_branch_ratio().has_value());
  EXPECT_NEAR(*block->last_branch_ratio(), expected, 1e-5 * expected);

  block->set_attention(attention::NoneOptions{});
  EXPECT_TRUE(at::equal(block->forward(x), x));
  EXPECT_TRUE(at::equal(block->forward_reference(x), x));
  EXPECT_EQ(*block->last_branch_ratio(), 0.0);
  // block_output of a zero attention output is the same x: o has no bias.
  const at::Tensor zeros = at::zeros({2, 1, 64, 8});
  EXPECT_TRUE(at::allclose(block->block_output(x, zeros), x, 0, 0));

  const auto readings = attention_readings(*block);
  EXPECT_TRUE(readings.empty());  // the block itself is not among its sub-modules
  Generator g(dense_model(32));
  {
    torch::NoGradGuard no_grad;
    for (auto& [index, attention] : g->attention) attention->gamma.fill_(0.25 + index);
  }
  const auto g_readings = attention_readings(*g);
  ASSERT_EQ(g_readings.size(), g->attention.size());
  for (auto& [index, attention] : g->attention) {
    const auto& reading = g_readings.at("attention." + std::to_string(index));
    EXPECT_EQ(reading.gamma, 0.25 + index);
    EXPECT_EQ(reading.resolution, attention->resolution);
  }
}

// A model whose attention is `none` computes what the same model without attention sites does,
// on the same weights (attention's own parameters aside).
TEST(SelfAttention, NoneModelEqualsTheModelWithoutAttentionSites) {
  ModelConfig with_sites = dense_model(32);
  ModelConfig without = with_sites;
  without.g_attn.clear();
  without.d_attn.clear();
  torch::manual_seed(5);
  Generator g(with_sites), plain(without);
  Discriminator d(with_sites), d_plain(without);
  {
    torch::NoGradGuard no_grad;
    for (auto& [index, attention] : g->attention) attention->gamma.fill_(0.5);
    for (auto& [index, attention] : d->attention) attention->gamma.fill_(0.5);
  }
  auto copy_shared = [](torch::nn::Module& from, torch::nn::Module& to) {
    torch::NoGradGuard no_grad;
    auto source = from.named_parameters();
    auto source_buffers = from.named_buffers();
    for (auto& item : to.named_parameters()) item.value().copy_(source[item.key()]);
    for (auto& item : to.named_buffers()) item.value().copy_(source_buffers[item.key()]);
  };
  copy_shared(*g, *plain);
  copy_shared(*d, *d_plain);
  g->eval();
  plain->eval();
  d->eval();
  d_plain->eval();
  torch::NoGradGuard no_grad;
  const at::Tensor z = torch::randn({2, with_sites.z_dim});
  const at::Tensor labels = torch::zeros({2}, at::kLong);
  const at::Tensor images = g->forward(z, labels);
  EXPECT_FALSE(at::allclose(images, plain->forward(z, labels)));  // gamma 0.5: attention matters
  g->set_attention(attention::NoneOptions{});
  d->set_attention(attention::NoneOptions{});
  EXPECT_TRUE(at::equal(g->forward(z, labels), plain->forward(z, labels)));
  EXPECT_TRUE(at::equal(d->forward(images, labels), d_plain->forward(images, labels)));
}

}  // namespace
}  // namespace longgan::gan

#include "gan/sampling_statistics.h"

#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <iostream>
#include <vector>

#include "gan/sampling.h"

namespace longgan::gan {
namespace {

ModelConfig tiny_model() {
  ModelConfig config = ModelConfig::preset(32);
  config.ch = 8;
  config.z_dim = 20;
  config.shared_dim = 8;
  config.n_classes = 2;
  config.attention = attention::parse_attention_spec("smyrf:hashes=2,q_cluster=64,k_cluster=16");
  return config;
}

Generator tiny_generator(uint64_t seed = 1) {
  Generator g{nullptr};
  with_seeded_global_generator(seed, [&] { g = Generator(tiny_model()); });
  return g;
}

std::vector<at::Tensor> clones(const std::vector<at::Tensor>& tensors) {
  std::vector<at::Tensor> result;
  for (const auto& t : tensors) result.push_back(t.clone());
  return result;
}

bool all_equal(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!at::equal(a[i], b[i])) return false;
  }
  return true;
}

std::vector<at::Tensor> running_statistics(Generator& g) {
  std::vector<at::Tensor> result;
  for (const auto& item : g->named_buffers()) {
    if (item.key().ends_with("running_mean") || item.key().ends_with("running_var")) result.push_back(item.value());
  }
  return result;
}

at::Tensor latents(int64_t n, uint64_t seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return truncated_normal(n, tiny_model().z_dim, 0.0, gen);
}

at::Generator hashes() { return at::make_generator<at::CPUGeneratorImpl>(7); }

TEST(SamplingStatistics, ParsesTheThreeModesAndRejectsOthers) {
  for (auto stats : {SamplingStats::Running, SamplingStats::Batch, SamplingStats::Standing}) {
    EXPECT_EQ(parse_sampling_stats(to_string(stats)), stats);
  }
  EXPECT_THROW(parse_sampling_stats("mean"), std::invalid_argument);
  SamplingOptions options;
  options.standing_passes = 0;
  EXPECT_THROW(options.validate(), std::invalid_argument);
}

TEST(SamplingStatistics, RunningIsTheEvalForwardOfTheSource) {
  Generator source = tiny_generator();
  EmaSampler sampler(tiny_model(), torch::kCPU);
  sampler.load(source, {SamplingStats::Running, 4, 8}, 0);
  const at::Tensor z = latents(3, 2);
  const at::Tensor labels = torch::tensor({0, 1, 1}, at::kLong);
  const at::Tensor images = sampler.generate(z, labels, hashes());
  source->eval();
  source->set_attention_generator(hashes());
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(at::equal(images, source->forward(z, labels)));
}

TEST(SamplingStatistics, StandingStatisticsIgnoreTheSourceStatisticsAndLeaveTheSourceAlone) {
  Generator source = tiny_generator();
  EmaSampler sampler(tiny_model(), torch::kCPU);
  const SamplingOptions standing{SamplingStats::Standing, 3, 8};
  const auto source_buffers = clones(source->buffers());
  const auto source_parameters = clones(source->parameters());
  sampler.load(source, standing, 11);
  const auto first = clones(running_statistics(sampler.network()));
  EXPECT_TRUE(all_equal(source->buffers(), source_buffers));
  EXPECT_TRUE(all_equal(source->parameters(), source_parameters));
  EXPECT_FALSE(all_equal(first, running_statistics(source)));  // re-estimated

  // Nonsense statistics in the source change nothing: standing statistics start from scratch.
  {
    torch::NoGradGuard no_grad;
    for (auto& stat : running_statistics(source)) stat.fill_(5);
  }
  sampler.load(source, standing, 11);
  EXPECT_TRUE(all_equal(running_statistics(sampler.network()), first));
  // Another seed, other passes: other statistics.
  sampler.load(source, standing, 12);
  EXPECT_FALSE(all_equal(running_statistics(sampler.network()), first));
}

TEST(SamplingStatistics, StandingStatisticsApproachTheBatchStatisticsOfLargeBatches) {
  // Rendering with standing statistics over many images is close to rendering with the batch's own
  // statistics; with the initial running statistics (mean 0, var 1) it is far from it.
  Generator source = tiny_generator();
  EmaSampler sampler(tiny_model(), torch::kCPU);
  const at::Tensor z = latents(32, 3);
  const at::Tensor labels = at::arange(32, at::kLong).remainder(2);
  sampler.load(source, {SamplingStats::Batch, 1, 1}, 0);
  const at::Tensor batch = sampler.generate(z, labels, hashes());
  sampler.load(source, {SamplingStats::Running, 1, 1}, 0);
  const double initial = (sampler.generate(z, labels, hashes()) - batch).abs().mean().item<double>();
  sampler.load(source, {SamplingStats::Standing, 8, 32}, 0);
  const double standing = (sampler.generate(z, labels, hashes()) - batch).abs().mean().item<double>();
  EXPECT_LT(standing, 0.25 * initial) << "standing " << standing << ", initial " << initial;
  std::cout << "mean |difference| to batch statistics: standing " << standing << ", initial running " << initial << std::endl;
}

TEST(SamplingStatistics, BatchStatisticsDependOnTheBatchAndKeepTheBuffers) {
  Generator source = tiny_generator();
  EmaSampler sampler(tiny_model(), torch::kCPU);
  sampler.load(source, {SamplingStats::Batch, 1, 1}, 0);
  const auto buffers = clones(running_statistics(sampler.network()));
  const at::Tensor z = latents(4, 5);
  const at::Tensor labels = torch::tensor({0, 1, 0, 1}, at::kLong);
  const at::Tensor four = sampler.generate(z, labels, hashes());
  const at::Tensor two = sampler.generate(z.narrow(0, 0, 2), labels.narrow(0, 0, 2), hashes());
  EXPECT_FALSE(at::allclose(four.narrow(0, 0, 2), two, 1e-5, 2e-5));
  EXPECT_TRUE(all_equal(running_statistics(sampler.network()), buffers));
  // Running statistics: an image does not depend on its batch, up to rounding (oneDNN's convolutions
  // take other paths for other batch sizes: measured 2e-6 on these [-1, 1] pixels; batch statistics
  // above move them by far more).
  sampler.load(source, {SamplingStats::Running, 1, 1}, 0);
  EXPECT_TRUE(at::allclose(sampler.generate(z, labels, hashes()).narrow(0, 0, 2),
                           sampler.generate(z.narrow(0, 0, 2), labels.narrow(0, 0, 2), hashes()), 1e-5, 2e-5));
}

}  // namespace
}  // namespace longgan::gan

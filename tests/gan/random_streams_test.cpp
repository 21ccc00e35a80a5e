#include "gan/random_streams.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <set>

#include "gan/trainer.h"

namespace longgan::gan {
namespace {

constexpr RandomStream kStreams[] = {RandomStream::WeightInit,        RandomStream::Training,
                                     RandomStream::FixedSamples,      RandomStream::EvaluationLatents,
                                     RandomStream::EvaluationHashes,  RandomStream::SampleHashes,
                                     RandomStream::StandingStatistics};

TEST(RandomStreams, EveryStreamOfARunHasASeedOfItsOwn) {
  for (uint64_t seed : {uint64_t{0}, uint64_t{1}, uint64_t{5}, uint64_t{123456789}, ~uint64_t{0}}) {
    std::set<uint64_t> seeds;
    std::set<std::string_view> names;
    for (RandomStream stream : kStreams) {
      seeds.insert(stream_seed(seed, stream));
      names.insert(to_string(stream));
    }
    EXPECT_EQ(seeds.size(), std::size(kStreams)) << "seed " << seed;
    EXPECT_EQ(names.size(), std::size(kStreams));
  }
  // The derivations a resumed run of an earlier release relies on (same FID latents, grids).
  EXPECT_EQ(stream_seed(7, RandomStream::FixedSamples), 8u);
  EXPECT_EQ(stream_seed(7, RandomStream::EvaluationLatents), 9u);
  EXPECT_EQ(stream_seed(7, RandomStream::EvaluationHashes), 10u);
  EXPECT_EQ(stream_seed(7, RandomStream::SampleHashes), 11u);
}

TEST(RandomStreams, TrainerDrawsTrainingNoiseFromItsOwnStreamNotTheInitStream) {
  ModelConfig model = ModelConfig::preset(32);
  model.ch = 8;
  model.z_dim = 20;
  TrainConfig train;
  train.batch = 2;
  train.seed = 3;
  GanTrainer trainer(model, train, torch::kCPU);
  const at::Tensor state = trainer.state().at("trainer.generator");
  auto training = at::make_generator<at::CPUGeneratorImpl>(stream_seed(3, RandomStream::Training));
  auto init = at::make_generator<at::CPUGeneratorImpl>(stream_seed(3, RandomStream::WeightInit));
  EXPECT_TRUE(at::equal(state, training.get_state()));
  EXPECT_FALSE(at::equal(state, init.get_state()));
}

}  // namespace
}  // namespace longgan::gan

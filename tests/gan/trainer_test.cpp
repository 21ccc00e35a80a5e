#include "gan/trainer.h"

#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <limits>
#include <map>
#include <cmath>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "gan/adam.h"
#include "gan/ema.h"
#include "gan/losses.h"

namespace longgan::gan {
namespace {

ModelConfig tiny_model(int64_t ch = 8) {
  ModelConfig config = ModelConfig::preset(32);
  config.ch = ch;
  config.z_dim = 20;
  config.shared_dim = 8;
  config.n_classes = 2;
  return config;
}

TrainConfig tiny_train() {
  TrainConfig config;
  config.batch = 2;
  config.ema = "decay";
  config.ema_start = 1;
  config.ema_decay = 0.5;
  config.seed = 3;
  return config;
}

// One more step of `a` equals that step of a trainer of another seed given a's state (defined below).
void expect_bit_exact_resume(GanTrainer& a, const TrainConfig& config);

GanTrainer::BatchSource fixed_batches(uint64_t seed) {
  auto generator = std::make_shared<at::Generator>(at::make_generator<at::CPUGeneratorImpl>(seed));
  return [generator] {
    const at::Tensor images = at::rand({2, 3, 32, 32}, *generator) * 2 - 1;
    const at::Tensor labels = at::randint(2, {2}, *generator, at::TensorOptions().dtype(at::kLong));
    return std::pair{images, labels};
  };
}

TEST(TrainConfig, JsonRoundTripAndErrors) {
  TrainConfig config;
  config.batch = 4;
  config.lr_g = 2e-4;
  config.d_steps = 3;
  config.seed = 42;
  config.bf16 = false;
  config.diffaug = "translation,color";
  const nlohmann::json json = to_json(config);
  EXPECT_EQ(json.size(), 18u);
  EXPECT_EQ(json.at("diffaug"), "translation,color");
  EXPECT_EQ(to_json(train_config_from_json(json)), json);
  EXPECT_EQ(train_config_from_json(nlohmann::json::object()).d_steps, 2);
  auto error_of = [](const nlohmann::json& j) -> std::string {
    try {
      train_config_from_json(j);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(error_of({{"d_steps", 0}}).find("d_steps"), std::string::npos);
  EXPECT_NE(error_of({{"accumulate", 0}}).find("accumulate"), std::string::npos);
  EXPECT_NE(error_of({{"init", "kaiming"}}).find("init"), std::string::npos);
  EXPECT_NE(error_of({{"init", 1}}).find("init"), std::string::npos);
  EXPECT_EQ(train_config_from_json(nlohmann::json::object()).diffaug, "");
  const std::string diffaug = error_of({{"diffaug", "color,blur"}});
  EXPECT_NE(diffaug.find("train config: diffaug"), std::string::npos) << diffaug;
  EXPECT_NE(diffaug.find("\"blur\""), std::string::npos) << diffaug;
  EXPECT_NE(error_of({{"diffaug", "color,color"}}).find("listed twice"), std::string::npos);
  EXPECT_NE(error_of({{"diffaug", true}}).find("diffaug"), std::string::npos);
  EXPECT_NE(error_of({{"lr_g", -1.0}}).find("lr_g"), std::string::npos);
  EXPECT_NE(error_of({{"batch", "big"}}).find("batch"), std::string::npos);
  EXPECT_NE(error_of({{"seed", -1}}).find("seed"), std::string::npos);
  EXPECT_NE(error_of({{"lr", 0.1}}).find("lr"), std::string::npos);
}

TEST(TrainConfig, EmaFormIsHalfLifeByDefaultAndImpliedByTheKeysOfOlderSections) {
  const TrainConfig defaults = train_config_from_json(nlohmann::json::object());
  EXPECT_EQ(defaults.ema, "half_life");
  EXPECT_EQ(defaults.ema_kimg, 500.0);
  EXPECT_EQ(defaults.ema_rampup, 0.05);
  // Sections written before the half-life form (checkpoints, config files) set ema_decay/ema_start.
  EXPECT_EQ(train_config_from_json({{"ema_decay", 0.9999}, {"ema_start", 1000}}).ema, "decay");
  EXPECT_EQ(train_config_from_json({{"ema_start", 10}}).ema, "decay");
  EXPECT_EQ(train_config_from_json({{"ema_kimg", 10.0}}).ema, "half_life");
  EXPECT_EQ(train_config_from_json({{"ema", "half_life"}, {"ema_decay", 0.5}}).ema, "half_life");
  EXPECT_EQ(with_implied_ema_form({{"batch", 4}}), nlohmann::json({{"batch", 4}}));
  EXPECT_THROW(train_config_from_json({{"ema_decay", 0.9}, {"ema_kimg", 10.0}}), std::invalid_argument);
}

TEST(TrainConfig, BadEmaValuesNameTheField) {
  auto error_of = [](TrainConfig config) -> std::string {
    try {
      config.validate();
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "";
  };
  const double nan = std::nan("");
  for (double kimg : {0.0, -1.0, nan, std::numeric_limits<double>::infinity()}) {
    TrainConfig config;
    config.ema_kimg = kimg;
    EXPECT_NE(error_of(config).find("train config: ema_kimg:"), std::string::npos) << kimg;
  }
  for (double rampup : {-0.05, nan, std::numeric_limits<double>::infinity()}) {
    TrainConfig config;
    config.ema_rampup = rampup;
    EXPECT_NE(error_of(config).find("train config: ema_rampup:"), std::string::npos) << rampup;
  }
  for (double decay : {-0.1, 1.5, nan}) {
    TrainConfig config;
    config.ema_decay = decay;
    EXPECT_NE(error_of(config).find("train config: ema_decay:"), std::string::npos) << decay;
  }
  TrainConfig form;
  form.ema = "stylegan";
  EXPECT_NE(error_of(form).find("train config: ema:"), std::string::npos);
  TrainConfig rampup_off;
  rampup_off.ema_rampup = 0;  // no ramp-up: valid
  EXPECT_EQ(error_of(rampup_off), "");
}

// G_ema's tensors as one list (parameters, then buffers), copied.
std::vector<at::Tensor> ema_tensors(GanTrainer& trainer) {
  std::vector<at::Tensor> result;
  for (const auto& t : trainer.g_ema()->parameters()) result.push_back(t.detach().clone());
  for (const auto& t : trainer.g_ema()->buffers()) result.push_back(t.detach().clone());
  return result;
}

// What update_ema makes of G_ema's `before` with G's current tensors: the averaged ones
// (parameters, running statistics) as decay * before + (1 - decay) * G, the rest copied.
std::vector<at::Tensor> expected_ema(GanTrainer& trainer, const std::vector<at::Tensor>& before, double decay) {
  std::vector<at::Tensor> result;
  size_t i = 0;
  for (const auto& t : trainer.generator()->parameters()) result.push_back(before[i++].clone().mul_(decay).add_(t, 1 - decay));
  for (const auto& item : trainer.generator()->named_buffers()) {
    const bool averaged = item.key().ends_with("running_mean") || item.key().ends_with("running_var");
    result.push_back(averaged ? before[i].clone().mul_(decay).add_(item.value(), 1 - decay) : item.value().clone());
    ++i;
  }
  return result;
}

void expect_equal_lists(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(at::equal(a[i], b[i])) << what << ": tensor " << i;
}

TEST(GanTrainer, DecayFormIsBigGansUpdateBitForBit) {
  TrainConfig config = tiny_train();
  config.ema = "decay";
  config.ema_decay = 0.9;
  config.ema_start = 2;
  GanTrainer trainer(tiny_model(), config, torch::kCPU);
  auto source = fixed_batches(1);
  for (int step = 1; step <= 3; ++step) {
    const auto before = ema_tensors(trainer);
    trainer.train_step(source);
    // Before ema_start G_ema copies G; from it on, decay 0.9 every step.
    expect_equal_lists(ema_tensors(trainer), expected_ema(trainer, before, step < 2 ? 0.0 : 0.9),
                       "step " + std::to_string(step));
  }
  EXPECT_EQ(trainer.images_seen(), 6);
}

TEST(GanTrainer, HalfLifeFormCountsGlobalBatchesOfImages) {
  TrainConfig config = tiny_train();
  config.ema = "half_life";
  config.ema_kimg = 0.01;  // 10 images
  config.ema_rampup = 0.5;
  config.accumulate = 2;   // a G step of 2 micro-batches of 2: 4 images
  GanTrainer trainer(tiny_model(), config, torch::kCPU);
  auto source = fixed_batches(1);
  for (int step = 1; step <= 4; ++step) {
    const int64_t seen = trainer.images_seen();
    EXPECT_EQ(seen, 4 * (step - 1));
    const auto before = ema_tensors(trainer);
    trainer.train_step(source);
    // Half-lives 0, 2, 4, then 6 images (0.5 x images seen; the 10-image cap is not reached).
    expect_equal_lists(ema_tensors(trainer), expected_ema(trainer, before, half_life_decay(0.01, 0.5, seen, 4)),
                       "step " + std::to_string(step));
  }
  EXPECT_EQ(trainer.state().at("trainer.images_seen").item<int64_t>(), 16);
  expect_bit_exact_resume(trainer, config);
}

TEST(GanTrainer, StateWithoutImagesSeenLoadsWithStepTimesGlobalBatch) {
  TrainConfig config = tiny_train();
  config.accumulate = 2;
  GanTrainer a(tiny_model(), config, torch::kCPU);
  a.train_step(fixed_batches(1));
  a.train_step(fixed_batches(2));
  auto old = a.state();
  old.erase("trainer.images_seen");  // as saved before the half-life EMA
  GanTrainer b(tiny_model(), config, torch::kCPU);
  b.load_state(old);
  EXPECT_EQ(b.step(), 2);
  EXPECT_EQ(b.images_seen(), 8);
}

TEST(GanTrainer, RendersGAndGEma) {
  TrainConfig config = tiny_train();
  config.ema_start = 100;  // G_ema copies G
  GanTrainer copy(tiny_model(), config, torch::kCPU);
  GanTrainer averaged(tiny_model(), tiny_train(), torch::kCPU);
  for (GanTrainer* t : {&copy, &averaged}) {
    t->train_step(fixed_batches(1));
    t->train_step(fixed_batches(2));
  }
  const at::Tensor z = torch::randn({2, tiny_model().z_dim});
  const at::Tensor labels = torch::tensor({0, 1}, at::kLong);
  auto render = [&](GanTrainer& t, Weights w) { return t.render(w, z, labels, at::make_generator<at::CPUGeneratorImpl>(1)); };
  EXPECT_TRUE(at::equal(render(copy, Weights::G), render(copy, Weights::GEma)));
  // G is the same in both runs (the EMA does not feed back into training); G_ema differs.
  EXPECT_TRUE(at::equal(render(copy, Weights::G), render(averaged, Weights::G)));
  EXPECT_FALSE(at::allclose(render(averaged, Weights::G), render(averaged, Weights::GEma)));
  EXPECT_EQ(parse_weights("g"), Weights::G);
  EXPECT_EQ(to_string(parse_weights("g_ema")), "g_ema");
  EXPECT_THROW(parse_weights("d"), std::invalid_argument);
}

TEST(FreezeGuard, RestoresRequiresGradAlsoAfterAnException) {
  torch::nn::Linear linear(3, 2);
  linear->bias.set_requires_grad(false);  // frozen before: stays frozen
  try {
    const FreezeGuard freeze(*linear);
    EXPECT_FALSE(linear->weight.requires_grad());
    EXPECT_FALSE(linear->bias.requires_grad());
    throw std::runtime_error("G step failed");
  } catch (const std::runtime_error&) {
  }
  EXPECT_TRUE(linear->weight.requires_grad());
  EXPECT_FALSE(linear->bias.requires_grad());
}

TEST(GanTrainer, DiscriminatorTrainableAfterAStep) {
  GanTrainer trainer(tiny_model(), tiny_train(), torch::kCPU);
  trainer.train_step(fixed_batches(1));
  for (const auto& param : trainer.discriminator()->parameters()) EXPECT_TRUE(param.requires_grad());
}

TEST(GanTrainer, EmaGridsRepeatAndLeaveTheTrainingStreamAlone) {
  ModelConfig model = tiny_model();
  model.attention = attention::parse_attention_spec("smyrf:hashes=2,q_cluster=64,k_cluster=16");
  GanTrainer a(model, tiny_train(), torch::kCPU);
  GanTrainer b(model, tiny_train(), torch::kCPU);
  const at::Tensor z = torch::randn({2, model.z_dim});
  const at::Tensor labels = torch::tensor({0, 1}, at::kLong);
  const at::Tensor first = a.render(Weights::GEma, z, labels, at::make_generator<at::CPUGeneratorImpl>(5));
  const at::Tensor second = a.render(Weights::GEma, z, labels, at::make_generator<at::CPUGeneratorImpl>(5));
  EXPECT_TRUE(at::equal(first, second));
  // Rendering (a) or not (b) gives the same training step.
  EXPECT_EQ(a.train_step(fixed_batches(1)), b.train_step(fixed_batches(1)));
}

TEST(GanTrainer, AccumulateDrawsKMicroBatchesPerDStep) {
  TrainConfig config = tiny_train();
  config.accumulate = 2;
  config.d_steps = 2;
  GanTrainer trainer(tiny_model(), config, torch::kCPU);
  int calls = 0;
  auto inner = fixed_batches(1);
  const auto losses = trainer.train_step([&] {
    ++calls;
    return inner();
  });
  EXPECT_EQ(calls, 4);
  EXPECT_TRUE(std::isfinite(losses.at("g_loss")));
  // accumulate = 1 is the plain step: the same as the default config's.
  GanTrainer a(tiny_model(), tiny_train(), torch::kCPU);
  TrainConfig one = tiny_train();
  one.accumulate = 1;
  GanTrainer b(tiny_model(), one, torch::kCPU);
  EXPECT_EQ(a.train_step(fixed_batches(1)), b.train_step(fixed_batches(1)));
}

// The flattened gradients of D and G at each call of the data-parallel hook of one train step
// (the hook runs just before each optimizer step: d_steps calls for D, then one for G).
std::vector<at::Tensor> hook_gradients(const TrainConfig& config, const std::map<std::string, at::Tensor>& state) {
  GanTrainer trainer(tiny_model(), config, torch::kCPU);
  trainer.load_state(state);
  std::vector<at::Tensor> gradients;
  trainer.set_data_parallel({0, 1, [&](torch::nn::Module& module) {
                               std::vector<at::Tensor> parts;
                               for (const auto& p : module.parameters()) parts.push_back(p.grad().reshape({-1}).clone());
                               gradients.push_back(at::cat(parts));
                             }});
  trainer.train_step(fixed_batches(1));
  return gradients;
}

TEST(GanTrainer, AccumulatedGradientsAreTheMeanOfTheMicroBatchGradients) {
  // K = 2 micro-batches of b = 2 against plain steps on the same micro-batches. The D learning rate
  // is so small that D's weights do not change in float (the plain runs take extra D steps to reach
  // the same random draws), so the K = 2 gradient of each network must be the mean of the two
  // plain gradients. D has no batch statistics: that is the gradient of the loss over all K * b
  // samples. G's batch norm normalises each micro-batch with its own statistics, as BigGAN's
  // accumulation does (docs/DISTRIBUTED.md: Gradient accumulation).
  TrainConfig config = tiny_train();
  config.lr_d = 1e-30;
  config.ortho = 0;
  const auto start = GanTrainer(tiny_model(), config, torch::kCPU).state();
  TrainConfig accumulated = config;
  accumulated.accumulate = 2;
  accumulated.d_steps = 1;
  const auto k2 = hook_gradients(accumulated, start);  // D (micro-batches 1, 2), G (micro-batches 3, 4)
  ASSERT_EQ(k2.size(), 2u);
  TrainConfig plain = config;
  plain.d_steps = 2;
  const auto two = hook_gradients(plain, start);  // D: 1, D: 2, G: 3
  plain.d_steps = 3;
  const auto three = hook_gradients(plain, start);  // D: 1, 2, 3, G: 4
  ASSERT_EQ(two.size(), 3u);
  ASSERT_EQ(three.size(), 4u);
  EXPECT_TRUE(at::equal(two[0], three[0]));  // the plain runs agree on what they share
  const at::Tensor d_mean = (two[0] + two[1]) / 2;
  const at::Tensor g_mean = (two[2] + three[3]) / 2;
  EXPECT_TRUE(at::allclose(k2[0], d_mean, 1e-4, 1e-7)) << (k2[0] - d_mean).abs().max().item<double>();
  EXPECT_TRUE(at::allclose(k2[1], g_mean, 1e-4, 1e-7)) << (k2[1] - g_mean).abs().max().item<double>();
  // Not the sum, and not one micro-batch's alone.
  EXPECT_FALSE(at::allclose(k2[0], two[0] + two[1], 1e-3, 1e-6));
  EXPECT_FALSE(at::allclose(k2[1], two[2], 1e-3, 1e-6));
}

TEST(GanTrainer, RenderingLeavesGEmaAlone) {
  // Standing statistics are re-estimated on the sampling copy only.
  GanTrainer trainer(tiny_model(), tiny_train(), torch::kCPU);
  EXPECT_EQ(trainer.sampling().stats, SamplingStats::Running);  // the default
  trainer.set_sampling({SamplingStats::Standing, 4, 2});
  trainer.train_step(fixed_batches(1));
  std::vector<at::Tensor> before;
  for (const auto& t : trainer.g_ema()->buffers()) before.push_back(t.clone());
  for (const auto& t : trainer.g_ema()->parameters()) before.push_back(t.clone());
  const at::Tensor z = torch::randn({2, tiny_model().z_dim});
  const at::Tensor labels = torch::tensor({0, 1}, at::kLong);
  const at::Tensor standing = trainer.render(Weights::GEma, z, labels, at::make_generator<at::CPUGeneratorImpl>(1));
  size_t i = 0;
  for (const auto& t : trainer.g_ema()->buffers()) EXPECT_TRUE(at::equal(t, before[i++]));
  for (const auto& t : trainer.g_ema()->parameters()) EXPECT_TRUE(at::equal(t, before[i++]));
  trainer.set_sampling({SamplingStats::Running, 1, 2});
  const at::Tensor running = trainer.render(Weights::GEma, z, labels, at::make_generator<at::CPUGeneratorImpl>(1));
  EXPECT_FALSE(at::allclose(standing, running));
}

TEST(GanTrainer, StepReturnsLossesAndCountsSteps) {
  GanTrainer trainer(tiny_model(), tiny_train(), torch::kCPU);
  const auto losses = trainer.train_step(fixed_batches(1));
  for (const char* key : {"d_loss_real", "d_loss_fake", "g_loss"}) {
    ASSERT_TRUE(losses.contains(key)) << key;
    EXPECT_TRUE(std::isfinite(losses.at(key))) << key;
  }
  EXPECT_EQ(trainer.step(), 1);
}

TEST(GanTrainer, TrainsAStepWithoutSharedEmbedding) {
  ModelConfig model = tiny_model();
  model.hierarchical_z = false;
  model.shared_embedding = false;
  model.sn_eps = 1e-6;
  GanTrainer trainer(model, tiny_train(), torch::kCPU);
  const auto before = trainer.state();
  EXPECT_FALSE(before.contains("G.shared.weight"));
  EXPECT_FALSE(before.contains("G.blocks.0.cbn1.gain.u"));
  ASSERT_TRUE(before.contains("G.blocks.0.cbn1.gain.weight"));
  EXPECT_EQ(before.at("G.blocks.0.cbn1.gain.weight").sizes(), (std::vector<int64_t>{2, 32}));  // 2 classes, 4ch
  EXPECT_TRUE(before.contains("optim_G.blocks.0.cbn1.bias.weight.exp_avg"));
  const auto losses = trainer.train_step(fixed_batches(1));
  for (const auto& [key, value] : losses) EXPECT_TRUE(std::isfinite(value)) << key;
  const auto after = trainer.state();
  EXPECT_FALSE(at::equal(before.at("G.blocks.0.cbn1.gain.weight"), after.at("G.blocks.0.cbn1.gain.weight")));
  // The tables checkpoint and load like any other tensor.
  GanTrainer restored(model, tiny_train(), torch::kCPU);
  restored.load_state(after);
  EXPECT_TRUE(at::equal(restored.state().at("G.blocks.2.cbn2.bias.weight"), after.at("G.blocks.2.cbn2.bias.weight")));
}

TEST(GanTrainer, SameSeedSameResultAndGlobalGeneratorUntouched) {
  torch::manual_seed(9);
  const at::Tensor expected = torch::randn({3});
  torch::manual_seed(9);
  GanTrainer a(tiny_model(), tiny_train(), torch::kCPU);
  GanTrainer b(tiny_model(), tiny_train(), torch::kCPU);
  EXPECT_TRUE(at::equal(torch::randn({3}), expected));
  EXPECT_EQ(a.train_step(fixed_batches(1)), b.train_step(fixed_batches(1)));
}

// A trainer made with another seed that loads a.state() takes the same next step as `a`, to the bit.
void expect_bit_exact_resume(GanTrainer& a, const TrainConfig& config) {
  TrainConfig other_seed = config;
  other_seed.seed = 77;
  GanTrainer b(tiny_model(), other_seed, torch::kCPU);
  b.load_state(a.state());
  EXPECT_EQ(b.step(), a.step());
  auto source_a = fixed_batches(5);
  auto source_b = fixed_batches(5);
  EXPECT_EQ(a.train_step(source_a), b.train_step(source_b));
  const auto after_a = a.state();
  const auto after_b = b.state();
  ASSERT_EQ(after_a.size(), after_b.size());
  for (const auto& [name, tensor] : after_a) EXPECT_TRUE(at::equal(tensor, after_b.at(name))) << name;
}

TEST(GanTrainer, StateRoundTripGivesBitExactNextStep) {
  GanTrainer a(tiny_model(), tiny_train(), torch::kCPU);
  auto source = fixed_batches(1);
  a.train_step(source);
  a.train_step(source);
  const auto saved = a.state();
  for (const char* prefix : {"G.", "G_ema.", "D.", "optim_G.", "optim_D.", "trainer."}) {
    EXPECT_TRUE(std::any_of(saved.begin(), saved.end(), [&](const auto& kv) { return kv.first.starts_with(prefix); }))
        << prefix;
  }
  EXPECT_TRUE(saved.contains("G.blocks.0.conv1.u"));
  EXPECT_TRUE(saved.contains("G.out_bn.running_mean"));
  EXPECT_TRUE(saved.contains("optim_D.linear.weight.exp_avg_sq"));
  EXPECT_EQ(saved.at("trainer.step").item<int64_t>(), 2);

  expect_bit_exact_resume(a, tiny_train());
}

TEST(GanTrainer, DiffAugmentStepIsFiniteChangesTrainingAndResumesBitExact) {
  TrainConfig config = tiny_train();
  config.diffaug = "color,translation,cutout";
  GanTrainer a(tiny_model(), config, torch::kCPU);
  auto source = fixed_batches(1);
  const auto losses = a.train_step(source);
  for (const auto& [key, value] : losses) EXPECT_TRUE(std::isfinite(value)) << key;
  GanTrainer plain(tiny_model(), tiny_train(), torch::kCPU);
  EXPECT_NE(plain.train_step(fixed_batches(1)), losses);  // the augmentation reaches D
  EXPECT_FALSE(at::equal(plain.state().at("trainer.generator"), a.state().at("trainer.generator")));

  expect_bit_exact_resume(a, config);
}

TEST(GanTrainer, DiffAugmentNoneIsThePlainStep) {
  TrainConfig none = tiny_train();
  none.diffaug = "none";
  GanTrainer a(tiny_model(), tiny_train(), torch::kCPU);
  GanTrainer b(tiny_model(), none, torch::kCPU);
  EXPECT_EQ(a.train_step(fixed_batches(1)), b.train_step(fixed_batches(1)));
  EXPECT_TRUE(at::equal(a.state().at("trainer.generator"), b.state().at("trainer.generator")));
}

TEST(GanTrainer, LoadStateListsMissingUnexpectedAndMismatchedNames) {
  GanTrainer small(tiny_model(8), tiny_train(), torch::kCPU);
  GanTrainer wide(tiny_model(16), tiny_train(), torch::kCPU);
  auto state = wide.state();
  state["extra.thing"] = torch::zeros({1});
  state.erase("D.linear.bias");
  try {
    small.load_state(state);
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("shape mismatch G.linear.weight: expected [512, 5]"), std::string::npos) << message;
    EXPECT_NE(message.find("got [1024, 5]"), std::string::npos) << message;
    EXPECT_NE(message.find("missing D.linear.bias [1]"), std::string::npos) << message;
    EXPECT_NE(message.find("unexpected extra.thing [1]"), std::string::npos) << message;
  }
  EXPECT_EQ(small.step(), 0);
}

TEST(GanTrainer, SetAttentionReachesEveryModel) {
  GanTrainer trainer(tiny_model(), tiny_train(), torch::kCPU);
  const attention::AttentionSpec spec = attention::parse_attention_spec("dense");
  trainer.set_attention(spec);
  for (auto& [i, block] : trainer.generator()->attention) EXPECT_EQ(block->attention_spec(), spec);
  for (auto& [i, block] : trainer.g_ema()->attention) EXPECT_EQ(block->attention_spec(), spec);
  for (auto& [i, block] : trainer.discriminator()->attention) EXPECT_EQ(block->attention_spec(), spec);
}

TEST(Discriminator, FewAdamStepsLowerHingeLossOnFixedBatch) {
  torch::manual_seed(0);
  const ModelConfig config = tiny_model();
  Discriminator d(config);
  std::vector<std::pair<std::string, at::Tensor>> params;
  for (const auto& item : d->named_parameters()) params.emplace_back(item.key(), item.value());
  Adam adam(params, AdamOptions{4e-4, 0.0, 0.999, 1e-6});
  const at::Tensor real = torch::rand({4, 3, 32, 32}) * 2 - 1;
  const at::Tensor fake = torch::randn({4, 3, 32, 32}).clamp(-1, 1);
  const at::Tensor labels = torch::tensor({0, 1, 0, 1}, at::kLong);
  auto loss = [&] {
    const at::Tensor logits = d->forward(at::cat({real, fake}), at::cat({labels, labels}));
    const HingeDLoss l = hinge_d_loss(logits.slice(0, 0, 4), logits.slice(0, 4, 8));
    return l.real + l.fake;
  };
  d->eval();
  const double before = loss().item<double>();
  d->train();
  for (int i = 0; i < 5; ++i) {
    adam.zero_grad();
    loss().backward();
    adam.step();
  }
  d->eval();
  const double after = loss().item<double>();
  std::printf("D hinge loss on the fixed batch: %.6f -> %.6f\n", before, after);
  EXPECT_LT(after, before - 0.05);
}

}  // namespace
}  // namespace longgan::gan

// longgan import/export biggan-pytorch against BigGAN-PyTorch's own outputs (tests/fixtures/biggan,
// made by scripts/make_biggan_fixture.py): the imported G renders BigGAN-PyTorch's images within
// 1e-4, D gives its logits within 1e-4 relative, export gives back its tensors exactly, and
// files that do not fit the flags are refused naming the tensor, its shape and the file.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "app/checkpoint_generator.h"
#include "checkpoints/checkpoint.h"
#include "checkpoints/torch_file.h"
#include "gan/adam.h"
#include "gan/biggan/biggan_tensors.h"
#include "gan/discriminator.h"
#include "gan/generator.h"
#include "gan/module_state.h"
#include "gan/trainer.h"
#include "tests/app/cli_test_util.h"

namespace longgan::app {
namespace {
namespace fs = std::filesystem;
using testing::fresh_dir;
using testing::run_longgan;

fs::path fixture(const std::string& name) {
  const char* source = std::getenv("LONGGAN_SOURCE_DIR");
  return fs::path(source ? source : ".") / "tests" / "fixtures" / "biggan" / name;
}

nlohmann::json fixture_flags(const std::string& name) {
  std::ifstream file(fixture(name) / "flags.json");
  return nlohmann::json::parse(file);
}

double max_relative(const at::Tensor& a, const at::Tensor& b) {
  return ((a - b).abs() / b.abs().clamp_min(1e-12)).max().item<double>();
}

class BigGanFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(BigGanFixture, ImportedNetworksComputeBigGanPyTorchs) {
  const std::string name = GetParam();
  const fs::path run = fresh_dir("biggan_import_" + name) / "run";
  const auto imported = run_longgan({"import", "biggan-pytorch", fixture(name).string(), "--out", run.string()});
  ASSERT_EQ(imported.exit_code, 0) << imported.output;
  EXPECT_NE(imported.output.find("sv0 dropped"), std::string::npos) << imported.output;

  const checkpoints::Checkpoint checkpoint = checkpoints::read_checkpoint(run);
  EXPECT_EQ(checkpoint.step, fixture_flags(name)["config"].value("itr", checkpoint.step));
  const gan::ModelConfig model = gan::model_config_from_json(checkpoint.manifest["config"]["model"]);
  EXPECT_EQ(model.z_dim, fixture_flags(name)["derived"]["G.dim_z"].get<int64_t>());
  EXPECT_EQ(model.spectral_norm, "biggan");

  const at::Tensor z = checkpoints::read_tensor_file(fixture(name) / "z.pth");
  const at::Tensor y = checkpoints::read_tensor_file(fixture(name) / "y.pth");
  const at::Tensor images = checkpoints::read_tensor_file(fixture(name) / "G_images.pth");
  const at::Tensor logits = checkpoints::read_tensor_file(fixture(name) / "D_logits.pth");

  // G_ema (a copy of G in the fixture) as sample and metrics render it: G.eval()'s statistics.
  CheckpointGenerator generator(checkpoint, "cpu");
  const at::Tensor rendered = generator.generate(z, y);
  const double image_error = (rendered - images).abs().max().item<double>();
  EXPECT_LE(image_error, 1e-4) << name;
  RecordProperty("max_abs_image_difference", std::to_string(image_error));

  gan::Discriminator d(model);
  gan::load_module_state(*d, checkpoint.files.at("D"), "D");
  d->eval();
  torch::NoGradGuard no_grad;
  const at::Tensor d_logits = d->forward(images, y);
  EXPECT_LE(max_relative(d_logits, logits.squeeze(1)), 1e-4) << d_logits << logits;
}

TEST_P(BigGanFixture, ExportGivesBackBigGanPyTorchsTensorsAndImportsBitExact) {
  const std::string name = GetParam();
  const fs::path dir = fresh_dir("biggan_export_" + name);
  ASSERT_EQ(run_longgan({"import", "biggan-pytorch", fixture(name).string(), "--out", (dir / "run").string()}).exit_code, 0);
  const auto exported = run_longgan({"export", "biggan-pytorch", (dir / "run").string(), "--out", (dir / "out").string()});
  ASSERT_EQ(exported.exit_code, 0) << exported.output;

  // Every tensor of BigGAN-PyTorch's files comes back: same names, shapes and values. The sv0 are
  // recomputed as BigGAN's eval estimates sigma from the stored u; the fixture's were logged at its
  // last training pass, a power step earlier (D's u are 3 steps from converged): within 10%.
  for (const std::string stem : {"G", "G_ema", "D"}) {
    std::map<std::string, at::Tensor> original, back;
    for (const auto& [key, tensor] : checkpoints::read_state_dict(fixture(name) / (stem + ".pth"))) original[key] = tensor;
    for (const auto& [key, tensor] : checkpoints::read_state_dict(dir / "out" / (stem + ".pth"))) back[key] = tensor;
    ASSERT_EQ(original.size(), back.size()) << stem;
    for (const auto& [key, tensor] : original) {
      ASSERT_TRUE(back.contains(key)) << stem << " " << key;
      EXPECT_EQ(back[key].sizes(), tensor.sizes()) << key;
      if (key.ends_with("sv0")) {
        EXPECT_NEAR(back[key].item<double>(), tensor.item<double>(), 0.1 * tensor.item<double>()) << key;
      } else {
        EXPECT_TRUE(at::equal(back[key], tensor)) << stem << " " << key;
      }
    }
  }

  // The exported train.py flags, passed as written with the dataset's resolution and classes (as
  // export says), import the exported files to the same run state.
  const nlohmann::json derived = fixture_flags(name)["dataset_derived"];
  EXPECT_NE(exported.output.find("import these files back with: longgan import biggan-pytorch " + (dir / "out").string() +
                                 " --resolution " + std::to_string(derived["resolution"].get<int64_t>()) +
                                 " --n_classes " + std::to_string(derived["n_classes"].get<int64_t>()) + " $(cat "),
            std::string::npos)
      << exported.output;
  std::ifstream flags_file(dir / "out" / "train_py_flags.txt");
  std::vector<std::string> args{"import", "biggan-pytorch", (dir / "out").string(), "--out", (dir / "again").string(),
                                "--resolution", std::to_string(derived["resolution"].get<int64_t>()), "--n_classes",
                                std::to_string(derived["n_classes"].get<int64_t>())};
  for (std::string word; flags_file >> word;) {
    EXPECT_NE(word, "--resolution");  // train.py takes these from --dataset: not its flags
    EXPECT_NE(word, "--n_classes");
    args.push_back(word);
  }
  const auto again = run_longgan(args);
  ASSERT_EQ(again.exit_code, 0) << again.output;
  const auto first = checkpoints::read_checkpoint(dir / "run");
  const auto second = checkpoints::read_checkpoint(dir / "again");
  for (const std::string stem : {"G", "G_ema", "D"}) {
    for (const auto& [key, tensor] : first.files.at(stem)) {
      EXPECT_TRUE(at::equal(second.files.at(stem).at(key), tensor)) << stem << " " << key;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(BigGanImport, BigGanFixture,
                         ::testing::Values("res128_gattn64", "res256_gattn128", "res32_optim"));

nlohmann::json optim_expected() {
  std::ifstream file(fixture("res32_optim") / "optim_expected.json");
  return nlohmann::json::parse(file);
}

// [sum, sum of |x|] in double, as optim_expected.json holds them.
std::pair<double, double> sums(const at::Tensor& tensor) {
  const at::Tensor values = tensor.to(at::kDouble);
  return {values.sum().item<double>(), values.abs().sum().item<double>()};
}

void expect_sums(const at::Tensor& tensor, const nlohmann::json& expected, double tolerance, const std::string& what) {
  const auto [sum, abs_sum] = sums(tensor);
  EXPECT_NEAR(abs_sum, expected[1].get<double>(), tolerance * expected[1].get<double>()) << what;
  EXPECT_NEAR(sum, expected[0].get<double>(), tolerance * expected[1].get<double>()) << what;
}

// The optimizer fixture's G_optim.pth (torch 2: zip, tensor steps) and D_optim.pth (legacy format,
// int steps) become the run's Adam state: every parameter's moments and step as BigGAN-PyTorch's
// named_parameters() name them (the expectations do not depend on the files' order), and
// LongGAN's Adam continuing from them makes torch.optim.Adam's next update.
TEST(BigGanImport, ImportsBigGanPyTorchsAdamStateAndContinuesIt) {
  const fs::path run = fresh_dir("biggan_import_optim") / "run";
  const auto imported = run_longgan({"import", "biggan-pytorch", fixture("res32_optim").string(), "--out", run.string()});
  ASSERT_EQ(imported.exit_code, 0) << imported.output;
  EXPECT_NE(imported.output.find("G_optim.pth: Adam state of 42 parameters (up to 3 steps)"), std::string::npos)
      << imported.output;
  EXPECT_NE(imported.output.find("D_optim.pth: Adam state of 23 parameters (up to 3 steps)"), std::string::npos)
      << imported.output;

  const checkpoints::Checkpoint checkpoint = checkpoints::read_checkpoint(run);
  const nlohmann::json expected = optim_expected();
  const gan::ModelConfig model = gan::model_config_from_json(checkpoint.manifest["config"]["model"]);
  const gan::TrainConfig train = gan::train_config_from_json(checkpoint.manifest["config"]["train"]);
  EXPECT_DOUBLE_EQ(train.lr_g, expected["G"]["lr"].get<double>());
  EXPECT_DOUBLE_EQ(train.lr_d, expected["D"]["lr"].get<double>());
  EXPECT_DOUBLE_EQ(train.beta1, expected["G"]["betas"][0].get<double>());
  EXPECT_DOUBLE_EQ(train.beta2, expected["G"]["betas"][1].get<double>());
  EXPECT_DOUBLE_EQ(train.eps, expected["G"]["eps"].get<double>());
  EXPECT_EQ(train.d_steps, 1);  // the fixture's --num_D_steps, from state_dict.pth's config

  for (const std::string network : {"G", "D"}) {
    const auto& state = checkpoint.files.at("optim_" + network);
    const nlohmann::json& params = expected[network]["params"];
    std::shared_ptr<torch::nn::Module> module;
    if (network == "G") {
      module = gan::Generator(model).ptr();
    } else {
      module = gan::Discriminator(model).ptr();
    }
    gan::load_module_state(*module, checkpoint.files.at(network), network);
    const auto parameters = module->named_parameters();
    ASSERT_EQ(parameters.size(), params.size()) << network;
    for (const auto& parameter : parameters) {
      const std::string& name = parameter.key();
      const nlohmann::json& entry = params.at(gan::biggan_tensor_name(name));
      EXPECT_EQ(state.at(name + ".step").item<int64_t>(), entry["step"].get<int64_t>()) << network << " " << name;
      expect_sums(state.at(name + ".exp_avg"), entry["exp_avg"], 1e-6, network + " exp_avg " + name);
      expect_sums(state.at(name + ".exp_avg_sq"), entry["exp_avg_sq"], 1e-6, network + " exp_avg_sq " + name);
    }

    // One step of LongGAN's Adam from the imported state, every gradient equal to its parameter.
    const double lr = network == "G" ? train.lr_g : train.lr_d;
    std::vector<std::pair<std::string, at::Tensor>> named;
    std::map<std::string, at::Tensor> before;
    for (const auto& parameter : parameters) {
      named.emplace_back(parameter.key(), parameter.value());
      before[parameter.key()] = parameter.value().detach().clone();
      parameter.value().mutable_grad() = parameter.value().detach().clone();
    }
    gan::Adam adam(named, gan::AdamOptions{lr, train.beta1, train.beta2, train.eps});
    {
      torch::NoGradGuard no_grad;
      for (auto& [key, tensor] : adam.state()) tensor.copy_(state.at(key));
    }
    adam.step();
    for (const auto& parameter : parameters) {
      const at::Tensor update = (parameter.value().detach() - before.at(parameter.key())) / lr;
      expect_sums(update, params.at(gan::biggan_tensor_name(parameter.key()))["update"], 1e-4,
                  network + " update " + parameter.key());
    }
  }
}

// A copy of the 256 fixture's G.pth, changed by `edit`, in a weights folder of its own (with its D.pth
// and state_dict.pth).
fs::path edited_weights(const std::string& test, const std::function<void(checkpoints::NamedTensors&)>& edit) {
  const fs::path dir = fresh_dir("biggan_bad_" + test) / "weights";
  fs::create_directories(dir);
  checkpoints::NamedTensors tensors = checkpoints::read_state_dict(fixture("res256_gattn128") / "G.pth");
  edit(tensors);
  checkpoints::write_state_dict(dir / "G.pth", tensors);
  fs::copy_file(fixture("res256_gattn128") / "state_dict.pth", dir / "state_dict.pth");
  fs::copy_file(fixture("res256_gattn128") / "D.pth", dir / "D.pth");  // with D, D_attn is checked too
  return dir;
}

void expect_refused(const fs::path& weights, const std::vector<std::string>& expected,
                    const std::vector<std::string>& more = {}) {
  const fs::path out = weights.parent_path() / "run";
  std::vector<std::string> args{"import", "biggan-pytorch", weights.string(), "--out", out.string()};
  args.insert(args.end(), more.begin(), more.end());
  const auto result = run_longgan(args);
  EXPECT_EQ(result.exit_code, 2) << result.output;
  for (const std::string& text : expected) EXPECT_NE(result.output.find(text), std::string::npos) << result.output;
  EXPECT_FALSE(fs::exists(out)) << "a refused import wrote " << out;
}

TEST(BigGanImport, RefusesFilesThatDoNotFitNamingTensorShapeAndFile) {
  const fs::path missing = edited_weights("missing", [](checkpoints::NamedTensors& t) {
    std::erase_if(t, [](const auto& item) { return item.first == "blocks.2.0.conv1.weight"; });
  });
  expect_refused(missing, {(missing / "G.pth").string(), "missing blocks.2.0.conv1.weight [32, 32, 3, 3]"});

  const fs::path extra = edited_weights("extra", [](checkpoints::NamedTensors& t) {
    t.emplace_back("blocks.9.0.conv1.weight", at::zeros({2, 2}));
  });
  expect_refused(extra, {(extra / "G.pth").string(), "unexpected blocks.9.0.conv1.weight [2, 2]"});

  const fs::path misshapen = edited_weights("misshapen", [](checkpoints::NamedTensors& t) {
    for (auto& [key, tensor] : t) {
      if (key == "blocks.4.1.gamma") tensor = at::zeros({3});
    }
  });
  expect_refused(misshapen, {"blocks.4.1.gamma has shape [3], this model expects []"});

  // Flags that describe another model: every tensor of the other width is named.
  const fs::path fine = edited_weights("flags", [](checkpoints::NamedTensors&) {});
  expect_refused(fine, {"G.pth", "blocks.4.1.g.weight has shape [4, 8, 1, 1], this model expects [8, 16, 1, 1]"},
                 {"--G_ch", "8", "--D_ch", "8"});
  expect_refused(fine, {"BigGAN-PyTorch flag D_ch: 8 differs from G_ch 4"}, {"--D_ch", "8"});
  expect_refused(fine, {"BigGAN-PyTorch flag D_attn: '4' puts attention after 2 D blocks"}, {"--D_attn", "4"});

  // Not a torch.save file; no G in the folder; an existing --out.
  const fs::path junk = fresh_dir("biggan_bad_junk") / "weights";
  fs::create_directories(junk);
  std::ofstream(junk / "G.pth") << "not a checkpoint";
  expect_refused(junk, {(junk / "G.pth").string()});
  const fs::path empty = fresh_dir("biggan_bad_empty") / "weights";
  fs::create_directories(empty);
  expect_refused(empty, {"has no G.pth", "--suffix _copy0"});
  const auto exists = run_longgan({"import", "biggan-pytorch", fixture("res128_gattn64").string(), "--out",
                                   fixture("res128_gattn64").string()});
  EXPECT_EQ(exists.exit_code, 2);
  EXPECT_NE(exists.output.find("choose another --out"), std::string::npos) << exists.output;
}

TEST(BigGanImport, RefusesAnOptimizerFileOfOtherWeights) {
  const fs::path weights = fresh_dir("biggan_bad_optim") / "weights";
  fs::create_directories(weights);
  for (const std::string file : {"G.pth", "D.pth", "state_dict.pth"}) {
    fs::copy_file(fixture("res128_gattn64") / file, weights / file);
  }
  fs::copy_file(fixture("res32_optim") / "G_optim.pth", weights / "G_optim.pth");
  expect_refused(weights, {(weights / "G_optim.pth").string(), "holds Adam state for 42 parameters, the weights have",
                           "BigGAN-PyTorch saves G.optim as G_optim.pth"});
}

TEST(BigGanImport, SampleTakesLatentsAndLabelsFromTorchSaveFiles) {
  const fs::path dir = fresh_dir("biggan_sample_z");
  const fs::path z = fixture("res128_gattn64") / "z.pth", y = fixture("res128_gattn64") / "y.pth";
  ASSERT_EQ(run_longgan({"import", "biggan-pytorch", fixture("res128_gattn64").string(), "--out", (dir / "run").string()}).exit_code, 0);
  const auto sampled = run_longgan({"sample", "--checkpoint", (dir / "run").string(), "--z", z.string(), "--labels",
                                    y.string(), "--out", (dir / "grid.png").string()});
  ASSERT_EQ(sampled.exit_code, 0) << sampled.output;
  std::ifstream sidecar(dir / "grid.png.json");
  const nlohmann::json record = nlohmann::json::parse(sidecar);
  EXPECT_EQ(record["n"], 4);
  EXPECT_EQ(record["z_file"], fs::absolute(z).string());
  EXPECT_FALSE(record.contains("seed"));

  const auto wrong = run_longgan({"sample", "--checkpoint", (dir / "run").string(), "--z", y.string(), "--out",
                                  (dir / "bad.png").string()});
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_NE(wrong.output.find("this checkpoint takes latents [N, 24]"), std::string::npos) << wrong.output;
  const auto both = run_longgan({"sample", "--checkpoint", (dir / "run").string(), "--z", z.string(), "--seed", "3",
                                 "--out", (dir / "bad.png").string()});
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_NE(both.output.find("--z gives the latents: drop --seed"), std::string::npos) << both.output;
  EXPECT_FALSE(fs::exists(dir / "bad.png"));
}

TEST(BigGanImport, FineTunesWithDAndRefusesWithoutIt) {
  const fs::path dir = fresh_dir("biggan_fine_tune");
  const std::string data = (dir / "synthetic32.lgd").string();
  ASSERT_EQ(run_longgan({"prepare", "--synthetic", "8", "--resolution", "32", "--classes", "5", "--output", data}).exit_code, 0);
  // With D and the optimizer files: the whole trainer state is there; one more step from the
  // imported iteration 43, Adam continuing from BigGAN-PyTorch's moments (step 3 -> 4).
  ASSERT_EQ(run_longgan({"import", "biggan-pytorch", fixture("res32_optim").string(), "--out", (dir / "run").string()}).exit_code, 0);
  const auto tuned = run_longgan({"train", "--out", (dir / "run").string(), "--resume", "--data", data, "--steps", "44",
                                  "--batch", "2", "--allow-config-change", "--device", "cpu"});
  ASSERT_EQ(tuned.exit_code, 0) << tuned.output;
  const checkpoints::Checkpoint tuned_checkpoint = checkpoints::read_checkpoint(dir / "run");
  EXPECT_EQ(tuned_checkpoint.step, 44);
  EXPECT_EQ(tuned_checkpoint.files.at("optim_G").at("shared.weight.step").item<int64_t>(), 4);

  // G alone (a TF Hub port): sampling works, training says why not; no D attention is listed.
  const auto g_only = run_longgan({"import", "biggan-pytorch", (fixture("res32_optim") / "G.pth").string(), "--G_ch", "4",
                                   "--D_ch", "4", "--dim_z", "24", "--hier", "--G_shared", "--shared_dim", "16",
                                   "--n_classes", "5", "--resolution", "32", "--G_attn", "32", "--SN_eps", "1e-6",
                                   "--out", (dir / "g_only").string()});
  ASSERT_EQ(g_only.exit_code, 0) << g_only.output;
  EXPECT_NE(g_only.output.find("no D: the run samples and scores"), std::string::npos) << g_only.output;
  const auto info = run_longgan({"info", (dir / "g_only").string()});
  EXPECT_EQ(info.output.find("D at"), std::string::npos) << info.output;
  const auto refused = run_longgan({"train", "--out", (dir / "g_only").string(), "--resume", "--data", data, "--batch", "2",
                                    "--allow-config-change", "--device", "cpu"});
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_NE(refused.output.find("has no discriminator"), std::string::npos) << refused.output;
}

}  // namespace
}  // namespace longgan::app

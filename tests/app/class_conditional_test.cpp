// Labelled data end to end: `prepare --synthetic N --classes K`, the warning of `train` when the
// labels would go unused, and `sample --class K` / `--per-class` on tiny 32x32 models (ch 8, CPU).
#include <gtest/gtest.h>

#include "app/checkpoint_generator.h"
#include "checkpoints/atomic_file.h"
#include "checkpoints/checkpoint.h"
#include "datasets/packed_format.h"
#include "tests/app/cli_test_util.h"

namespace longgan::app::testing {
namespace {
namespace fs = std::filesystem;

// `count` synthetic 32x32 images in `dir`/data.lgd, with --classes `classes` unless it is empty.
fs::path synthetic_data(const fs::path& dir, const std::string& classes, int count = 24) {
  const fs::path path = dir / "data.lgd";
  std::vector<std::string> args{"prepare", "--synthetic", std::to_string(count), "--resolution", "32", "--output",
                                path.string()};
  if (!classes.empty()) args = with(args, {"--classes", classes});
  auto result = run_longgan(args);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return path;
}

// A tiny run of `steps` steps on `data`; extra flags in `more` (e.g. --classes 3). It samples
// with running statistics (no standing passes: every `sample` here is quick).
RunResult tiny_train(const fs::path& data, const fs::path& out, int steps, const std::vector<std::string>& more = {}) {
  return run_longgan(with({"train", "--data", data.string(), "--out", out.string(), "--steps", std::to_string(steps),
                           "--resolution", "32", "--ch", "8", "--batch", "4", "--g-attn", "16", "--d-attn", "16",
                           "--seed", "3", "--device", "cpu", "--sample-every", "0", "--sampling-stats", "running", "--checkpoint-every",
                           std::to_string(steps)},
                          more));
}

size_t occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(PrepareClasses, LabelsAreStoredAndBadCountsAreUsageErrors) {
  const fs::path dir = fresh_dir("prepare_classes");
  {
    datasets::PackedReader reader(synthetic_data(dir, "5", 12), /*verify_all=*/true);
    ASSERT_EQ(reader.label_count(), 5);
    for (int64_t i = 0; i < reader.size(); ++i) EXPECT_EQ(reader.label(i), i % 5) << i;
  }
  {
    datasets::PackedReader one(synthetic_data(dir, "1", 12));
    EXPECT_EQ(one.label_count(), 1);
    for (int64_t i = 0; i < one.size(); ++i) EXPECT_EQ(one.label(i), 0);
  }
  const fs::path bad = dir / "bad.lgd";
  for (const std::string k : {"0", "-1", "1001"}) {
    auto result = run_longgan({"prepare", "--synthetic", "4", "--resolution", "8", "--output", bad.string(),
                               "--classes=" + k});
    EXPECT_EQ(result.exit_code, 2) << k << ": " << result.output;
    EXPECT_NE(result.output.find("--classes must be in [1, 1000], got " + k), std::string::npos) << result.output;
  }
  auto folder = run_longgan({"prepare", "--input", dir.string(), "--resolution", "8", "--output", bad.string(),
                             "--classes", "3"});
  EXPECT_EQ(folder.exit_code, 2) << folder.output;
  EXPECT_NE(folder.output.find("--classes applies to --synthetic only"), std::string::npos) << folder.output;
  EXPECT_FALSE(fs::exists(bad));
  checkpoints::remove_tree(dir);
}

TEST(TrainClasses, DefaultSyntheticDataIsUnlabelledAndTrainsWithoutAWarning) {
  const fs::path dir = fresh_dir("train_default_synthetic");
  const fs::path data = synthetic_data(dir / "default", "");
  // The file of --classes 1 (one class, the same images), byte for byte.
  EXPECT_EQ(checkpoints::read_file(data), checkpoints::read_file(synthetic_data(dir / "one", "1")));
  auto run = tiny_train(data, dir / "run", 1);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.output.find("warning"), std::string::npos) << run.output;
  checkpoints::remove_tree(dir);
}

TEST(TrainClasses, WarnsOnceWhenLabelledDataTrainsAnUnconditionalModel) {
  const fs::path dir = fresh_dir("train_label_warning");
  const fs::path labelled = synthetic_data(dir / "labelled", "3");
  const fs::path unlabelled = synthetic_data(dir / "unlabelled", "1");
  const std::string warning = "warning: data '" + labelled.string() + "' is labelled (3 classes)";

  auto unconditional = tiny_train(labelled, dir / "unconditional", 1);
  ASSERT_EQ(unconditional.exit_code, 0) << unconditional.output;
  EXPECT_EQ(occurrences(unconditional.output, warning), 1u) << unconditional.output;
  EXPECT_NE(unconditional.output.find("pass --classes 3"), std::string::npos) << unconditional.output;
  // It trained as before: an unconditional model.
  auto manifest = checkpoints::read_checkpoint(dir / "unconditional").manifest;
  EXPECT_EQ(manifest["config"]["model"]["n_classes"], 1);

  // No warning when the labels are used or there are none (the warning comes before step 1).
  auto conditional = tiny_train(labelled, dir / "conditional", 0, {"--classes", "3"});
  ASSERT_EQ(conditional.exit_code, 0) << conditional.output;
  EXPECT_EQ(conditional.output.find("warning:"), std::string::npos) << conditional.output;
  auto plain = tiny_train(unlabelled, dir / "plain", 0);
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  EXPECT_EQ(plain.output.find("warning:"), std::string::npos) << plain.output;
  checkpoints::remove_tree(dir);
}

TEST(SampleClasses, ClassFlagRendersThatClassAndPerClassSheetsShareTheLatents) {
  const fs::path dir = fresh_dir("sample_classes");
  const fs::path run = dir / "run";
  ASSERT_EQ(tiny_train(synthetic_data(dir, "3"), run, 2, {"--classes", "3"}).exit_code, 0);
  auto sample = [&](const std::vector<std::string>& more) {
    return run_longgan(with({"sample", "--checkpoint", run.string(), "--seed", "4", "--device", "cpu"}, more));
  };

  // Without --class image i is of class i % 3: with --class 1 images 1 and 4 are the same, the
  // others are the same latents in class 1, not their own class.
  ASSERT_EQ(sample({"--n", "6", "--out", (dir / "cycled").string()}).exit_code, 0);
  auto one = sample({"--n", "6", "--class", "1", "--out", (dir / "one").string()});
  ASSERT_EQ(one.exit_code, 0) << one.output;
  auto image = [&](const std::string& folder, int i) {
    return checkpoints::read_file(dir / folder / ("00000" + std::to_string(i) + ".png"));
  };
  for (int i = 0; i < 6; ++i) {
    if (i % 3 == 1) EXPECT_EQ(image("one", i), image("cycled", i)) << i;
    else EXPECT_NE(image("one", i), image("cycled", i)) << i;
  }
  auto record = nlohmann::json::parse(checkpoints::read_file(dir / "one" / "samples.json"));
  EXPECT_EQ(record["class"], 1);
  EXPECT_EQ(record["n_classes"], 3);

  // One sheet per class from the same z: class k's sheet is the --class k grid.
  auto per_class = sample({"--n", "4", "--per-class", "--out", (dir / "sheets").string()});
  ASSERT_EQ(per_class.exit_code, 0) << per_class.output;
  ASSERT_EQ(sample({"--n", "4", "--class", "2", "--out", (dir / "two.png").string()}).exit_code, 0);
  for (const char* name : {"class_000.png", "class_001.png", "class_002.png"}) {
    EXPECT_TRUE(fs::exists(dir / "sheets" / name)) << name;
  }
  EXPECT_FALSE(fs::exists(dir / "sheets" / "class_003.png"));
  EXPECT_EQ(checkpoints::read_file(dir / "sheets" / "class_002.png"), checkpoints::read_file(dir / "two.png"));
  EXPECT_NE(checkpoints::read_file(dir / "sheets" / "class_000.png"),
            checkpoints::read_file(dir / "sheets" / "class_001.png"));
  auto sheets = nlohmann::json::parse(checkpoints::read_file(dir / "sheets" / "samples.json"));
  ASSERT_EQ(sheets["classes"].size(), 3u) << sheets.dump();
  EXPECT_EQ(sheets["classes"][1]["class"], 1);
  EXPECT_EQ(sheets["classes"][1]["file"], "class_001.png");

  // The overload passes labels through: the cycling labels give generate(z)'s images. Compared to
  // 1e-5, not bit for bit: this comparison failed once in CI bit for bit (cause not found; 20,000
  // alternating generate calls in one process, two processes on one core, gave identical images
  // every time; MKL's and oneDNN's CPU kernels promise no bitwise repeatability), and another label
  // moves pixels by far more than 1e-5, as the next check asserts. Across processes the sampled PNGs
  // are compared bit for bit above.
  CheckpointGenerator generator(checkpoints::read_checkpoint(run), "cpu");
  ASSERT_EQ(generator.n_classes(), 3);
  const at::Tensor z = generator.sample_z(5, 9, 0.0);
  const at::Tensor cycled = generator.generate(z);
  auto max_difference = [&](const at::Tensor& images) { return (images - cycled).abs().max().item<double>(); };
  EXPECT_LE(max_difference(generator.generate(z, at::arange(5, at::kLong).remainder(3))), 1e-5);
  EXPECT_GT(max_difference(generator.generate(z, at::zeros({5}, at::kLong))), 1e-2);
  EXPECT_THROW(generator.generate(z, at::full({5}, 3, at::kLong)), std::invalid_argument);
  EXPECT_THROW(generator.generate(z, at::zeros({4}, at::kLong)), std::invalid_argument);

  // Usage errors, before anything is written.
  const fs::path bad = dir / "bad";
  for (const std::string k : {"3", "-1"}) {
    auto outside = sample({"--class=" + k, "--out", bad.string()});
    EXPECT_EQ(outside.exit_code, 2) << outside.output;
    EXPECT_NE(outside.output.find("--class " + k + " is not a class of checkpoint"), std::string::npos) << outside.output;
    EXPECT_NE(outside.output.find("its n_classes is 3"), std::string::npos) << outside.output;
  }
  EXPECT_EQ(sample({"--per-class", "--out", (dir / "sheet.png").string()}).exit_code, 2);
  EXPECT_EQ(sample({"--per-class", "--class", "1", "--out", bad.string()}).exit_code, 2);
  EXPECT_EQ(sample({"--per-class", "--grid", "--out", bad.string()}).exit_code, 2);
  EXPECT_FALSE(fs::exists(bad));
  EXPECT_FALSE(fs::exists(dir / "sheet.png"));
  checkpoints::remove_tree(dir);
}

TEST(SampleClasses, UnconditionalCheckpointHasOnlyClassZero) {
  const fs::path dir = fresh_dir("sample_unconditional");
  const fs::path run = dir / "run";
  ASSERT_EQ(tiny_train(synthetic_data(dir, "1"), run, 1).exit_code, 0);
  auto sample = [&](const std::vector<std::string>& more) {
    return run_longgan(with({"sample", "--checkpoint", run.string(), "--n", "2", "--device", "cpu"}, more));
  };
  auto other = sample({"--class", "1", "--out", (dir / "bad.png").string()});
  EXPECT_EQ(other.exit_code, 2) << other.output;
  EXPECT_NE(other.output.find("is unconditional (n_classes 1)"), std::string::npos) << other.output;
  EXPECT_FALSE(fs::exists(dir / "bad.png"));
  ASSERT_EQ(sample({"--class", "0", "--out", (dir / "zero.png").string()}).exit_code, 0);
  ASSERT_EQ(sample({"--out", (dir / "plain.png").string()}).exit_code, 0);
  EXPECT_EQ(checkpoints::read_file(dir / "zero.png"), checkpoints::read_file(dir / "plain.png"));
  ASSERT_EQ(sample({"--per-class", "--out", (dir / "sheets").string()}).exit_code, 0);
  EXPECT_EQ(checkpoints::read_file(dir / "sheets" / "class_000.png"), checkpoints::read_file(dir / "plain.png"));
  checkpoints::remove_tree(dir);
}

}  // namespace
}  // namespace longgan::app::testing

// longgan sample: renders images with a checkpoint's G_ema (or G), optionally with another attention type.
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>

#include "app/cli.h"
#include "app/image_grid.h"
#include "app/checkpoint_generator.h"
#include "checkpoints/atomic_file.h"
#include "checkpoints/checkpoint.h"
#include "checkpoints/torch_file.h"

namespace longgan::app {
namespace {
namespace fs = std::filesystem;

// z interpolated linearly between consecutive pairs of z: [pairs * steps, Z].
at::Tensor interpolate(const at::Tensor& z, int64_t steps) {
  std::vector<at::Tensor> rows;
  for (int64_t i = 0; i + 1 < z.size(0); i += 2) {
    for (int64_t s = 0; s < steps; ++s) {
      double t = steps == 1 ? 0.0 : static_cast<double>(s) / static_cast<double>(steps - 1);
      rows.push_back(z[i] * (1 - t) + z[i + 1] * t);
    }
  }
  if (rows.empty()) throw UsageError("--interp needs --n >= 2");
  return torch::stack(rows);
}

// Writes images as one grid PNG (out ends in .png) or as DIR/000000.png ... ; returns the paths.
std::vector<fs::path> write_images(const fs::path& out, const at::Tensor& images, bool grid, int64_t columns) {
  if (grid || out.extension() == ".png") {
    write_png_atomic(out, make_grid(images, columns));
    return {out};
  }
  std::vector<fs::path> paths;
  for (int64_t i = 0; i < images.size(0); ++i) {
    std::ostringstream name;
    name << std::setw(6) << std::setfill('0') << i << ".png";
    paths.push_back(out / name.str());
    write_png_atomic(paths.back(), make_grid(images.narrow(0, i, 1), 1, 0));
  }
  return paths;
}

// OUT/class_000.png ... : the sheet of class k with --per-class.
fs::path class_sheet(const fs::path& out, int64_t k) {
  std::ostringstream name;
  name << "class_" << std::setw(3) << std::setfill('0') << k << ".png";
  return out / name.str();
}

// A UsageError unless `k` is a class of the checkpoint.
void check_class(int64_t k, int64_t n_classes, const fs::path& checkpoint) {
  if (k >= 0 && k < n_classes) return;
  if (n_classes == 1) {
    throw UsageError("--class " + std::to_string(k) + ": the model of checkpoint '" + checkpoint.string() +
                     "' is unconditional (n_classes 1): its only class is 0");
  }
  throw UsageError("--class " + std::to_string(k) + " is not a class of checkpoint '" + checkpoint.string() +
                   "': its n_classes is " + std::to_string(n_classes) + " (classes 0.." + std::to_string(n_classes - 1) +
                   ")");
}

// Latents from --z FILE (a [N, z_dim] tensor saved by torch.save), checked against the model.
at::Tensor latents_from_file(const fs::path& file, int64_t z_dim) {
  const at::Tensor z = checkpoints::read_tensor_file(file);
  if (z.dim() != 2 || z.size(1) != z_dim || z.size(0) < 1 || !at::isFloatingType(z.scalar_type())) {
    std::ostringstream got;
    got << z.sizes() << " " << z.scalar_type();
    throw UsageError("--z '" + file.string() + "' holds a tensor " + got.str() + "; this checkpoint takes latents [N, " +
                     std::to_string(z_dim) + "] (float)");
  }
  return z.to(at::kFloat).contiguous();
}

// Classes from --labels FILE (an int64 tensor [N] saved by torch.save), one per latent.
at::Tensor labels_from_file(const fs::path& file, int64_t n, int64_t n_classes) {
  const at::Tensor labels = checkpoints::read_tensor_file(file);
  const bool integral = labels.scalar_type() == at::kLong || labels.scalar_type() == at::kInt;
  if (labels.dim() != 1 || labels.size(0) != n || !integral) {
    std::ostringstream got;
    got << labels.sizes() << " " << labels.scalar_type();
    throw UsageError("--labels '" + file.string() + "' holds a tensor " + got.str() + "; give " + std::to_string(n) +
                     " integer classes (one per latent), shape [" + std::to_string(n) + "]");
  }
  const at::Tensor classes = labels.to(at::kLong);
  if (n > 0 && (classes.min().item<int64_t>() < 0 || classes.max().item<int64_t>() >= n_classes)) {
    throw UsageError("--labels '" + file.string() + "' holds classes outside 0.." + std::to_string(n_classes - 1) +
                     " (the checkpoint's n_classes is " + std::to_string(n_classes) + ")");
  }
  return classes;
}

}  // namespace

int run_sample(int argc, char** argv) {
  cxxopts::Options options(argv[0], "Render images from a checkpoint's G_ema (or G, --weights g). A sidecar OUT.json (or "
                                    "OUT/samples.json) records the checkpoint, weights, seed, truncation, attention and "
                                    "classes that produced them. "
                                    "Image i is of class i % n_classes unless --class or --per-class says otherwise.");
  options.add_options()("checkpoint", "Run directory (its latest checkpoint) or step-NNNNNN directory",
                        cxxopts::value<std::string>())(
      "out", "FILE.png for a grid, or a directory for one PNG per image", cxxopts::value<std::string>())(
      "n,count", "Number of images (--n N also works)", cxxopts::value<int64_t>()->default_value("64"))(
      "seed", "Seed of the latents", cxxopts::value<uint64_t>()->default_value("0"))(
      "truncation", "Truncated-normal threshold of z, > 0 (0: no truncation; negative is an error)", cxxopts::value<double>()->default_value("0.7"))(
      "attention", "Override every attention block's type, e.g. dense or smyrf:hashes=4,q_cluster=256",
      cxxopts::value<std::string>())("grid", "Write one grid even when --out is a directory (OUT/grid.png)")(
      "interp", "Interpolate between pairs of latents in STEPS steps (one row per pair)", cxxopts::value<int64_t>())(
      "compare-attention",
      "Render the same z with each listed type side by side (one row per type) and print the mean absolute pixel "
      "difference of each against the checkpoint's own type (or --attention), e.g. dense,smyrf (a bare name of the "
      "checkpoint's own type keeps the checkpoint's options)",
      cxxopts::value<std::string>())(
      "class", "Render every image in class K of a class-conditional checkpoint (in [0, n_classes))",
      cxxopts::value<int64_t>())(
      "latents", "Latents from FILE (--z FILE also works), a [N, z_dim] tensor saved by torch.save (e.g. BigGAN-PyTorch's); replaces --n, --seed "
      "and --truncation", cxxopts::value<std::string>())(
      "labels", "Classes from FILE, an integer tensor [N] saved by torch.save, one per latent of --z",
      cxxopts::value<std::string>())("per-class",
                                 "One sheet per class of the checkpoint from the same latents: OUT is a directory, "
                                 "written as OUT/class_000.png, OUT/class_001.png, ... and OUT/samples.json")(
      "device", "cpu or cuda", cxxopts::value<std::string>()->default_value(
                                                                  torch::cuda::is_available() ? "cuda" : "cpu"));
  add_sampling_flags(options);
  std::vector<std::string> arguments;
  auto pointers = alias_n_to_count(argc, argv, arguments, {{"z", "latents"}});
  auto parsed = parse_command_line(options, static_cast<int>(pointers.size()), pointers.data());
  if (!parsed) return 0;
  const auto& args = *parsed;
  const fs::path checkpoint_path = required<std::string>(args, "checkpoint");
  fs::path out = required<std::string>(args, "out");
  const int64_t n = args["count"].as<int64_t>();
  if (n < 1) throw UsageError("--n must be >= 1");
  const uint64_t seed = args["seed"].as<uint64_t>();
  const double truncation = args["truncation"].as<double>();
  check_truncation(truncation);
  // Parsed before the checkpoint is read, so that a malformed spec fails fast.
  if (args.count("attention")) parse_spec_option("attention", args["attention"].as<std::string>());
  if (args.count("compare-attention")) parse_spec_list("compare-attention", args["compare-attention"].as<std::string>());
  const nlohmann::json sampling_stats = sampling_override(args);
  const bool per_class = args.count("per-class") > 0;
  const std::optional<int64_t> only_class =
      args.count("class") ? std::optional<int64_t>(args["class"].as<int64_t>()) : std::nullopt;
  bool grid = args.count("grid") > 0;
  if (per_class) {
    if (only_class) throw UsageError("give --class K (one class) or --per-class (every class), not both");
    if (grid) throw UsageError("--per-class writes one grid per class already; drop --grid");
    if (args.count("compare-attention")) {
      throw UsageError("--compare-attention renders one sheet; combine it with --class K, not --per-class");
    }
    if (out.extension() == ".png") {
      throw UsageError("--per-class writes one sheet per class into a directory (OUT/class_000.png, ...): give --out "
                       "DIR, not '" + out.string() + "'");
    }
  }
  if (grid && out.extension() != ".png") out /= "grid.png";
  const std::optional<fs::path> z_file = args.count("latents") ? std::optional<fs::path>(args["latents"].as<std::string>()) : std::nullopt;
  const std::optional<fs::path> labels_file =
      args.count("labels") ? std::optional<fs::path>(args["labels"].as<std::string>()) : std::nullopt;
  if (z_file) {
    for (const char* flag : {"count", "seed", "truncation"}) {
      if (args.count(flag)) {
        throw UsageError(std::string("--z gives the latents: drop --") + (flag == std::string("count") ? "n" : flag));
      }
    }
  }
  if (labels_file) {
    if (!z_file) throw UsageError("--labels gives one class per latent of --z FILE: pass --z too");
    if (only_class || per_class) throw UsageError("give --labels FILE or --class/--per-class, not both");
  }

  auto checkpoint = checkpoints::read_checkpoint(checkpoint_path);
  // Checked before G_ema is built (standing statistics can take a while on a large model).
  if (only_class) check_class(*only_class, checkpoint_classes(checkpoint), checkpoint.dir);
  CheckpointGenerator generator(checkpoint, args["device"].as<std::string>(), sampling_stats);
  const int64_t n_classes = generator.n_classes();
  // What this command renders for latents z: the named class, or classes cycling with the index.
  at::Tensor given_labels;
  auto render = [&](const at::Tensor& latents) {
    if (given_labels.defined()) return generator.generate(latents, given_labels);
    if (!only_class) return generator.generate(latents);
    return generator.generate(latents, at::full({latents.size(0)}, *only_class, at::kLong));
  };
  const attention::AttentionSpec own = generator.attention();
  std::vector<attention::AttentionSpec> compare;  // all checked before any rendering
  if (args.count("compare-attention")) {
    for (const auto& text : split_spec_list(args["compare-attention"].as<std::string>())) {
      compare.push_back(fitting_spec(generator, "compare-attention", text, own));
    }
  }
  if (args.count("attention")) {
    generator.set_attention(fitting_spec(generator, "attention", args["attention"].as<std::string>(), own));
  }
  at::Tensor z;
  if (z_file) {
    z = latents_from_file(*z_file, generator.network()->config.z_dim);
    if (labels_file) given_labels = labels_from_file(*labels_file, z.size(0), n_classes);
  } else {
    z = generator.sample_z(n, seed, truncation);
  }
  int64_t columns = 0;
  if (args.count("interp")) {
    if (given_labels.defined()) throw UsageError("--interp makes new latents: drop --labels (or --interp)");
    int64_t steps = args["interp"].as<int64_t>();
    if (steps < 2) throw UsageError("--interp needs at least 2 steps");
    z = interpolate(z, steps);
    columns = steps;
  }

  nlohmann::json record{{"checkpoint", checkpoint.dir.string()}, {"step", checkpoint.step}, {"seed", seed},
                        {"n", n}, {"truncation", truncation}, {"weights", gan::to_string(generator.weights())},
                        {"attention", attention::to_json(generator.attention())},
                        {"sampling_stats", gan::to_string(generator.sampling().stats)},
                        {"standing_stats", generator.sampling().standing_passes}, {"n_classes", n_classes}};
  if (only_class) record["class"] = *only_class;
  if (z_file) {
    record["z_file"] = fs::absolute(*z_file).string();
    record["n"] = z.size(0);
    record.erase("seed");
    record.erase("truncation");
  }
  if (labels_file) record["labels_file"] = fs::absolute(*labels_file).string();
  if (per_class) {
    // The same z in every class, so that the sheets compare class against class.
    record["classes"] = nlohmann::json::array();
    for (int64_t k = 0; k < n_classes; ++k) {
      write_png_atomic(class_sheet(out, k), make_grid(generator.generate(z, at::full({z.size(0)}, k, at::kLong)), columns));
      record["classes"].push_back({{"class", k}, {"file", class_sheet(out, k).filename().string()}});
    }
    checkpoints::write_file_atomic(out / "samples.json", record.dump(2) + "\n");
    std::cout << "wrote " << n_classes << " sheets (one per class, " << z.size(0) << " images each) to " << out.string()
              << " (attention " << attention::to_string(generator.attention()) << "; " << (out / "samples.json").string()
              << ")" << std::endl;
    return 0;
  }
  at::Tensor images;
  if (compare.empty()) {
    images = render(z);
  } else {
    // The reference is what this command renders without comparing: the checkpoint's type or --attention.
    const attention::AttentionSpec rendered_spec = generator.attention();
    at::Tensor reference = render(z);
    std::vector<at::Tensor> rows;
    record["compare"] = nlohmann::json::array();
    std::cout << "mean |difference| of pixels (0..255) against "
              << (args.count("attention") ? "--attention " : "the checkpoint's ") << attention::to_string(rendered_spec)
              << ":\n";
    for (const auto& spec : compare) {
      generator.set_attention(spec);
      at::Tensor rendered = render(z);
      double difference = ((rendered - reference).abs().mean().item<double>()) * 127.5;
      std::cout << "  " << std::left << std::setw(48) << attention::to_string(spec) << " " << std::fixed
                << std::setprecision(3) << difference << "\n";
      record["compare"].push_back({{"attention", attention::to_json(spec)}, {"mean_abs_pixel_difference", difference}});
      rows.push_back(rendered);
    }
    generator.set_attention(rendered_spec);
    images = torch::cat(rows);  // one row of n images per type
    columns = n;
  }
  auto written = write_images(out, images, grid, columns);
  fs::path sidecar = written.size() == 1 ? fs::path(written.front().string() + ".json") : out / "samples.json";
  checkpoints::write_file_atomic(sidecar, record.dump(2) + "\n");
  std::cout << "wrote " << (written.size() == 1 ? written.front().string() : std::to_string(written.size()) +
                                                                                 " images to " + out.string())
            << " (attention " << attention::to_string(generator.attention()) << "; " << sidecar.string() << ")"
            << std::endl;
  return 0;
}

}  // namespace longgan::app

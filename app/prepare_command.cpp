// longgan prepare: pack an image folder, or synthetic images, into one .lgd dataset file.

#include <iostream>

#include "app/cli.h"
#include "app/progress.h"
#include "datasets/packed_format.h"
#include "datasets/prepare.h"
#include "datasets/synthetic.h"

namespace longgan::app {
namespace {

int run_synthetic(const cxxopts::ParseResult& args, const std::string& output, int64_t resolution) {
  const auto count = args["synthetic"].as<int64_t>();
  if (count < 1) throw UsageError("--synthetic takes the number of images (>= 1), got " + std::to_string(count));
  const auto seed = args["seed"].as<uint64_t>();
  if (seed > UINT32_MAX) {
    throw UsageError("--seed of --synthetic must be below 4294967296 (the dataset header records it in 32 bits), "
                     "got " + std::to_string(seed));
  }
  // Unlabelled (one class) unless --classes asks for labels: the default data trains the default,
  // unconditional model without a warning about unused labels.
  int64_t classes = 1;
  if (args.count("classes")) {
    classes = args["classes"].as<int64_t>();
    if (classes < 1 || classes > datasets::kSyntheticMaxClasses) {
      throw UsageError("--classes must be in [1, " + std::to_string(datasets::kSyntheticMaxClasses) + "], got " +
                       std::to_string(classes));
    }
  }
  const int64_t motif = args.count("motif-size") ? args["motif-size"].as<int64_t>() : 0;
  if (args.count("motif-size") && (motif < 1 || motif > resolution / 2)) {
    throw UsageError("--motif-size must be in 1.." + std::to_string(resolution / 2) + " at --resolution " +
                     std::to_string(resolution) + " (the two corner squares must not overlap), got " +
                     std::to_string(motif));
  }
  ProgressReporter progress = stderr_count_progress("synthetic", count);
  datasets::write_synthetic_dataset(output, count, resolution, seed,
                                    [&progress](int64_t done, int64_t) { progress.update(done); }, classes, motif);
  datasets::PackedReader reader(output);
  std::cerr << "wrote " << reader.size() << " synthetic " << resolution << "x" << resolution << " images ("
            << (reader.label_count() > 1 ? std::to_string(reader.label_count()) + " classes" : std::string("unlabelled"))
            << ", seed " << seed << ", motif " << reader.header().source.motif_size << " px) to " << output << "\n";
  return 0;
}

int run_folder(const cxxopts::ParseResult& args, const std::string& output, int64_t resolution) {
  datasets::PrepareOptions options;
  options.input = args["input"].as<std::string>();
  options.output = output;
  options.resolution = resolution;
  if (args.count("labels")) options.labels = args["labels"].as<std::string>();
  options.threads = args["threads"].as<int64_t>();
  options.min_size = args["min-size"].as<int64_t>();
  try {
    options.validate();
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  const auto summary = datasets::prepare_folder(options, stderr_progress("decoding"));
  std::cerr << "wrote " << summary.written << " of " << summary.found << " images (" << resolution << "x" << resolution
            << ") to " << output << "\n"
            << "  unreadable: " << summary.unreadable.size() << "\n"
            << "  skipped:    " << summary.skipped.size()
            << (options.min_size > 0 ? " (smaller than --min-size " + std::to_string(options.min_size) + ", or unlabelled)"
                                     : "")
            << "\n"
            << "  upscaled:   " << summary.upscaled;
  if (summary.upscaled > 0) std::cerr << " (warning: shorter side below " << resolution << ", resized up with cubic)";
  std::cerr << "\n  report:     " << summary.report.string() << "\n";
  return 0;
}

}  // namespace

int run_prepare(int argc, char** argv) {
  cxxopts::Options options(argv[0], "Pack an image folder, or synthetic images, into one .lgd dataset.\n"
                                    "Usage: longgan prepare --input DIR --output FILE --resolution R [options]\n"
                                    "       longgan prepare --synthetic N --output FILE --resolution R [--seed S] [--classes K]\n"
                                    "       [--motif-size M]");
  options.add_options()
      ("input", "Folder of .jpg/.jpeg/.png/.webp images, searched recursively", cxxopts::value<std::string>())
      ("synthetic", "Write N synthetic images (mirrored ellipses) instead", cxxopts::value<int64_t>())
      ("output", "The dataset file to write (.lgd)", cxxopts::value<std::string>())
      ("resolution", "Side of the square images", cxxopts::value<int64_t>())
      ("labels", "Class labels: lines 'filename,label' (docs/DATASET_FORMAT.md)", cxxopts::value<std::string>())
      ("threads", "Decoding threads", cxxopts::value<int64_t>()->default_value("4"))
      ("min-size", "Skip images whose shorter side is smaller", cxxopts::value<int64_t>()->default_value("0"))
      ("seed", "Seed of the synthetic images", cxxopts::value<uint64_t>()->default_value("0"))
      ("motif-size", "Side of the synthetic corner motif squares in pixels (default: max(2, R/8))",
       cxxopts::value<int64_t>())
      ("classes", "Synthetic images in K classes of their own hue (odd classes: rounded squares), labels "
                  "0..K-1 (image i is of class i % K), for class-conditional training; K in [1, 1000], 1: one "
                  "class. Without it: unlabelled (the images of --classes 1)",
       cxxopts::value<int64_t>());
  auto args = parse_command_line(options, argc, argv);
  if (!args) return 0;
  const auto output = required<std::string>(*args, "output");
  const auto resolution = required<int64_t>(*args, "resolution");
  if (resolution < 4 || resolution > 8192) {
    throw UsageError("--resolution must be in [4, 8192], got " + std::to_string(resolution));
  }
  const bool synthetic = args->count("synthetic") > 0, folder = args->count("input") > 0;
  if (synthetic == folder) throw UsageError("give exactly one of --input DIR and --synthetic N");
  if (synthetic && (args->count("labels") || args->count("min-size"))) {
    throw UsageError("--labels and --min-size apply to --input only");
  }
  if (folder && args->count("classes")) {
    throw UsageError("--classes applies to --synthetic only; the classes of an image folder come from --labels");
  }
  if (!synthetic && args->count("motif-size")) {
    throw UsageError("--motif-size applies to --synthetic only (the corner motif of the synthetic images)");
  }
  return synthetic ? run_synthetic(*args, output, resolution) : run_folder(*args, output, resolution);
}

}  // namespace longgan::app

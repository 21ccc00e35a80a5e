// longgan bench loader: images/s of the data loader alone (mmap, shuffle, flip, conversion to
// float batches), to compare with what a training step consumes.
#include <torch/cuda.h>

#include <chrono>
#include <iomanip>
#include <iostream>

#include "app/cli.h"
#include "checkpoints/atomic_file.h"
#include "datasets/loader.h"

namespace longgan::app {

int run_loader_bench(int argc, char** argv) {
  cxxopts::Options options(argv[0], "Measure images/s of the data loader alone on a packed dataset.\n"
                                    "Usage: longgan bench loader --data FILE [options]");
  options.add_options()("data", "Packed dataset (.lgd)", cxxopts::value<std::string>())(
      "batch", "Batch size", cxxopts::value<int64_t>()->default_value("64"))(
      "batches", "Batches timed (after one untimed batch)", cxxopts::value<int64_t>()->default_value("200"))(
      "threads", "Loader threads", cxxopts::value<int64_t>()->default_value("2"))(
      "pin", "Pin batches in page-locked memory (needs CUDA)")(
      "json", "Also write the result as JSON to this file", cxxopts::value<std::string>());
  auto parsed = parse_command_line(options, argc, argv);
  if (!parsed) return 0;
  const auto& args = *parsed;
  const std::string data = required<std::string>(args, "data");
  datasets::LoaderOptions loader_options;
  loader_options.batch = args["batch"].as<int64_t>();
  loader_options.threads = args["threads"].as<int64_t>();
  loader_options.pin_memory = args.count("pin") > 0;
  const int64_t batches = args["batches"].as<int64_t>();
  if (loader_options.batch < 1 || loader_options.threads < 1 || batches < 1) {
    throw UsageError("--batch, --batches and --threads must be >= 1");
  }
  if (loader_options.pin_memory && !torch::cuda::is_available()) {
    throw UsageError("--pin needs a visible CUDA device; drop --pin on this machine");
  }

  datasets::Loader loader(data, loader_options);
  const auto& header = loader.reader().header();
  loader.next();  // starts the workers and faults in the first pages
  auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < batches; ++i) loader.next();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double images_per_s = static_cast<double>(batches * loader_options.batch) / seconds;

  std::cout << "loader: " << data << " (" << header.count << " images, " << header.height << "x" << header.width
            << "), batch " << loader_options.batch << ", threads " << loader_options.threads
            << (loader_options.pin_memory ? ", pinned" : "") << "\n"
            << std::fixed << std::setprecision(0) << images_per_s << " images/s (" << batches << " batches in "
            << std::setprecision(2) << seconds << " s)" << std::endl;
  if (args.count("json")) {
    nlohmann::json result{{"data", data},       {"resolution", header.height}, {"batch", loader_options.batch},
                          {"threads", loader_options.threads}, {"pinned", loader_options.pin_memory},
                          {"batches", batches}, {"seconds", seconds},          {"images_per_s", images_per_s}};
    checkpoints::write_file_atomic(args["json"].as<std::string>(), result.dump(2) + "\n");
  }
  return 0;
}

}  // namespace longgan::app

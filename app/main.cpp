// longgan: train, sample and benchmark BigGAN-style GANs with long-range attention.
#include <torch/version.h>

#include <cstring>
#include <exception>
#include <iostream>
#include <string>

#include "app/cli.h"
#include "kernels/availability.h"
#include "longgan/build_config.h"

namespace {

constexpr const char* kUsage = R"(usage: longgan <command> [options]

commands:
  prepare   pack an image folder (or synthetic images) into a .lgd dataset
  train     train a GAN on a packed dataset, with checkpoints and sample grids
  sample    render images from a checkpoint, optionally with another attention type
  metrics   FID and KID between datasets, image folders and checkpoints (and attention swaps)
  bench     benchmark attention, the attention block, the training step or the loader
            (longgan bench attention|layer|step|loader|checksum --help)
  info      print a checkpoint's manifest, attention types and parameter counts
  import    import a BigGAN-PyTorch checkpoint as a run directory (longgan import biggan-pytorch --help)
  export    write a run's checkpoint as BigGAN-PyTorch files (longgan export biggan-pytorch --help)

options:
  --version   print versions and what this build contains
  -h, --help  show this help

Run 'longgan <command> --help' for the options of a command.
)";

void print_version() {
  std::cout << "LongGAN " << LONGGAN_VERSION << "\n"
            << "LibTorch " << TORCH_VERSION << "\n"
            << longgan::kernels::cuda_description() << "\n"
            << "OpenCV " << (LONGGAN_HAVE_OPENCV ? "on" : "off (prepare from image folders unavailable)") << "\n";
}

int dispatch(int argc, char** argv) {
  using namespace longgan::app;
  if (argc < 2) throw UsageError("missing command");
  std::string command = argv[1];
  if (command == "--version" || command == "version") {
    print_version();
    return 0;
  }
  if (command == "-h" || command == "--help" || command == "help") {
    std::cout << kUsage;
    return 0;
  }
  // The subcommand sees "longgan <command>" as its program name.
  std::string program = std::string("longgan ") + command;
  argv[1] = program.data();
  if (command == "prepare") return run_prepare(argc - 1, argv + 1);
  if (command == "train") return run_train(argc - 1, argv + 1);
  if (command == "sample") return run_sample(argc - 1, argv + 1);
  if (command == "bench") return run_bench(argc - 1, argv + 1);
  if (command == "info") return run_info(argc - 1, argv + 1);
  if (command == "metrics") return run_metrics(argc - 1, argv + 1);
  if (command == "import") return run_import(argc - 1, argv + 1);
  if (command == "export") return run_export(argc - 1, argv + 1);
  throw UsageError("unknown command '" + command + "'");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return dispatch(argc, argv);
  } catch (const longgan::app::UsageError& e) {
    std::cerr << "longgan: " << e.what() << "\n" << (argc >= 2 ? "See 'longgan --help'." : kUsage) << std::endl;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "longgan: error: " << e.what() << std::endl;
    return 1;
  }
}

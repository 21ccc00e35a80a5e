// longgan import biggan-pytorch / longgan export biggan-pytorch: BigGAN-PyTorch checkpoints in and out.
#include <iostream>

#include "app/biggan/biggan_import.h"
#include "app/cli.h"
#include "gan/biggan/biggan_tensors.h"

namespace longgan::app {
namespace {
namespace fs = std::filesystem;

constexpr const char* kFormat = "biggan-pytorch";

// The format argument, or UsageError naming the ones there are.
void check_format(const cxxopts::ParseResult& args, const std::string& command) {
  if (!args.count("format")) throw UsageError("missing the format: longgan " + command + " " + kFormat + " ...");
  const std::string format = args["format"].as<std::string>();
  if (format != kFormat) {
    throw UsageError("unknown format '" + format + "'; longgan " + command + " knows " + kFormat);
  }
}

// Mistakes in the files or flags are the user's input: exit 2 with the message, nothing written.
int input_error(const std::exception& e) {
  std::cerr << "longgan: " << e.what() << std::endl;
  return 2;
}

}  // namespace

int run_import(int argc, char** argv) {
  cxxopts::Options options(
      argv[0],
      "Import a BigGAN-PyTorch checkpoint (its weights folder: G.pth, G_ema.pth, D.pth, state_dict.pth, G_optim.pth, "
      "D_optim.pth; or one G file, e.g. a TF Hub port from its TFHub/converter.py) as a LongGAN run directory: sample, "
      "metrics, info, --attention swaps and (with D) train --resume work on it, continuing from the optimizer files' "
      "Adam state and the config's training settings. The model settings are BigGAN-PyTorch's train.py "
      "flags: read from state_dict.pth's config where present, else its defaults (or --tfhub's); flags given here "
      "win. The networks compute BigGAN-PyTorch's functions (spectral_norm biggan, its epsilons; docs/BIGGAN_IMPORT.md).");
  options.add_options()("format", "biggan-pytorch", cxxopts::value<std::string>())(
      "weights", "BigGAN-PyTorch weights folder or G file", cxxopts::value<std::string>())(
      "out", "New run directory to write", cxxopts::value<std::string>())(
      "suffix", "Read G<SUFFIX>.pth etc. (BigGAN's copies: _copy0, _best0)", cxxopts::value<std::string>()->default_value(""))(
      "tfhub", "Start from the TF Hub BigGAN settings of this resolution (128, 256 or 512)", cxxopts::value<int64_t>())(
      "D_thin", "BigGAN-PyTorch's --D_thin (D_wide false)");
  for (const std::string& flag : gan::biggan_flag_names()) {
    auto value = cxxopts::value<std::string>();
    if (gan::is_biggan_switch(flag)) value->implicit_value("true");
    options.add_options("BigGAN-PyTorch train.py flags")(flag, "train.py's --" + flag, value);
  }
  options.parse_positional({"format", "weights"});
  options.positional_help("biggan-pytorch WEIGHTS --out RUN");
  const auto parsed = parse_command_line(options, argc, argv);
  if (!parsed) return 0;
  const cxxopts::ParseResult& args = *parsed;
  check_format(args, "import");
  BigGanImportRequest request;
  request.out = required<std::string>(args, "out");
  if (!args.count("weights")) throw UsageError("missing WEIGHTS: longgan import biggan-pytorch WEIGHTS --out RUN");
  request.files = locate_biggan_files(args["weights"].as<std::string>(), args["suffix"].as<std::string>());
  if (args.count("tfhub")) request.tfhub = args["tfhub"].as<int64_t>();
  for (const std::string& flag : gan::biggan_flag_names()) {
    if (args.count(flag)) request.flags.emplace_back(flag, args[flag].as<std::string>());
  }
  if (args.count("D_thin")) request.flags.emplace_back("D_wide", "false");
  try {
    import_biggan(request, std::cout);
  } catch (const std::invalid_argument& e) {  // gan::BigGanTensorMismatch, bad flags
    return input_error(e);
  } catch (const checkpoints::TorchFileError& e) {
    return input_error(e);
  }
  return 0;
}

int run_export(int argc, char** argv) {
  cxxopts::Options options(
      argv[0],
      "Export a LongGAN checkpoint as BigGAN-PyTorch files (G.pth, G_ema.pth, D.pth: state dicts its "
      "load_state_dict(strict=True) accepts) and train_py_flags.txt (train.py's flags that build the model there; the resolution and classes "
      "come from its --dataset). "
      "Models BigGAN-PyTorch cannot express are refused, naming the option (e.g. spectral_norm longgan, "
      "an attention type other than dense).");
  options.add_options()("format", "biggan-pytorch", cxxopts::value<std::string>())(
      "checkpoint", "Run directory (its latest checkpoint) or step-NNNNNN directory", cxxopts::value<std::string>())(
      "out", "Directory for the BigGAN-PyTorch files", cxxopts::value<std::string>());
  options.parse_positional({"format", "checkpoint"});
  options.positional_help("biggan-pytorch RUN --out DIR");
  const auto parsed = parse_command_line(options, argc, argv);
  if (!parsed) return 0;
  const cxxopts::ParseResult& args = *parsed;
  check_format(args, "export");
  if (!args.count("checkpoint")) throw UsageError("missing RUN: longgan export biggan-pytorch RUN --out DIR");
  const fs::path out = required<std::string>(args, "out");
  try {
    export_biggan(args["checkpoint"].as<std::string>(), out, std::cout);
  } catch (const std::invalid_argument& e) {
    return input_error(e);
  }
  return 0;
}

}  // namespace longgan::app

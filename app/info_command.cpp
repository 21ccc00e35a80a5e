// longgan info CHECKPOINT: the manifest, the attention type of each block, parameter counts.
// longgan info --model [model flags]: the summary of a model without a checkpoint.
#include <iostream>

#include "app/checkpoint_io.h"
#include "app/cli.h"
#include "app/run_config.h"
#include "app/train_session.h"
#include "checkpoints/checkpoint.h"

namespace longgan::app {

int run_info(int argc, char** argv) {
  cxxopts::Options options(argv[0], "Print a checkpoint's manifest, attention types and parameter counts, or with "
                                    "--model the summary of the model that the model flags describe.");
  options.add_options()("checkpoint", "Run directory (resolved through 'latest') or step-NNNNNN directory",
                        cxxopts::value<std::string>())(
      "model", "Print the model summary (blocks, shapes, parameters, attention tokens) of the model flags instead");
  add_config_flags(options, "Model (with --model)", model_flags());
  options.parse_positional({"checkpoint"});
  options.positional_help("CHECKPOINT");
  auto args = parse_command_line(options, argc, argv);
  if (!args) return 0;
  if (args->count("model")) {
    if (args->count("checkpoint")) throw UsageError("give either CHECKPOINT or --model, not both");
    nlohmann::json config = default_session_config();
    apply_config_flags(config, *args, model_flags());
    std::cout << describe_model(config["model"]) << std::flush;
    return 0;
  }
  auto dir = checkpoints::resolve_checkpoint(required<std::string>(*args, "checkpoint"));
  auto manifest = checkpoints::read_manifest(dir);
  std::cout << "checkpoint: " << dir.string() << "\n"
            << "step: " << manifest.value("step", int64_t{0}) << "\n\n";
  print_attention_blocks(std::cout, manifest);
  std::cout << "\n";
  print_parameter_counts(std::cout, dir, manifest);
  std::cout << "\nmanifest:\n" << manifest.dump(2) << std::endl;
  return 0;
}

}  // namespace longgan::app

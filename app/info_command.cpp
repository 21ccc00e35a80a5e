// longgan info CHECKPOINT: the manifest, the attention type of each block, parameter counts.
// longgan info --model [model flags]: the summary of a model without a checkpoint.
#include <algorithm>
#include <filesystem>
#include <iostream>

#include "app/checkpoint_io.h"
#include "app/cli.h"
#include "app/run_config.h"
#include "app/train_session.h"
#include "checkpoints/checkpoint.h"

namespace longgan::app {
namespace {
namespace fs = std::filesystem;

// info --verify: every step directory of a run (complete or not), or one step directory.
int verify_run(const fs::path& path) {
  if (!fs::exists(path)) throw std::runtime_error("checkpoint path '" + path.string() + "' does not exist");
  std::vector<fs::path> dirs;
  if (fs::exists(path / "manifest.json")) {
    dirs.push_back(path);
  } else {
    for (const auto& entry : fs::directory_iterator(path)) {
      const std::string name = entry.path().filename().string();
      if (entry.is_directory() && name.rfind("step-", 0) == 0) dirs.push_back(entry.path());
    }
    std::sort(dirs.begin(), dirs.end());
    if (fs::is_directory(path / "best")) {
      for (const auto& [step, dir] : checkpoints::list_checkpoints(path / "best")) dirs.push_back(dir);
    }
  }
  if (dirs.empty()) throw std::runtime_error("'" + path.string() + "' holds no checkpoint to verify");
  int bad = 0;
  for (const auto& dir : dirs) {
    bool has_checksums = false;
    auto problems = checkpoints::verify_checkpoint(dir, &has_checksums);
    if (problems.empty()) {
      std::cout << "ok      " << dir.string()
                << (has_checksums ? "" : " (written before checksums were recorded: files present and readable, "
                                         "contents not verifiable)")
                << "\n";
      continue;
    }
    ++bad;
    std::cout << "DAMAGED " << dir.string() << "\n";
    for (const auto& problem : problems) std::cout << "  " << problem << "\n";
  }
  std::cout << dirs.size() - bad << " of " << dirs.size() << " checkpoints intact" << std::endl;
  if (bad > 0) {
    std::cerr << bad << " damaged checkpoint(s) in '" << path.string() << "' (listed above)" << std::endl;
    return 1;
  }
  return 0;
}

}  // namespace

int run_info(int argc, char** argv) {
  cxxopts::Options options(argv[0], "Print a checkpoint's manifest, attention types and parameter counts, or with "
                                    "--model the summary of the model that the model flags describe.");
  options.add_options()("checkpoint", "Run directory (resolved through 'latest') or step-NNNNNN directory",
                        cxxopts::value<std::string>())(
      "model", "Print the model summary (blocks, shapes, parameters, attention tokens) of the model flags instead")(
      "verify", "Check every checkpoint of the run (or the one step directory) against its recorded checksums; "
                "exit 1 naming each damaged file");
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
  if (args->count("verify")) return verify_run(required<std::string>(*args, "checkpoint"));
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

// longgan info CHECKPOINT: the manifest, the attention type of each block, parameter counts.
// longgan info --model [model flags]: the summary of a model without a checkpoint.
// longgan info DATA.lgd [--verify]: a packed dataset's header; --verify checks every image block.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <set>

#include "app/checkpoint_io.h"
#include "app/cli.h"
#include "app/model_presets.h"
#include "app/run_config.h"
#include "app/session_config.h"
#include "checkpoints/checkpoint.h"
#include "datasets/packed_format.h"

namespace longgan::app {
namespace {
namespace fs = std::filesystem;

// "XXH3-64, format 2": how a file's checksums were checked.
std::string checksums_text(checkpoints::ChecksumAlgorithm algorithm, int64_t format_version) {
  return std::string(checkpoints::checksum_name(algorithm)) + ", format " + std::to_string(format_version);
}

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
    checkpoints::ChecksumInfo checksums;
    auto problems = checkpoints::verify_checkpoint(dir, &checksums);
    if (problems.empty()) {
      std::cout << "ok      " << dir.string();
      if (checksums.algorithm) {
        std::cout << ": verified (" << checksums_text(*checksums.algorithm, checksums.format_version) << ")\n";
      } else {
        std::cout << " (written before checksums were recorded: files present and readable, contents not "
                     "verifiable)\n";
      }
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

// Where the images of a dataset came from, as its header records it (format 3 on).
std::string source_text(const datasets::PackedHeader& h) {
  if (h.source.kind == datasets::DataSourceKind::kSynthetic) {
    return "synthetic (generator " + std::to_string(h.source.generator) + ", seed " + std::to_string(h.source.seed) +
           ", corner motif " + std::to_string(h.source.motif_size) + " px; metrics scores its long-range rules)";
  }
  return h.version >= datasets::kFirstVersionWithSource ? "image folder"
                                                        : "not recorded (format " + std::to_string(h.version) + ")";
}

// longgan info DATA.lgd [--verify]: the header of a packed dataset; --verify checks every block.
int info_data(const std::filesystem::path& path, bool verify) {
  const auto start = std::chrono::steady_clock::now();
  datasets::PackedReader reader(path);  // header, size, labels checksum and range
  const auto& h = reader.header();
  std::cout << "dataset: " << path.string() << "\n"
            << "images: " << h.count << " of " << h.height << "x" << h.width << "x" << h.channels << "\n"
            << "classes: " << h.label_count << "\n"
            << "source: " << source_text(h) << "\n"
            << "fingerprint: " << std::hex << std::setw(16) << std::setfill('0') << h.fingerprint << std::dec
            << std::setfill(' ') << "\n";
  const std::string checksums = checksums_text(reader.checksum_algorithm(), h.version);
  if (verify) {
    reader.verify_all();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "verified (" << checksums << "): all " << reader.block_count() << " blocks and the fingerprint ("
              << std::fixed << std::setprecision(2) << static_cast<double>(std::filesystem::file_size(path)) / 1e6
              << " MB in " << seconds << " s)\n";
  } else {
    std::cout << "verified (" << checksums << "): header and labels only (--verify checks every image block)\n";
  }
  std::cout << std::flush;
  return 0;
}

}  // namespace

int run_info(int argc, char** argv) {
  cxxopts::Options options(argv[0], "Print a checkpoint's manifest, attention types and parameter counts, or with "
                                    "--model the summary of the model that the model flags describe, or the header "
                                    "of a dataset file (DATA.lgd; --verify checks every image block).");
  options.add_options()("checkpoint", "Run directory (resolved through 'latest') or step-NNNNNN directory",
                        cxxopts::value<std::string>())(
      "model", "Print the model summary (blocks, shapes, parameters, attention tokens) of the model flags instead")(
      "verify", "With a run or step directory: check every checkpoint against its recorded checksums (exit 1 "
                "naming each damaged file); with a dataset file (DATA.lgd): check every image block")(
      "config", "With --model: the model section of this JSON file (as train --config; other sections ignored), "
                "then the model flags", cxxopts::value<std::string>());
  add_config_flags(options, "Model (with --model)", model_flags());
  options.parse_positional({"checkpoint"});
  options.positional_help("CHECKPOINT");
  auto args = parse_command_line(options, argc, argv);
  if (!args) return 0;
  if (args->count("model")) {
    if (args->count("checkpoint")) throw UsageError("give either CHECKPOINT or --model, not both");
    // The model `train` would build from the same file and flags (the preset of the resolution
    // under the fields given), without data to take the resolution from.
    nlohmann::json config = default_session_config();
    std::set<std::string> given = given_model_keys(*args);
    if (args->count("config")) {
      const std::string file = (*args)["config"].as<std::string>();
      const nlohmann::json json = read_json_file(file);
      if (!json.is_object()) throw UsageError(file + ": expected a JSON object with a section model");
      if (json.contains("model")) overlay_config(config, {{"model", json.at("model")}}, file);
      given.merge(model_keys_of(json));
    }
    apply_config_flags(config, *args, model_flags());
    config["model"] = resolve_model_section(config["model"], given, std::nullopt);
    std::cout << describe_model(config["model"]) << std::flush;
    return 0;
  }
  if (args->count("config")) throw UsageError("--config goes with --model (the model summary of a config file)");
  const std::string target = required<std::string>(*args, "checkpoint");
  if (std::filesystem::is_regular_file(target) && std::filesystem::path(target).extension() == ".lgd") {
    return info_data(target, args->count("verify") > 0);
  }
  if (args->count("verify")) return verify_run(target);
  auto dir = checkpoints::resolve_checkpoint(target);
  auto manifest = checkpoints::read_manifest(dir);
  std::cout << "checkpoint: " << dir.string() << "\n"
            << "step: " << manifest.value("step", int64_t{0}) << "\n\n";
  print_attention_blocks(std::cout, manifest);
  print_attention_weights(std::cout, dir, manifest);
  std::cout << "\n";
  print_parameter_counts(std::cout, dir, manifest);
  std::cout << "\nmanifest:\n" << manifest.dump(2) << std::endl;
  return 0;
}

}  // namespace longgan::app

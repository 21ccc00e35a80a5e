// longgan bench layer: G's attention block as training runs it, every type against dense.
#include <torch/cuda.h>

#include <iostream>
#include <sstream>

#include "app/cli.h"
#include "app/bench/layer_bench.h"
#include "checkpoints/atomic_file.h"
#include "gan/model_config.h"

namespace longgan::app {
namespace {

std::vector<LayerBenchCase> parse_layer_cases(const cxxopts::ParseResult& args) {
  std::vector<LayerBenchCase> cases;
  std::stringstream types(args["types"].as<std::string>());
  for (std::string type; std::getline(types, type, ',');) {
    if (type.empty()) continue;
    try {
      cases.push_back({type, attention::parse_attention_spec(type)});  // bare: fitted by the block
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("--types: ") + e.what() + " (use --spec for a type with options)");
    }
  }
  if (args.count("spec")) {
    // cxxopts splits vector values at ','; joined again, the list parser puts each spec's options back together.
    std::string joined;
    for (const auto& piece : args["spec"].as<std::vector<std::string>>()) joined += (joined.empty() ? "" : ",") + piece;
    for (const auto& text : split_spec_list(joined)) cases.push_back({text, parse_spec_option("spec", text)});
  }
  return cases;
}

LayerBenchSettings parse_layer_settings(const cxxopts::ParseResult& args) {
  LayerBenchSettings s;
  const std::string device = args["device"].as<std::string>();
  if (device != "cpu" && device != "cuda") throw UsageError("--device takes cpu or cuda, got '" + device + "'");
  if (device == "cuda" && !torch::cuda::is_available()) {
    throw std::runtime_error("--device cuda: no CUDA GPU is visible to this build (see longgan --version)");
  }
  s.device = at::Device(device);
  s.resolution = required<int64_t>(args, "resolution");
  if (s.resolution != 32 && s.resolution != 64 && s.resolution != 128 && s.resolution != 256) {
    throw UsageError("--resolution takes 32, 64, 128 or 256 (the side of G's top feature map), got " +
                     std::to_string(s.resolution));
  }
  const int64_t ch = args.count("ch") ? args["ch"].as<int64_t>() : gan::ModelConfig::preset(s.resolution).ch;
  if (ch < 1) throw UsageError("--ch must be >= 1, got " + std::to_string(ch));
  s.channels = args.count("channels") ? args["channels"].as<int64_t>() : generator_attention_channels(s.resolution, ch);
  s.batch = args["batch"].as<int64_t>();
  s.heads = args["heads"].as<int64_t>();
  if (s.batch < 1) throw UsageError("--batch must be >= 1, got " + std::to_string(s.batch));
  if (s.heads < 1 || s.channels < 8 * s.heads || s.channels % (8 * s.heads) != 0) {
    throw UsageError("--channels (" + std::to_string(s.channels) + ") must be a positive multiple of 8 * --heads (" +
                     std::to_string(s.heads) + ")");
  }
  const std::string dtype = args.count("dtype") ? args["dtype"].as<std::string>() : (s.device.is_cuda() ? "bf16" : "fp32");
  if (dtype != "fp32" && dtype != "bf16") throw UsageError("--dtype takes fp32 or bf16, got '" + dtype + "'");
  s.autocast = dtype == "bf16" ? at::kBFloat16 : at::kFloat;
  s.warmup = args["warmup"].as<int>();
  s.repeats = args["repeats"].as<int>();
  s.backward = !args.count("no-backward");
  if (s.warmup < 0 || s.repeats < 1) throw UsageError("--warmup must be >= 0 and --repeats >= 1");
  return s;
}

}  // namespace

int run_layer_bench_command(int argc, char** argv) {
  cxxopts::Options options(argv[0], "Benchmark G's self-attention block as training runs it: spectrally normalized\n"
                                    "projections, 2x2 key pooling, heads, output projection; CUDA under bf16 autocast.\n"
                                    "Every type against the dense block (SDPA) in the same run.\n"
                                    "Usage: longgan bench layer --resolution R [options]");
  options.add_options()
      ("device", "cpu or cuda", cxxopts::value<std::string>()->default_value("cpu"))
      ("resolution", "Side of the feature map (G's top resolution: 32, 64, 128 or 256); N = R*R queries",
       cxxopts::value<int64_t>())
      ("ch", "G's channel multiplier; the block has the channels of G's last block (default: the preset's)",
       cxxopts::value<int64_t>())
      ("channels", "The block's channels, overriding --ch (Dqk = C/8, Dv = C/2 per head)", cxxopts::value<int64_t>())
      ("batch", "Batch size", cxxopts::value<int64_t>()->default_value("8"))
      ("heads", "Attention heads", cxxopts::value<int64_t>()->default_value("1"))
      ("types", "Attention types; bare names are fitted to the block's lengths as in training",
       cxxopts::value<std::string>()->default_value("dense,smyrf,clustered,improved_clustered,combiner_axial"))
      ("spec", "An extra case with explicit options, e.g. smyrf:hashes=4,q_cluster=2048,k_cluster=512 (repeatable)",
       cxxopts::value<std::vector<std::string>>())
      ("dtype", "Autocast of the run: bf16 (the trainer's on CUDA; default there) or fp32 (no autocast; default "
                "on the CPU)", cxxopts::value<std::string>())
      ("warmup", "Untimed runs before timing", cxxopts::value<int>()->default_value("2"))
      ("repeats", "Timed runs (the median is reported)", cxxopts::value<int>()->default_value("5"))
      ("no-backward", "Time the forward pass only")
      ("phases", "Also print where each row's time goes (projections and layout, hashing, gather, kernel, merge)")
      ("json", "Also write the results as JSON to this file", cxxopts::value<std::string>());
  auto args = parse_command_line(options, argc, argv);
  if (!args) return 0;
  const LayerBenchSettings settings = parse_layer_settings(*args);
  const auto cases = parse_layer_cases(*args);

  std::cout << "device: " << settings.device.str() << ", warmup " << settings.warmup << ", median of "
            << settings.repeats << "\nG attention block: " << settings.channels << " channels, " << settings.resolution
            << "x" << settings.resolution << " (N " << settings.resolution * settings.resolution << "), batch "
            << settings.batch << ", heads " << settings.heads << ", "
            << (settings.autocast == at::kFloat ? "fp32" : "bf16 autocast") << "\n" << std::flush;
  const auto rows = run_layer_bench(cases, settings);
  std::cout << format_layer_table(rows);
  if (args->count("phases")) std::cout << "\nphases (ms, one profiled run each):\n" << format_layer_phases(rows);
  if (args->count("json")) {
    nlohmann::json doc = {{"device", settings.device.str()}, {"warmup", settings.warmup},
                          {"repeats", settings.repeats}, {"rows", layer_rows_to_json(rows)}};
    checkpoints::write_file_atomic(args->operator[]("json").as<std::string>(), doc.dump(2) + "\n");
    std::cout << "\nwrote " << (*args)["json"].as<std::string>() << "\n";
  }
  for (const auto& row : rows) {
    if (!row.error.empty()) return 1;
  }
  return 0;
}

}  // namespace longgan::app

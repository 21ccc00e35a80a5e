// longgan bench attention: every attention type against dense, in one run, on one device.
#include <torch/cuda.h>

#include <iostream>
#include <sstream>

#include "app/bench/attention_bench.h"
#include "app/cli.h"
#include "checkpoints/atomic_file.h"

namespace longgan::app {
namespace {

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  std::string part;
  while (std::getline(stream, part, sep)) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

std::vector<int64_t> parse_lengths(const std::string& text, const std::string& option) {
  std::vector<int64_t> values;
  for (const auto& part : split(text, ',')) {
    try {
      size_t used = 0;
      int64_t value = std::stoll(part, &used);
      if (used != part.size() || value < 1) throw std::invalid_argument(part);
      values.push_back(value);
    } catch (const std::exception&) {
      throw UsageError("--" + option + " takes positive integers separated by commas, got '" + text + "'");
    }
  }
  if (values.empty()) throw UsageError("--" + option + " is empty");
  return values;
}

attention::Backend parse_backend_option(const std::string& name) {
  try {
    return attention::parse_backend(name);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--backends: ") + e.what());
  }
}

std::vector<AttentionBenchCase> parse_cases(const cxxopts::ParseResult& args) {
  std::vector<AttentionBenchCase> cases;
  std::vector<attention::Backend> backends;
  for (const auto& b : split(args["backends"].as<std::string>(), ',')) backends.push_back(parse_backend_option(b));
  auto add = [&](const std::string& label, std::optional<attention::AttentionSpec> spec, const std::string& type) {
    for (auto backend : backends) {
      // combiner_axial has no fused path: only its auto (= reference) row is meaningful.
      bool fused = backend == attention::Backend::Fused || backend == attention::Backend::FusedMath;
      if (type == "combiner_axial" && fused) continue;
      cases.push_back({label, spec, type, backend});
    }
  };
  for (const auto& type : split(args["types"].as<std::string>(), ',')) {
    try {
      attention::parse_attention_spec(type);
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("--types: ") + e.what() + " (use --spec for a type with options)");
    }
    add(type, std::nullopt, type);
  }
  if (args.count("spec")) {
    // cxxopts splits vector values at ','; joined again, the list parser puts each spec's options back together.
    std::string joined;
    for (const auto& piece : args["spec"].as<std::vector<std::string>>()) joined += (joined.empty() ? "" : ",") + piece;
    for (const auto& text : split_spec_list(joined)) {
      auto spec = parse_spec_option("spec", text);
      add(text, spec, attention::type_name(spec));
    }
  }
  return cases;
}

int run_attention_bench_command(const cxxopts::ParseResult& args) {
  std::string device_name = args["device"].as<std::string>();
  if (device_name != "cpu" && device_name != "cuda") throw UsageError("--device takes cpu or cuda, got '" + device_name + "'");
  if (device_name == "cuda" && !torch::cuda::is_available()) {
    throw std::runtime_error("--device cuda: no CUDA GPU is visible to this build (see longgan --version)");
  }
  at::Device device(device_name);
  std::string dtype_name = args["dtype"].as<std::string>();
  if (dtype_name != "fp32" && dtype_name != "bf16") throw UsageError("--dtype takes fp32 or bf16, got '" + dtype_name + "'");
  at::ScalarType dtype = dtype_name == "bf16" ? at::kBFloat16 : at::kFloat;

  AttentionBenchSettings settings;
  settings.warmup = args["warmup"].as<int>();
  settings.repeats = args["repeats"].as<int>();
  settings.backward = !args.count("no-backward");
  if (settings.warmup < 0 || settings.repeats < 1) throw UsageError("--warmup must be >= 0 and --repeats >= 1");
  auto cases = parse_cases(args);

  std::optional<attention::Grid> query_grid, key_grid;
  try {
    if (args.count("grid")) query_grid = parse_grid(args["grid"].as<std::string>(), "grid");
    if (args.count("key-grid")) key_grid = parse_grid(args["key-grid"].as<std::string>(), "key-grid");
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  if (key_grid && !query_grid) throw UsageError("--key-grid needs --grid (the query grid) too");

  std::vector<AttentionBenchInputs> inputs;
  if (args.count("qkv")) {
    inputs.push_back(load_bench_inputs(args["qkv"].as<std::string>(), device,
                                       args.count("dtype") ? std::optional(dtype) : std::nullopt));
  } else {
    const std::string kind = args["inputs"].as<std::string>();
    if (kind != "structured" && kind != "random") throw UsageError("--inputs takes structured or random, got '" + kind + "'");
    int64_t key_div = args["key-div"].as<int64_t>();
    if (key_div < 1) throw UsageError("--key-div must be >= 1");
    for (int64_t n : parse_lengths(args["lengths"].as<std::string>(), "n")) {
      if (n % key_div != 0) throw UsageError("--n " + std::to_string(n) + " is not divisible by --key-div");
      inputs.push_back(generated_bench_inputs(kind, args["batch"].as<int64_t>(), args["heads"].as<int64_t>(), n,
                                              n / key_div, args["dqk"].as<int64_t>(), args["dv"].as<int64_t>(),
                                              device, dtype));
    }
  }

  if (query_grid) {
    for (auto& in : inputs) {
      const int64_t n = in.q.size(2), m = in.k.size(2);
      if (query_grid->height * query_grid->width != n) {
        throw UsageError("--grid " + args["grid"].as<std::string>() + " holds " +
                         std::to_string(query_grid->height * query_grid->width) + " tokens but the inputs have N=" +
                         std::to_string(n) + " queries");
      }
      in.query_grid = *query_grid;
      in.key_grid = key_grid ? *key_grid : derived_key_grid(*query_grid, n, m);
    }
  }

  std::vector<AttentionBenchRow> all;
  std::cout << "device: " << device_name << ", warmup " << settings.warmup << ", median of " << settings.repeats
            << "\n";
  for (const auto& in : inputs) {
    std::cout << "\nq " << in.q.sizes() << "  k " << in.k.sizes() << "  v " << in.v.sizes() << "  "
              << dtype_label(in.q.scalar_type()) << "  (" << in.source << ")\n" << std::flush;
    auto rows = run_attention_bench(cases, in, settings);
    std::cout << format_bench_table(rows) << std::flush;
    if (args.count("phases")) std::cout << "phases (ms, one profiled run each):\n" << format_bench_phases(rows) << std::flush;
    all.insert(all.end(), rows.begin(), rows.end());
  }
  if (args.count("json")) {
    nlohmann::json doc = {{"device", device_name}, {"warmup", settings.warmup},
                          {"repeats", settings.repeats}, {"rows", bench_rows_to_json(all)}};
    checkpoints::write_file_atomic(args["json"].as<std::string>(), doc.dump(2) + "\n");
    std::cout << "\nwrote " << args["json"].as<std::string>() << "\n";
  }
  for (const auto& row : all) {
    if (!row.error.empty()) return 1;
  }
  return 0;
}

}  // namespace

int run_bench(int argc, char** argv) {
  for (const auto& [name, run] : {std::pair{"loader", &run_loader_bench}, std::pair{"layer", &run_layer_bench_command},
                                   std::pair{"checksum", &run_checksum_bench}, std::pair{"step", &run_step_bench_command}}) {
    if (argc >= 2 && std::string(argv[1]) == name) {  // a benchmark with options of its own
      std::string program = std::string(argv[0]) + " " + name;
      argv[1] = program.data();
      return run(argc - 1, argv + 1);
    }
  }
  cxxopts::Options options(argv[0], "Benchmark the attention types against dense in one run.\n"
                                    "Usage: longgan bench attention [options]\n"
                                    "(longgan bench layer --help: G's attention block as training runs it;\n"
                                    " longgan bench loader --help: images/s of the data loader;\n"
                                    " longgan bench checksum --help: GB/s of the file checksums)");
  options.add_options()
      ("what", "What to benchmark: attention", cxxopts::value<std::string>())
      ("device", "cpu or cuda", cxxopts::value<std::string>()->default_value("cpu"))
      ("types", "Attention types (bare names get a budget fitted to each length)",
       cxxopts::value<std::string>()->default_value("dense,smyrf,clustered,improved_clustered,combiner_axial"))
      ("spec", "An extra case with explicit options, e.g. smyrf:hashes=2,q_cluster=256,k_cluster=64 (repeatable)",
       cxxopts::value<std::vector<std::string>>())
      ("backends", "Implementations per type, comma-separated: auto (fused path), reference (ATen "
                   "specification), fused (library kernel or error), fused_math (fused glue, ATen kernel)",
       cxxopts::value<std::string>()->default_value("auto"))
      ("n,lengths", "Query lengths N (square grids), comma-separated; also spelled --n",
       cxxopts::value<std::string>()->default_value("1024,4096"))
      ("key-div", "Keys M = N / key-div (4: BigGAN's 2x2-pooled keys)", cxxopts::value<int64_t>()->default_value("4"))
      ("batch", "Batch size", cxxopts::value<int64_t>()->default_value("1"))
      ("heads", "Heads", cxxopts::value<int64_t>()->default_value("1"))
      ("dqk", "Query/key width", cxxopts::value<int64_t>()->default_value("16"))
      ("dv", "Value width", cxxopts::value<int64_t>()->default_value("64"))
      ("dtype", "fp32 or bf16 (with --qkv: convert the file's tensors; default: their own dtype)",
       cxxopts::value<std::string>()->default_value("fp32"))
      ("warmup", "Untimed runs before timing", cxxopts::value<int>()->default_value("2"))
      ("repeats", "Timed runs (the median is reported)", cxxopts::value<int>()->default_value("5"))
      ("no-backward", "Time the forward pass only")
      ("phases", "Also print where each row's time goes (hashing, gather, kernel, merge; backward too)")
      ("inputs", "Generated inputs: structured (tokens around shared centres) or random (normal)",
       cxxopts::value<std::string>()->default_value("structured"))
      ("qkv", "Use q, k, v from this file (torch.save of a dict) instead of random inputs; any lengths",
       cxxopts::value<std::string>())
      ("grid", "Query grid HxW for combiner_axial when N is not a square (e.g. 96x128)",
       cxxopts::value<std::string>())
      ("key-grid", "Key grid HxW for combiner_axial (default: the query grid, halved per side when M = N/4)",
       cxxopts::value<std::string>())
      ("json", "Also write the results as JSON to this file", cxxopts::value<std::string>());
  options.parse_positional({"what"});
  // cxxopts takes no one-letter long options; accept the documented "--n" spelling.
  std::vector<std::string> renamed(argv, argv + argc);
  std::vector<char*> pointers;
  for (auto& arg : renamed) {
    if (arg == "--n") arg = "--lengths";
    else if (arg.rfind("--n=", 0) == 0) arg = "--lengths=" + arg.substr(4);
    pointers.push_back(arg.data());
  }
  argv = pointers.data();
  options.positional_help("attention");
  auto args = parse_command_line(options, argc, argv);
  if (!args) return 0;
  if (!args->count("what")) throw UsageError("missing what to benchmark: longgan bench attention [options]");
  if ((*args)["what"].as<std::string>() != "attention") {
    throw UsageError("unknown benchmark '" + (*args)["what"].as<std::string>() +
                     "'; available: attention, layer, step, loader, checksum");
  }
  return run_attention_bench_command(*args);
}

}  // namespace longgan::app

// longgan bench step: the whole training step as the trainer runs it, for each attention type
// against dense in the same run, and where its time goes (the step's sections, the spectral norms,
// the attention calls' phases and which kernels ran).
#include <torch/cuda.h>

#include <iomanip>
#include <iostream>
#include <sstream>

#include "app/bench/bench_timing.h"
#include "app/cli.h"
#include "app/model_presets.h"
#include "app/run_config.h"
#include "app/session_config.h"
#include "checkpoints/atomic_file.h"
#include "gan/spectral_norm.h"
#include "gan/trainer.h"

namespace longgan::app {
namespace {

struct StepRow {
  std::string attention;
  std::vector<double> step_ms;                 // every timed step
  double median_ms = 0;
  std::map<std::string, double> sections;      // ms per step (profiled run)
  std::map<std::string, double> phases;        // attention phases, ms per step
  std::map<std::string, int64_t> implementations;  // what computed the attention calls, per step
  double profiled_ms = 0;                      // the profiled steps' wall time per step
};

// A trainer on fixed random "real" batches (the data loader is not what this measures).
struct StepCase {
  std::string name;
  std::unique_ptr<gan::GanTrainer> trainer;
  gan::GanTrainer::BatchSource batches;
};

double per_step(double total, int64_t steps) { return total / static_cast<double>(steps); }

std::string format_ms(double ms) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(ms < 10 ? 2 : 1) << ms;
  return out.str();
}

std::string step_table(const std::vector<StepRow>& rows, int64_t images_per_step) {
  std::ostringstream out;
  const int width = 16;
  out << std::left << std::setw(44) << "ms per step (median of the timed steps)";
  for (const auto& row : rows) out << std::right << std::setw(width) << row.attention.substr(0, width - 1);
  out << "\n" << std::left << std::setw(44) << "step";
  for (const auto& row : rows) out << std::right << std::setw(width) << format_ms(row.median_ms);
  out << "\n" << std::left << std::setw(44) << "x dense (first column)";
  for (const auto& row : rows) {
    std::ostringstream ratio;
    ratio << std::fixed << std::setprecision(2) << row.median_ms / rows.front().median_ms;
    out << std::right << std::setw(width) << ratio.str();
  }
  out << "\n" << std::left << std::setw(44) << "real images through D per second";
  for (const auto& row : rows) {
    out << std::right << std::setw(width) << format_ms(1000.0 * static_cast<double>(images_per_step) / row.median_ms);
  }
  out << "\n\nwhere a step goes (ms per step, one profiled run of the same steps):\n";
  auto line = [&](const std::string& name, auto value_of) {
    out << std::left << std::setw(44) << ("  " + name);
    for (const auto& row : rows) out << std::right << std::setw(width) << format_ms(value_of(row));
    out << "\n";
  };
  for (const std::string& section : gan::step_section_names()) {
    line(section, [&](const StepRow& row) { return row.sections.contains(section) ? row.sections.at(section) : 0.0; });
  }
  line("other (latents, bookkeeping)", [](const StepRow& row) {
    double inside = 0;
    for (const std::string& section : gan::step_section_names()) {
      if (row.sections.contains(section)) inside += row.sections.at(section);
    }
    return std::max(0.0, row.profiled_ms - inside);
  });
  line("total (profiled)", [](const StepRow& row) { return row.profiled_ms; });
  out << "inside the sections above:\n";
  line(gan::kSectionSpectralNorm, [](const StepRow& row) {
    return row.sections.contains(gan::kSectionSpectralNorm) ? row.sections.at(gan::kSectionSpectralNorm) : 0.0;
  });
  line("attention calls, all phases", [](const StepRow& row) {
    double sum = 0;
    for (const auto& [phase, ms] : row.phases) sum += ms;
    return sum;
  });
  for (const std::string& phase : attention::phase_names()) {
    line("  " + phase, [&](const StepRow& row) { return row.phases.contains(phase) ? row.phases.at(phase) : 0.0; });
  }
  out << "attention calls per step, by what computed them:\n";
  for (const auto& row : rows) {
    out << "  " << row.attention << ":";
    if (row.implementations.empty()) out << " none";
    for (const auto& [name, count] : row.implementations) out << " " << name << " x" << count;
    out << "\n";
  }
  return out.str();
}

nlohmann::json rows_json(const std::vector<StepRow>& rows) {
  nlohmann::json json = nlohmann::json::array();
  for (const auto& row : rows) {
    json.push_back({{"attention", row.attention},
                    {"step_ms", row.median_ms},
                    {"steps_ms", row.step_ms},
                    {"ratio_to_first", row.median_ms / rows.front().median_ms},
                    {"profiled_step_ms", row.profiled_ms},
                    {"sections", row.sections},
                    {"phases", row.phases},
                    {"implementations", row.implementations}});
  }
  return json;
}

}  // namespace

int run_step_bench_command(int argc, char** argv) {
  cxxopts::Options options(argv[0],
                           "Benchmark the whole training step as train runs it (G and D, their attention, spectral "
                           "norms, optimizers, G_ema), each attention type of --types against the first (dense) in "
                           "the same run, steps interleaved; then where the time of a step goes: its sections, the "
                           "spectral norms and attention phases inside them, and which kernels computed the "
                           "attention. Real batches are fixed random tensors (the loader is not measured: bench "
                           "loader). The model and training flags are train's.\n"
                           "Usage: longgan bench step [--resolution R] [model and training flags] [options]");
  options.add_options()("device", "cpu or cuda", cxxopts::value<std::string>()->default_value("cpu"))(
      "types", "Attention types, ';'-separated, the first the baseline (bare names are fitted to each block)",
      cxxopts::value<std::string>()->default_value("dense;smyrf"))(
      "warmup", "Untimed steps per type before timing", cxxopts::value<int>()->default_value("2"))(
      "repeats", "Timed steps per type (interleaved; the median is reported), then as many profiled",
      cxxopts::value<int>()->default_value("5"))("json", "Also write the results as JSON to this file",
                                                 cxxopts::value<std::string>());
  add_config_flags(options, "model", model_flags());
  add_config_flags(options, "training", train_flags());
  auto parsed = parse_command_line(options, argc, argv);
  if (!parsed) return 0;
  const auto& args = *parsed;
  const std::string device_name = args["device"].as<std::string>();
  if (device_name != "cpu" && device_name != "cuda") throw UsageError("--device takes cpu or cuda, got '" + device_name + "'");
  if (device_name == "cuda" && !torch::cuda::is_available()) {
    throw std::runtime_error("--device cuda: no CUDA GPU is visible to this build (see longgan --version)");
  }
  const at::Device device(device_name);
  const int warmup = args["warmup"].as<int>(), repeats = args["repeats"].as<int>();
  if (warmup < 0 || repeats < 1) throw UsageError("--warmup must be >= 0 and --repeats >= 1");

  nlohmann::json config = default_session_config();
  apply_config_flags(config, args, model_flags());
  apply_config_flags(config, args, train_flags());
  imply_ema_form(config, args);
  config["model"] = resolve_model_section(config["model"], given_model_keys(args), std::nullopt);
  gan::ModelConfig model;
  gan::TrainConfig train;
  try {
    model = gan::model_config_from_json(config["model"]);
    train = gan::train_config_from_json(config["train"]);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  std::vector<std::string> types;
  {
    std::stringstream list(args["types"].as<std::string>());
    for (std::string text; std::getline(list, text, ';');) {
      if (!text.empty()) types.push_back(text);
    }
  }
  if (types.empty()) throw UsageError("--types names no attention type");

  std::vector<StepCase> cases;
  for (const std::string& text : types) {
    gan::ModelConfig with_type = model;
    with_type.attention = parse_spec_option("types", text);
    try {
      with_type.validate();
    } catch (const std::invalid_argument& e) {
      throw UsageError("--types " + text + ": " + e.what());
    }
    StepCase c{text, std::make_unique<gan::GanTrainer>(with_type, train, device), {}};
    const at::Tensor images = at::rand({train.batch, 3, model.resolution, model.resolution}) * 2 - 1;
    const at::Tensor labels = at::randint(model.n_classes, {train.batch}, at::kLong);
    c.batches = [images, labels] { return std::pair{images, labels}; };
    cases.push_back(std::move(c));
  }
  const int64_t images_per_step = train.batch * train.accumulate * train.d_steps;
  std::cout << "device: " << device.str() << "; resolution " << model.resolution << ", ch " << model.ch << ", batch "
            << train.batch << " x " << train.d_steps << " D steps, G attention at";
  for (int64_t site : model.g_attn) std::cout << " " << site;
  std::cout << ", D attention at";
  for (int64_t site : model.d_attn) std::cout << " " << site;
  if (model.d_attn.empty()) std::cout << " none";
  std::cout << "; " << warmup << " warm-up and " << repeats << " timed steps per type, interleaved\n" << std::flush;

  for (auto& c : cases) {
    for (int i = 0; i < warmup; ++i) c.trainer->train_step(c.batches);
  }
  std::vector<StepRow> rows(cases.size());
  for (int r = 0; r < repeats; ++r) {
    for (size_t i = 0; i < cases.size(); ++i) {
      synchronize(device);
      const auto start = std::chrono::steady_clock::now();
      cases[i].trainer->train_step(cases[i].batches);
      synchronize(device);
      rows[i].step_ms.push_back(elapsed_ms(start));
    }
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    StepRow& row = rows[i];
    row.attention = cases[i].name;
    row.median_ms = median(row.step_ms);
    attention::CallProfile profile;
    if (device.is_cuda()) profile.synchronize = [device] { synchronize(device); };
    synchronize(device);
    const auto start = std::chrono::steady_clock::now();
    {
      const attention::ScopedCallProfile recording(profile);
      for (int r = 0; r < repeats; ++r) cases[i].trainer->train_step(cases[i].batches);
      synchronize(device);
    }
    row.profiled_ms = per_step(elapsed_ms(start), repeats);
    for (const auto& [name, ms] : profile.sections) row.sections[name] = per_step(ms, repeats);
    for (const auto& [name, ms] : profile.milliseconds) row.phases[name] = per_step(ms, repeats);
    for (const std::string& name : profile.implementations) ++row.implementations[name];
    for (auto& [name, count] : row.implementations) count /= repeats;
  }
  std::cout << step_table(rows, images_per_step);
  if (args.count("json")) {
    const nlohmann::json doc = {{"device", device.str()},   {"warmup", warmup},  {"repeats", repeats},
                                {"model", config["model"]}, {"train", config["train"]},
                                {"images_per_step", images_per_step}, {"rows", rows_json(rows)}};
    checkpoints::write_file_atomic(args["json"].as<std::string>(), doc.dump(2) + "\n");
    std::cout << "\nwrote " << args["json"].as<std::string>() << "\n";
  }
  return 0;
}

}  // namespace longgan::app

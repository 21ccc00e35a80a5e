#pragma once
// The configuration of a training session as the commands assemble it: defaults, the flag tables
// of the model and training sections, the checks of what a user typed (exit 2 naming the field),
// the data checks before the first step, and the device and sampling settings it names.
#include <cxxopts.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <iosfwd>
#include <set>
#include <string>
#include <vector>

#include "app/run_config.h"
#include "gan/sampling_statistics.h"

namespace longgan::app {

// "cpu" or "cuda" (std::runtime_error when no GPU is visible, std::invalid_argument otherwise).
torch::Device parse_device(const std::string& name);

// The run section's defaults (train's --data, --steps, --seed, ... and the sampling statistics).
nlohmann::json default_run_section();
// {"model": the 32 preset (model_preset), "train": TrainConfig defaults} as JSON.
nlohmann::json default_session_config();
// Flags of the model and training sections (e.g. --ch -> model.ch, --batch -> train.batch).
const std::vector<ConfigFlag>& model_flags();
const std::vector<ConfigFlag>& train_flags();
// The model keys of the model flags given in `args`.
std::set<std::string> given_model_keys(const cxxopts::ParseResult& args);
// The keys of a config's "model" section (none when it has none).
std::set<std::string> model_keys_of(const nlohmann::json& config);
// After apply_config_flags: the EMA form the given flags imply when --ema is not given (--ema-kimg,
// --ema-rampup: half_life; --ema-decay, --ema-start: decay); flags of both forms are a UsageError.
void imply_ema_form(nlohmann::json& config, const cxxopts::ParseResult& args);
// The model summary table (blocks, shapes, parameters, attention tokens) of a model section.
std::string describe_model(const nlohmann::json& model_section);

// Checks everything of `config` that a user typed (model and train sections, run.seed, run.device,
// run.data being a file) before anything is opened or written: a UsageError (exit 2) naming the field.
void check_session_config(const nlohmann::json& config);
// The same check for a config built from a JSON file: `before_flags` is the config as `file` left
// it, before the command-line flags. When the check fails and `before_flags` fails with the same
// message, the value came from the file, and the UsageError names it ("config file 'F': ...").
void check_session_config(const nlohmann::json& config, const nlohmann::json& before_flags, const std::string& file);

// Before the first step: checks the data file's image blocks in order for up to `seconds` (all of
// them for data sets of several GB in the page cache: ~2.5 GB/s), printing one line to `out`; a
// corrupt block throws before anything of the run is written. Blocks left unchecked are checked as
// the loader reaches them.
void verify_data_before_training(const nlohmann::json& config, std::ostream& out, double seconds = 3.0);

// A one-line warning when the data file of `config` is labelled (more than one class) but the
// model is unconditional (model.n_classes 1: the labels go unused), naming the file, its classes
// and the flag that uses them; empty otherwise.
std::string unused_labels_warning(const nlohmann::json& config);

// The batch norm statistics G_ema renders with, from a run section ("sampling_stats": running |
// batch | standing, "standing_stats": passes; absent keys keep gan::SamplingOptions' defaults),
// standing passes of `standing_batch` images. std::invalid_argument for bad values.
gan::SamplingOptions sampling_options(const nlohmann::json& run, int64_t standing_batch);

}  // namespace longgan::app

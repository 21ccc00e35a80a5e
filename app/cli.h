#pragma once
// Shared command-line plumbing of the longgan subcommands.
#include <cxxopts.hpp>
#include <nlohmann/json.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "attention/attention.h"

namespace longgan::app {

// A mistake in how the command was called: main() prints it with a pointer to --help and exits 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Adds --help to `options`, parses, and returns nothing when --help was asked (help printed).
// Unknown options, missing values and stray positional arguments become UsageError, and so does a
// negative --seed (cxxopts would wrap it to 2^64 - n).
std::optional<cxxopts::ParseResult> parse_command_line(cxxopts::Options& options, int argc, char** argv);

// argv with "--n V" / "--n=V" spelled "--count V" / "--count=V" (cxxopts has no one-letter long
// options), and so for each {letter, name} of `more` (sample's {"z", "latents"}); `storage` owns
// the strings the returned pointers point to.
std::vector<char*> alias_n_to_count(int argc, char** argv, std::vector<std::string>& storage,
                                    const std::vector<std::pair<std::string, std::string>>& more = {});

// The value of a required option, or UsageError naming it.
template <class T>
T required(const cxxopts::ParseResult& args, const std::string& name) {
  if (!args.count(name)) throw UsageError("missing required option --" + name);
  return args[name].as<T>();
}

// --truncation: 0 (no truncation) or a positive threshold; negative or NaN is a UsageError.
void check_truncation(double truncation);

// An attention spec given as option --<option>, or UsageError naming the option.
attention::AttentionSpec parse_spec_option(const std::string& option, const std::string& text);

// A ','-separated list of spec texts; a ',' followed by "key=value" continues the previous spec's options
// ("dense,smyrf:hashes=2,q_cluster=64" is two specs).
std::vector<std::string> split_spec_list(const std::string& text);

// split_spec_list, each item parsed as by parse_spec_option.
std::vector<attention::AttentionSpec> parse_spec_list(const std::string& option, const std::string& text);

class CheckpointGenerator;

// The spec `text` names for a checkpoint whose own spec is `own`: a bare type name that is the
// checkpoint's own type keeps the checkpoint's options; anything else is parsed as written
// (UsageError naming --option when malformed).
attention::AttentionSpec resolve_spec_text(const std::string& option, const std::string& text,
                                           const attention::AttentionSpec& own);

// The attention spec of `text` for a checkpoint whose own spec is `own` (resolve_spec_text:
// "smyrf" on a smyrf:q_cluster=256 model keeps q_cluster=256). Checked against the model's attention lengths: one
// that does not fit is a UsageError naming --option.
attention::AttentionSpec fitting_spec(const CheckpointGenerator& generator, const std::string& option,
                                      const std::string& text, const attention::AttentionSpec& own);

// --sampling-stats, --standing-stats and --weights of the commands that render a checkpoint (sample,
// metrics).
void add_sampling_flags(cxxopts::Options& options);
// The given ones as run-section keys ({"sampling_stats": ..., "standing_stats": ...}, absent when not
// given, and always "weights": g_ema | g) for CheckpointGenerator; bad values are a UsageError
// naming the flag.
nlohmann::json sampling_override(const cxxopts::ParseResult& args);

// One subcommand: argv[0] is "longgan <name>". Returns the exit code.
int run_prepare(int argc, char** argv);
int run_train(int argc, char** argv);
int run_sample(int argc, char** argv);
int run_bench(int argc, char** argv);
int run_info(int argc, char** argv);
int run_metrics(int argc, char** argv);
int run_import(int argc, char** argv);
int run_export(int argc, char** argv);
// longgan bench loader, layer and checksum (run_bench hands them their arguments).
int run_loader_bench(int argc, char** argv);
int run_layer_bench_command(int argc, char** argv);
int run_checksum_bench(int argc, char** argv);
int run_step_bench_command(int argc, char** argv);

}  // namespace longgan::app

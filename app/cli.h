#pragma once
// Shared command-line plumbing of the longgan subcommands.
#include <cxxopts.hpp>

#include <optional>
#include <stdexcept>
#include <string>

namespace longgan::app {

// A mistake in how the command was called: main() prints it with a pointer to --help and exits 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Adds --help to `options`, parses, and returns nothing when --help was asked (help printed).
// Unknown options, missing values and stray positional arguments become UsageError.
std::optional<cxxopts::ParseResult> parse_command_line(cxxopts::Options& options, int argc, char** argv);

// The value of a required option, or UsageError naming it.
template <class T>
T required(const cxxopts::ParseResult& args, const std::string& name) {
  if (!args.count(name)) throw UsageError("missing required option --" + name);
  return args[name].as<T>();
}

// One subcommand: argv[0] is "longgan <name>". Returns the exit code.
int run_prepare(int argc, char** argv);
int run_train(int argc, char** argv);
int run_sample(int argc, char** argv);
int run_bench(int argc, char** argv);
int run_info(int argc, char** argv);

}  // namespace longgan::app

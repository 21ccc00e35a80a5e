#include "app/cli.h"

#include <cmath>
#include <iostream>
#include <sstream>

#include "app/checkpoint_generator.h"
#include "app/session_config.h"

namespace longgan::app {

std::optional<cxxopts::ParseResult> parse_command_line(cxxopts::Options& options, int argc, char** argv) {
  options.add_options()("h,help", "Show this help");
  // Before cxxopts, which wraps a negative value of a string-typed --seed (train) or names only the
  // value for an unsigned one (sample, metrics).
  for (int i = 1; i < argc; ++i) {
    const std::string argument = argv[i];
    std::string value;
    if (argument.rfind("--seed=", 0) == 0) value = argument.substr(7);
    if (argument == "--seed" && i + 1 < argc) value = argv[i + 1];
    if (!value.empty() && value[0] == '-') {
      throw UsageError("--seed must be a non-negative integer, got '" + value + "'");
    }
  }
  try {
    auto result = options.parse(argc, argv);
    if (result.count("help")) {
      std::cout << options.help() << std::endl;
      return std::nullopt;
    }
    if (!result.unmatched().empty()) throw UsageError("unexpected argument '" + result.unmatched().front() + "'");
    return result;
  } catch (const cxxopts::exceptions::exception& e) {
    throw UsageError(e.what());
  }
}

void check_truncation(double truncation) {
  if (std::isnan(truncation) || truncation < 0) {
    throw UsageError("--truncation must be >= 0 (0: no truncation), got " + std::to_string(truncation));
  }
}

std::vector<char*> alias_n_to_count(int argc, char** argv, std::vector<std::string>& storage,
                                    const std::vector<std::pair<std::string, std::string>>& more) {
  std::vector<std::pair<std::string, std::string>> aliases{{"n", "count"}};
  aliases.insert(aliases.end(), more.begin(), more.end());
  storage.assign(argv, argv + argc);
  std::vector<char*> pointers;
  for (auto& argument : storage) {
    for (const auto& [letter, name] : aliases) {
      if (argument == "--" + letter) argument = "--" + name;
      if (argument.rfind("--" + letter + "=", 0) == 0) argument = "--" + name + argument.substr(2 + letter.size());
    }
    pointers.push_back(argument.data());
  }
  return pointers;
}

attention::AttentionSpec parse_spec_option(const std::string& option, const std::string& text) {
  try {
    return attention::parse_attention_spec(text);
  } catch (const std::invalid_argument& e) {
    throw UsageError("--" + option + ": " + e.what());
  }
}

std::vector<std::string> split_spec_list(const std::string& text) {
  std::vector<std::string> texts;
  std::stringstream items(text);
  std::string item;
  while (std::getline(items, item, ',')) {
    bool continues_options = item.find('=') != std::string::npos && item.find(':') == std::string::npos;
    if (!texts.empty() && continues_options) {
      texts.back() += "," + item;
    } else {
      texts.push_back(item);
    }
  }
  return texts;
}

std::vector<attention::AttentionSpec> parse_spec_list(const std::string& option, const std::string& text) {
  std::vector<attention::AttentionSpec> specs;
  for (const auto& item : split_spec_list(text)) specs.push_back(parse_spec_option(option, item));
  if (specs.empty()) throw UsageError("--" + option + " needs at least one attention type");
  return specs;
}

attention::AttentionSpec resolve_spec_text(const std::string& option, const std::string& text,
                                           const attention::AttentionSpec& own) {
  return text.find(':') == std::string::npos && text == attention::type_name(own) ? own
                                                                                   : parse_spec_option(option, text);
}

attention::AttentionSpec fitting_spec(const CheckpointGenerator& generator, const std::string& option,
                                      const std::string& text, const attention::AttentionSpec& own) {
  const auto spec = resolve_spec_text(option, text, own);
  try {
    generator.check_attention(spec);
  } catch (const std::invalid_argument& e) {
    throw UsageError("--" + option + " " + text + " does not fit this checkpoint's model: " + e.what());
  }
  return spec;
}

void add_sampling_flags(cxxopts::Options& options) {
  options.add_options()("sampling-stats",
                        "Batch norm statistics to render with: standing, running or batch (default: the run's own "
                        "setting, see docs/TRAINING.md)",
                        cxxopts::value<std::string>())(
      "standing-stats", "Forward passes that re-estimate the standing statistics (default: the run's)",
      cxxopts::value<int64_t>())(
      "weights", "Which weights render: g_ema (the moving average of G, default) or g (the weights being trained)",
      cxxopts::value<std::string>()->default_value("g_ema"));
}

nlohmann::json sampling_override(const cxxopts::ParseResult& args) {
  nlohmann::json run = nlohmann::json::object();
  if (args.count("sampling-stats")) run["sampling_stats"] = args["sampling-stats"].as<std::string>();
  if (args.count("standing-stats")) run["standing_stats"] = args["standing-stats"].as<int64_t>();
  try {
    sampling_options(run, 1);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string(args.count("standing-stats") ? "--standing-stats / " : "") + "--sampling-stats: " + e.what());
  }
  run["weights"] = args["weights"].as<std::string>();
  try {
    gan::parse_weights(run["weights"].get<std::string>());
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--weights: ") + e.what());
  }
  return run;
}

}  // namespace longgan::app

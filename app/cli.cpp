#include "app/cli.h"

#include <iostream>
#include <sstream>

namespace longgan::app {

std::optional<cxxopts::ParseResult> parse_command_line(cxxopts::Options& options, int argc, char** argv) {
  options.add_options()("h,help", "Show this help");
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

}  // namespace longgan::app

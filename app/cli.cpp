#include "app/cli.h"

#include <iostream>

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

}  // namespace longgan::app

#include "attention/call_options.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <stdexcept>
#include <string>

namespace longgan::attention {

const char* backend_name(Backend backend) {
  switch (backend) {
    case Backend::Reference: return "reference";
    case Backend::Fused: return "fused";
    case Backend::FusedMath: return "fused_math";
    default: return "auto";
  }
}

Backend parse_backend(std::string_view name) {
  for (auto backend : {Backend::Auto, Backend::Reference, Backend::Fused, Backend::FusedMath}) {
    if (name == backend_name(backend)) return backend;
  }
  throw std::invalid_argument("unknown attention backend '" + std::string(name) +
                              "'; backends: auto, reference, fused, fused_math");
}

double resolve_scale(const CallOptions& call, int64_t dqk) {
  if (call.scale) return *call.scale;
  return 1.0 / std::sqrt(static_cast<double>(dqk));
}

at::Generator resolve_generator(const CallOptions& call) {
  if (call.generator) return *call.generator;
  return at::detail::getDefaultCPUGenerator();
}

Grid resolve_grid(const Grid& grid, int64_t length, const char* what) {
  if (grid.height > 0 || grid.width > 0) {
    if (grid.height <= 0 || grid.width <= 0 || grid.height * grid.width != length) {
      throw std::invalid_argument(std::string(what) + " grid " + std::to_string(grid.height) + "x" +
                                  std::to_string(grid.width) + " does not hold " +
                                  std::to_string(length) + " tokens; give height*width == length");
    }
    return grid;
  }
  auto side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(length))));
  if (side * side != length) {
    throw std::invalid_argument(std::string(what) + " length " + std::to_string(length) +
                                " is not a square; give its grid (height x width) explicitly");
  }
  return {side, side};
}

}  // namespace longgan::attention

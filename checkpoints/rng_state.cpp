#include "checkpoints/rng_state.h"

#include <mutex>
#include <stdexcept>

namespace longgan::checkpoints {

TensorMap capture_rng_state() {
  TensorMap state;
  state.emplace("cpu", at::detail::getDefaultCPUGenerator().get_state());
  if (torch::cuda::is_available()) {
    for (int64_t i = 0; i < static_cast<int64_t>(torch::cuda::device_count()); ++i) {
      at::Device device(at::kCUDA, static_cast<c10::DeviceIndex>(i));
      state.emplace(device.str(), at::globalContext().defaultGenerator(device).get_state());
    }
  }
  return state;
}

void restore_rng_state(const TensorMap& state) {
  for (const auto& [name, tensor] : state) {
    if (name == "cpu") {
      at::Generator generator = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(generator.mutex());
      generator.set_state(tensor);
      continue;
    }
    at::Device device(name);  // throws on malformed names
    if (!device.is_cuda()) throw std::runtime_error("unknown random generator '" + name + "' in checkpoint");
    if (!torch::cuda::is_available() || device.index() >= static_cast<int64_t>(torch::cuda::device_count())) continue;
    at::Generator generator = at::globalContext().defaultGenerator(device);
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(tensor);
  }
}

}  // namespace longgan::checkpoints

// libFuzzer: a checkpoint's manifest.json of arbitrary bytes, read by checkpoints::read_manifest.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include <torch/torch.h>  // checkpoint.h relies on the precompiled torch header elsewhere

#include "checkpoints/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("longgan-manifest-fuzz-" + std::to_string(::getpid())) / "step-000001";
  static const bool made = std::filesystem::create_directories(dir);
  (void)made;
  {
    std::ofstream out(dir / "manifest.json", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    (void)longgan::checkpoints::read_manifest(dir);
  } catch (const std::exception&) {
  }
  return 0;
}

// libFuzzer: a packed dataset file (.lgd) of arbitrary bytes, opened and fully verified.
// Any outcome but a clean open or a std::exception (a crash, an ASan report) is a finding.
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "datasets/packed_format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/longgan-lgd-fuzz-" + std::to_string(::getpid()) + ".lgd";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    longgan::datasets::PackedReader reader(path, /*verify_all=*/true);
    for (int64_t i = 0; i < reader.size(); ++i) {
      (void)reader.image(i);
      (void)reader.label(i);
    }
  } catch (const std::exception&) {
  }
  return 0;
}

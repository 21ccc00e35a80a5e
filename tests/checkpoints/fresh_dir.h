#pragma once
// A fresh, empty directory per test under the temp dir (removed first if a previous run left it).
#include <unistd.h>

#include <filesystem>
#include <string>

#include "checkpoints/atomic_file.h"

namespace longgan::checkpoints::testing {

inline std::filesystem::path fresh_dir(const std::string& name) {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("longgan_ckpt_" + name + "_" + std::to_string(::getpid()));
  remove_tree(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace longgan::checkpoints::testing

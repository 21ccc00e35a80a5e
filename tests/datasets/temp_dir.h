#pragma once
// A fresh directory under the system temp dir, removed (without std::filesystem::remove_all,
// which crashes in builds linked with libtorch) when the test ends.
#include <cstdlib>
#include <filesystem>
#include <string>

#include "checkpoints/atomic_file.h"

namespace longgan::datasets::testing {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "longgan-datasets-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed for " + pattern);
    path_ = pattern;
  }
  ~TempDir() { checkpoints::remove_tree(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

}  // namespace longgan::datasets::testing

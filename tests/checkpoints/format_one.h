#pragma once
// A checkpoint of manifest format 1, as the builds before XXH3-64 wrote it: rewrites the manifest
// of a step directory written now with format_version 1 and byte-wise FNV-1a checksums of the
// same files.
#include <filesystem>

#include "checkpoints/atomic_file.h"
#include "checkpoints/checkpoint.h"

namespace longgan::checkpoints::testing {

inline void make_format_one(const std::filesystem::path& step_dir) {
  auto manifest = read_manifest(step_dir);
  manifest["format_version"] = 1;
  for (auto& [file, recorded] : manifest["checksums"].items()) {
    recorded = file_checksum(read_file(step_dir / file), ChecksumAlgorithm::kFnv1a64);
  }
  write_file_atomic(step_dir / "manifest.json", manifest.dump(2) + "\n");
}

}  // namespace longgan::checkpoints::testing

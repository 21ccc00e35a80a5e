#pragma once
// Atomic, resumable, verified checkpoints (DESIGN.md §6).
//
// A run directory holds one directory per checkpoint and a `latest` pointer:
//   RUN/step-000123/manifest.json   format version, step, tensor file list, and the caller's
//                                   fields (model / attention / train config, data fingerprint, metrics),
//                                   and "checksums": file name -> file_checksum of its bytes
//                                   ("xxh3_64:<hex>" from format 2, "fnv1a64:<hex>" in format 1)
//   RUN/step-000123/G.pt, D.pt ...  one file per tensor group: a dict name -> tensor written with
//                                   torch::pickle_save, so Python reads it with torch.load(path)
//   RUN/latest                      text file holding the name of the newest complete step dir
// A checkpoint is written into RUN/.tmp-step-000123-<pid>/, every file and the directory are
// fsynced, the directory is renamed into place, and only then is `latest` replaced (tmp + rename).
// Readers ignore .tmp-* directories; the next write removes them. Pruning renames a step directory
// to .tmp-trash-... before deleting it, so a step directory is whole or gone. Every read checks
// the files against the manifest's checksums, each with the algorithm its prefix names (format-1
// checkpoints keep verifying with FNV-1a); manifests without checksums (older builds) are read
// unverified. A state holding inf or NaN is never written (NonFiniteStateError).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoints/checksum.h"

namespace longgan::checkpoints {

using TensorMap = std::map<std::string, at::Tensor>;

// The manifest format this build writes and the newest it reads. 2: XXH3-64 file checksums;
// 1: FNV-1a file checksums (or none, from builds before checksums), still read and verified.
constexpr int kFormatVersion = 2;

// Thrown by CheckpointWriter::write, before writing anything, for a tensor holding inf or NaN.
struct NonFiniteStateError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "<algorithm>:<16 hex digits>" of `bytes`: "xxh3_64:..." (written now) or "fnv1a64:..." (format 1).
std::string file_checksum(std::string_view bytes, ChecksumAlgorithm algorithm = ChecksumAlgorithm::kXxh3_64);

// "step-000123" (at least six digits).
std::string step_dir_name(int64_t step);

struct RetentionPolicy {
  int keep_last = 3;       // newest complete checkpoints kept (>= 1)
  int64_t keep_every = 0;  // also keep every checkpoint whose step is a multiple of this (0: none)
  void validate() const;   // std::invalid_argument naming the field
};

class CheckpointWriter {
 public:
  explicit CheckpointWriter(std::filesystem::path run_dir, RetentionPolicy policy = {});

  // Writes checkpoint `step`: `files` maps a file stem ("G" -> G.pt) to its tensors (moved to
  // CPU before saving); `manifest` holds the caller's fields, to which format_version, step and
  // files are added. Then moves `latest` to it and prunes old checkpoints per the policy.
  // Returns the new step directory. Writing a step that exists replaces it.
  // Test hook: env LONGGAN_TEST_PAUSE_IN_CHECKPOINT=<seconds> sleeps after the tensor files are
  // written, before the rename (so a test can kill the process mid-write).
  std::filesystem::path write(int64_t step, const nlohmann::json& manifest,
                              const std::map<std::string, TensorMap>& files);

  const std::filesystem::path& run_dir() const { return run_dir_; }

 private:
  void remove_stale_temporaries() const;
  void prune() const;

  std::filesystem::path run_dir_;
  RetentionPolicy policy_;
};

// Marks a step directory so that retention never deletes it (an empty `keep` file).
void mark_keep(const std::filesystem::path& step_dir);

// Complete checkpoints of a run directory (step dirs with a manifest and every file it lists),
// sorted by step. Contents are not verified here (see verify_checkpoint).
std::vector<std::pair<int64_t, std::filesystem::path>> list_checkpoints(const std::filesystem::path& run_dir);

// The step directory `latest` names, or nullopt when the run has no checkpoint yet. When the
// `latest` file is missing but complete step dirs exist (crash between rename and pointer
// update), the newest of them. Throws when `latest` names a missing or incomplete directory.
std::optional<std::filesystem::path> latest_checkpoint(const std::filesystem::path& run_dir);

// A step directory (holds manifest.json) as is, or a run directory resolved through `latest`.
// Throws std::runtime_error naming the path when neither.
std::filesystem::path resolve_checkpoint(const std::filesystem::path& run_or_step_dir);

// The manifest of a step directory; checks it parses and its format version is readable.
nlohmann::json read_manifest(const std::filesystem::path& step_dir);

// Tensors of one file of a step directory ("G" reads G.pt), checked against the manifest's
// checksum; errors name the file.
TensorMap read_tensors(const std::filesystem::path& step_dir, const std::string& file_stem);
TensorMap read_tensors(const std::filesystem::path& step_dir, const std::string& file_stem,
                       const nlohmann::json& manifest);

// How a checkpoint's files are checked: its manifest's format version and the algorithm its
// checksums name (nullopt: the manifest records no checksums, written by a build before them).
struct ChecksumInfo {
  int format_version = 0;
  std::optional<ChecksumAlgorithm> algorithm;
};

// Every problem of a step directory (unreadable manifest, missing file, checksum mismatch, unknown
// checksum algorithm), one message naming the file each; empty when intact. `info`, when given,
// receives how the files were checked.
std::vector<std::string> verify_checkpoint(const std::filesystem::path& step_dir, ChecksumInfo* info = nullptr);

// The newest complete checkpoint before `before_step` that verifies intact, if any.
std::optional<std::filesystem::path> newest_intact_checkpoint(const std::filesystem::path& run_dir,
                                                              int64_t before_step);

struct Checkpoint {
  std::filesystem::path dir;
  int64_t step = 0;
  nlohmann::json manifest;
  std::map<std::string, TensorMap> files;  // every file the manifest lists
};

// resolve_checkpoint + read_manifest + read_tensors of every listed file.
Checkpoint read_checkpoint(const std::filesystem::path& run_or_step_dir);

// Encodes / decodes a tensor dict in torch.save's zip format (torch.load reads it).
std::string serialize_tensors(const TensorMap& tensors);
TensorMap deserialize_tensors(const std::string& bytes, const std::string& what);

}  // namespace longgan::checkpoints

#include "checkpoints/checkpoint.h"
#include "checkpoints/torch_file.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <stdexcept>
#include <thread>

#include "checkpoints/atomic_file.h"

namespace longgan::checkpoints {
namespace fs = std::filesystem;
namespace {

constexpr const char* kManifest = "manifest.json";
constexpr const char* kLatest = "latest";
constexpr const char* kKeepMarker = "keep";
constexpr const char* kTmpPrefix = ".tmp-";

// The step of a name "step-000123", or nullopt for anything else.
std::optional<int64_t> parse_step_dir_name(const std::string& name) {
  constexpr std::string_view prefix = "step-";
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  int64_t step = 0;
  for (size_t i = prefix.size(); i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    step = step * 10 + (name[i] - '0');
  }
  return step;
}

std::string trim(std::string text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  size_t start = 0;
  while (start < text.size() && std::isspace(static_cast<unsigned char>(text[start]))) ++start;
  return text.substr(start);
}

std::optional<std::string> read_latest_name(const fs::path& run_dir) {
  fs::path pointer = run_dir / kLatest;
  if (!fs::exists(pointer)) return std::nullopt;
  std::string name = trim(read_file(pointer));
  if (!parse_step_dir_name(name)) {
    throw std::runtime_error("'" + pointer.string() + "' should hold a checkpoint directory name like step-000123, got '" +
                             name + "'; delete it to fall back to the newest complete step directory");
  }
  return name;
}

// "step-000123" -> missing file names of the manifest's list (empty when all are present);
// nullopt when the manifest cannot be read.
std::optional<std::vector<std::string>> missing_files(const fs::path& step_dir) {
  nlohmann::json manifest;
  try {
    manifest = nlohmann::json::parse(read_file(step_dir / kManifest));
  } catch (const std::exception&) {
    return std::nullopt;
  }
  std::vector<std::string> missing;
  if (!manifest.is_object()) return std::nullopt;
  for (const auto& stem : manifest.value("files", nlohmann::json::array())) {
    if (!stem.is_string()) return std::nullopt;
    std::error_code ec;
    if (!fs::exists(step_dir / (stem.get<std::string>() + ".pt"), ec)) missing.push_back(stem.get<std::string>() + ".pt");
  }
  return missing;
}

// The algorithm of a recorded checksum "xxh3_64:..." / "fnv1a64:...", nullopt for an unknown prefix.
std::optional<ChecksumAlgorithm> algorithm_of(std::string_view recorded) {
  const size_t colon = recorded.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  return checksum_from_tag(recorded.substr(0, colon));
}

// The checksum the manifest records for `file_name` ("G.pt"), or nullopt (older checkpoints).
std::optional<std::string> recorded_checksum(const nlohmann::json& manifest, const std::string& file_name) {
  if (!manifest.contains("checksums") || !manifest["checksums"].is_object()) return std::nullopt;
  const auto& sums = manifest["checksums"];
  if (!sums.contains(file_name) || !sums[file_name].is_string()) return std::nullopt;
  return sums[file_name].get<std::string>();
}

void check_checksum(const nlohmann::json& manifest, const fs::path& file, const std::string& bytes) {
  auto expected = recorded_checksum(manifest, file.filename().string());
  if (!expected) {
    if (manifest.contains("checksums")) {
      throw std::runtime_error("checkpoint file '" + file.string() + "' has no checksum in its manifest: damaged manifest");
    }
    return;  // written before checksums were recorded: accepted (info --verify warns)
  }
  const auto algorithm = algorithm_of(*expected);
  if (!algorithm) {
    throw std::runtime_error("checkpoint file '" + file.string() + "' has a checksum of an unknown algorithm ('" +
                             expected->substr(0, expected->find(':')) +
                             "'): the manifest is damaged or from a newer longgan");
  }
  const std::string actual = file_checksum(bytes, *algorithm);
  if (actual != *expected) {
    throw std::runtime_error("checkpoint file '" + file.string() + "' is damaged: its checksum " + actual +
                             " differs from the " + *expected + " recorded when it was written");
  }
}

// Throws NonFiniteStateError naming the first floating tensor holding inf or NaN.
void check_finite(const std::map<std::string, TensorMap>& files) {
  for (const auto& [stem, tensors] : files) {
    for (const auto& [name, tensor] : tensors) {
      if (!tensor.defined() || !(tensor.is_floating_point() || tensor.is_complex())) continue;
      const int64_t bad = tensor.numel() - at::isfinite(tensor).sum().item<int64_t>();
      if (bad > 0) {
        throw NonFiniteStateError("tensor '" + name + "' of " + stem + ".pt holds " + std::to_string(bad) +
                                  " non-finite value(s) (inf or NaN)");
      }
    }
  }
}

void pause_for_tests() {
  const char* pause = std::getenv("LONGGAN_TEST_PAUSE_IN_CHECKPOINT");
  if (pause == nullptr || *pause == '\0') return;
  std::this_thread::sleep_for(std::chrono::duration<double>(std::atof(pause)));
}

}  // namespace

std::string file_checksum(std::string_view bytes, ChecksumAlgorithm algorithm) {
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx",
                static_cast<unsigned long long>(checksum(algorithm, bytes.data(), bytes.size())));
  return std::string(checksum_tag(algorithm)) + ":" + hex;
}

std::string step_dir_name(int64_t step) {
  if (step < 0) throw std::invalid_argument("checkpoint step must be >= 0, got " + std::to_string(step));
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "step-%06lld", static_cast<long long>(step));
  return buffer;
}

void RetentionPolicy::validate() const {
  if (keep_last < 1) throw std::invalid_argument("checkpoint keep_last must be >= 1, got " + std::to_string(keep_last));
  if (keep_every < 0) throw std::invalid_argument("checkpoint keep_every must be >= 0, got " + std::to_string(keep_every));
}

std::string serialize_tensors(const TensorMap& tensors) {
  c10::impl::GenericDict dict(c10::StringType::get(), c10::TensorType::get());
  for (const auto& [name, tensor] : tensors) {
    if (!tensor.defined()) throw std::invalid_argument("checkpoint tensor '" + name + "' is undefined");
    dict.insert(name, tensor.detach().to(at::kCPU).contiguous());
  }
  // Without TorchScript type tags on the dict (torch_save_bytes): Python's torch.load
  // (weights_only by default) refuses torch.jit._pickle.restore_type_tag.
  return torch_save_bytes(dict);
}

TensorMap deserialize_tensors(const std::string& bytes, const std::string& what) {
  torch::IValue value;
  try {
    value = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot read tensors from '" + what + "' (corrupt or not written by torch.save): " +
                             std::string(e.what()).substr(0, 300));
  }
  if (!value.isGenericDict()) throw std::runtime_error("'" + what + "' does not hold a dict of tensors");
  TensorMap tensors;
  for (const auto& entry : value.toGenericDict()) {
    if (!entry.key().isString() || !entry.value().isTensor()) {
      throw std::runtime_error("'" + what + "' holds a non (name -> tensor) entry");
    }
    tensors.emplace(entry.key().toStringRef(), entry.value().toTensor());
  }
  return tensors;
}

CheckpointWriter::CheckpointWriter(fs::path run_dir, RetentionPolicy policy)
    : run_dir_(std::move(run_dir)), policy_(policy) {
  policy_.validate();
}

void CheckpointWriter::remove_stale_temporaries() const {
  checkpoints::remove_stale_temporaries(run_dir_, /*include_own=*/true);
}

fs::path CheckpointWriter::write(int64_t step, const nlohmann::json& manifest,
                                 const std::map<std::string, TensorMap>& files) {
  if (!manifest.is_object()) throw std::invalid_argument("checkpoint manifest must be a JSON object");
  const std::string name = step_dir_name(step);
  check_finite(files);  // before anything is written: a non-finite state is never checkpointed
  fs::create_directories(run_dir_);
  remove_stale_temporaries();

  const fs::path tmp = run_dir_ / (std::string(kTmpPrefix) + name + "-" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  nlohmann::json full = manifest;
  full["format_version"] = kFormatVersion;
  full["step"] = step;
  full["files"] = nlohmann::json::array();
  full["checksums"] = nlohmann::json::object();
  try {
    for (const auto& [stem, tensors] : files) {
      if (stem.empty() || stem.find('/') != std::string::npos || stem == "manifest") {
        throw std::invalid_argument("checkpoint file name '" + stem + "' is not allowed");
      }
      const std::string bytes = serialize_tensors(tensors);
      write_file_durable(tmp / (stem + ".pt"), bytes);
      full["files"].push_back(stem);
      full["checksums"][stem + ".pt"] = file_checksum(bytes);
    }
    pause_for_tests();
    write_file_durable(tmp / kManifest, full.dump(2) + "\n");
    fsync_directory(tmp);
  } catch (...) {
    remove_tree(tmp);  // our own partial directory: a full disk must not stay full
    throw;
  }

  const fs::path final_dir = run_dir_ / name;
  if (fs::exists(final_dir)) {
    // Rewriting a step: move the old one aside (cleaned up as a temporary), then rename.
    fs::rename(final_dir, run_dir_ / (std::string(kTmpPrefix) + "replaced-" + name + "-" + std::to_string(::getpid())));
  }
  fs::rename(tmp, final_dir);
  fsync_directory(run_dir_);
  write_file_atomic(run_dir_ / kLatest, name + "\n");
  remove_stale_temporaries();
  prune();
  return final_dir;
}

void CheckpointWriter::prune() const {
  auto all = list_checkpoints(run_dir_);
  std::set<fs::path> keep;
  if (auto latest = read_latest_name(run_dir_)) keep.insert(run_dir_ / *latest);
  for (size_t i = 0; i < all.size(); ++i) {
    const auto& [step, dir] = all[i];
    bool recent = i + static_cast<size_t>(policy_.keep_last) >= all.size();
    bool periodic = policy_.keep_every > 0 && step % policy_.keep_every == 0;
    if (recent || periodic || fs::exists(dir / kKeepMarker)) keep.insert(dir);
  }
  for (const auto& [step, dir] : all) {
    if (keep.count(dir)) continue;
    // Rename first: a kill while deleting leaves a temporary (removed later), never a step
    // directory with some of its files.
    const fs::path trash = run_dir_ / (std::string(kTmpPrefix) + "trash-" + dir.filename().string() + "-" +
                                       std::to_string(::getpid()));
    fs::rename(dir, trash);
    remove_tree(trash);
  }
  fsync_directory(run_dir_);
}

void mark_keep(const fs::path& step_dir) {
  if (!fs::exists(step_dir / kManifest)) {
    throw std::runtime_error("'" + step_dir.string() + "' is not a checkpoint directory (no " + kManifest + ")");
  }
  write_file_atomic(step_dir / kKeepMarker, "");
}

std::vector<std::pair<int64_t, fs::path>> list_checkpoints(const fs::path& run_dir) {
  std::vector<std::pair<int64_t, fs::path>> found;
  if (!fs::is_directory(run_dir)) return found;
  for (const auto& entry : fs::directory_iterator(run_dir)) {
    auto step = parse_step_dir_name(entry.path().filename().string());
    if (!step || !entry.is_directory() || !fs::exists(entry.path() / kManifest)) continue;
    auto missing = missing_files(entry.path());
    if (missing && missing->empty()) found.emplace_back(*step, entry.path());
  }
  std::sort(found.begin(), found.end());
  return found;
}

std::optional<fs::path> latest_checkpoint(const fs::path& run_dir) {
  if (auto name = read_latest_name(run_dir)) {
    fs::path dir = run_dir / *name;
    if (!fs::exists(dir / kManifest)) {
      throw std::runtime_error("'" + (run_dir / kLatest).string() + "' names '" + *name +
                               "', which is missing or has no " + kManifest);
    }
    if (auto missing = missing_files(dir); missing && !missing->empty()) {
      throw std::runtime_error("checkpoint '" + dir.string() + "' is incomplete: file '" + (dir / missing->front()).string() +
                               "' is missing");
    }
    return dir;
  }
  auto all = list_checkpoints(run_dir);
  if (all.empty()) return std::nullopt;
  return all.back().second;
}

fs::path resolve_checkpoint(const fs::path& path) {
  if (!fs::exists(path)) throw std::runtime_error("checkpoint path '" + path.string() + "' does not exist");
  if (fs::exists(path / kManifest)) return path;
  if (!fs::is_directory(path)) {
    throw std::runtime_error("'" + path.string() + "' is not a checkpoint: give a run directory or a step-NNNNNN directory");
  }
  if (auto latest = latest_checkpoint(path)) return *latest;
  throw std::runtime_error("'" + path.string() + "' holds no checkpoint (no " + kManifest + ", no '" + kLatest +
                           "', no complete step-NNNNNN directory)");
}

nlohmann::json read_manifest(const fs::path& step_dir) {
  fs::path file = step_dir / kManifest;
  if (!fs::exists(file)) throw std::runtime_error("checkpoint '" + step_dir.string() + "' has no " + kManifest);
  nlohmann::json manifest;
  try {
    manifest = nlohmann::json::parse(read_file(file));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("cannot parse '" + file.string() + "': " + e.what());
  }
  if (!manifest.is_object() || !manifest.contains("format_version") || !manifest["format_version"].is_number_integer()) {
    throw std::runtime_error("'" + file.string() + "' has no integer format_version: not a LongGAN checkpoint manifest");
  }
  int version = manifest["format_version"].get<int>();
  if (version > kFormatVersion) {
    throw std::runtime_error("'" + file.string() + "' has format version " + std::to_string(version) +
                             "; this build reads up to version " + std::to_string(kFormatVersion) +
                             ": use a newer longgan");
  }
  return manifest;
}

TensorMap read_tensors(const fs::path& step_dir, const std::string& file_stem, const nlohmann::json& manifest) {
  fs::path file = step_dir / (file_stem + ".pt");
  if (!fs::exists(file)) throw std::runtime_error("checkpoint tensor file '" + file.string() + "' is missing");
  std::string bytes = read_file(file);
  check_checksum(manifest, file, bytes);
  return deserialize_tensors(bytes, file.string());
}

TensorMap read_tensors(const fs::path& step_dir, const std::string& file_stem) {
  return read_tensors(step_dir, file_stem, read_manifest(step_dir));
}

std::vector<std::string> verify_checkpoint(const fs::path& step_dir, ChecksumInfo* info) {
  std::vector<std::string> problems;
  if (info) *info = {};
  nlohmann::json manifest;
  try {
    manifest = read_manifest(step_dir);
  } catch (const std::exception& e) {
    return {e.what()};
  }
  if (info) {
    info->format_version = manifest["format_version"].get<int>();
    if (manifest.contains("checksums") && manifest["checksums"].is_object()) {
      for (const auto& [file, recorded] : manifest["checksums"].items()) {
        if (recorded.is_string()) info->algorithm = algorithm_of(recorded.get<std::string>());
        if (info->algorithm) break;
      }
      if (!info->algorithm) {  // no file listed: the algorithm of the format
        info->algorithm = info->format_version >= 2 ? ChecksumAlgorithm::kXxh3_64 : ChecksumAlgorithm::kFnv1a64;
      }
    }
  }
  for (const auto& stem : manifest.value("files", nlohmann::json::array())) {
    try {
      fs::path file = step_dir / (stem.get<std::string>() + ".pt");
      if (!fs::exists(file)) throw std::runtime_error("checkpoint tensor file '" + file.string() + "' is missing");
      std::string bytes = read_file(file);
      check_checksum(manifest, file, bytes);
      if (!manifest.contains("checksums")) deserialize_tensors(bytes, file.string());  // at least it parses
    } catch (const std::exception& e) {
      problems.push_back(e.what());
    }
  }
  return problems;
}

std::optional<fs::path> newest_intact_checkpoint(const fs::path& run_dir, int64_t before_step) {
  auto all = list_checkpoints(run_dir);
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    if (it->first < before_step && verify_checkpoint(it->second).empty()) return it->second;
  }
  return std::nullopt;
}

Checkpoint read_checkpoint(const fs::path& run_or_step_dir) {
  Checkpoint checkpoint;
  checkpoint.dir = resolve_checkpoint(run_or_step_dir);
  checkpoint.manifest = read_manifest(checkpoint.dir);
  checkpoint.step = checkpoint.manifest.value("step", int64_t{0});
  for (const auto& stem : checkpoint.manifest.value("files", nlohmann::json::array())) {
    std::string name = stem.get<std::string>();
    checkpoint.files.emplace(name, read_tensors(checkpoint.dir, name, checkpoint.manifest));
  }
  return checkpoint;
}

}  // namespace longgan::checkpoints

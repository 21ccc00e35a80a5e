#pragma once
// The checksums of LongGAN's files, in one place: the .lgd dataset's header, record blocks and
// labels (datasets/packed_format) and the checkpoint files (checkpoint.h). Files written now use
// XXH3-64; the FNV-1a variants remain only to read and verify files of format version 1.
// Corruption checks, not cryptographic hashes.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

namespace longgan::checkpoints {

enum class ChecksumAlgorithm {
  kXxh3_64,       // XXH3, 64-bit (xxHash 0.8): .lgd format 2, checkpoint manifest format 2
  kFnv1a64,       // FNV-1a, 64-bit, byte by byte: checkpoint manifest format 1
  kFnv1a64Words,  // FNV-1a, 64-bit, over little-endian 64-bit words: .lgd format 1
};

inline constexpr ChecksumAlgorithm kChecksumAlgorithms[] = {
    ChecksumAlgorithm::kXxh3_64, ChecksumAlgorithm::kFnv1a64, ChecksumAlgorithm::kFnv1a64Words};

// What `info --verify` prints: "XXH3-64" or "FNV-1a".
std::string_view checksum_name(ChecksumAlgorithm algorithm);
// The name in manifests and options: "xxh3_64", "fnv1a64", "fnv1a64_words"; and back (nullopt
// for any other name).
std::string_view checksum_tag(ChecksumAlgorithm algorithm);
std::optional<ChecksumAlgorithm> checksum_from_tag(std::string_view tag);

// XXH3-64 of `size` bytes with `seed` (XXH3_64bits_withSeed; seed 0 is plain XXH3_64bits).
uint64_t xxh3_64(const void* data, size_t size, uint64_t seed = 0);

inline constexpr uint64_t kFnvOffsetBasis = 0xcbf29ce484222325ULL;
// FNV-1a 64 (prime 0x100000001b3) continuing from `state`: byte by byte, or over little-endian
// 64-bit words with the trailing size % 8 bytes one by one. Format-1 files only: neither mixes
// its high bits down, so two flips of bit 63 of the words-variant's state cancel.
uint64_t fnv1a64(const void* data, size_t size, uint64_t state = kFnvOffsetBasis);
uint64_t fnv1a64_words(const void* data, size_t size, uint64_t state = kFnvOffsetBasis);

// `algorithm` over `size` bytes from its default start (seed 0, FNV offset basis).
uint64_t checksum(ChecksumAlgorithm algorithm, const void* data, size_t size);

// XXH3-64 of bytes given piece by piece: digest() equals xxh3_64(all pieces, seed).
class Xxh3Stream {
 public:
  explicit Xxh3Stream(uint64_t seed = 0);
  ~Xxh3Stream();
  Xxh3Stream(const Xxh3Stream&) = delete;
  Xxh3Stream& operator=(const Xxh3Stream&) = delete;

  void reset(uint64_t seed);
  void update(const void* data, size_t size);
  uint64_t digest() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace longgan::checkpoints

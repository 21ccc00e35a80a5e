#include "checkpoints/checksum.h"

#include <cstring>
#include <stdexcept>
#include <string>

// Header-only xxHash (Debian libxxhash-dev; .gpu_deps/include on the GPU machine): the whole
// implementation is compiled into this file, nothing is linked.
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace longgan::checkpoints {
namespace {

constexpr uint64_t kFnvPrime = 0x100000001b3ULL;

struct Names {
  ChecksumAlgorithm algorithm;
  std::string_view name, tag;
};
constexpr Names kNames[] = {{ChecksumAlgorithm::kXxh3_64, "XXH3-64", "xxh3_64"},
                            {ChecksumAlgorithm::kFnv1a64, "FNV-1a", "fnv1a64"},
                            {ChecksumAlgorithm::kFnv1a64Words, "FNV-1a", "fnv1a64_words"}};

const Names& names_of(ChecksumAlgorithm algorithm) {
  for (const auto& names : kNames) {
    if (names.algorithm == algorithm) return names;
  }
  throw std::invalid_argument("unknown checksum algorithm " + std::to_string(static_cast<int>(algorithm)));
}

}  // namespace

std::string_view checksum_name(ChecksumAlgorithm algorithm) { return names_of(algorithm).name; }
std::string_view checksum_tag(ChecksumAlgorithm algorithm) { return names_of(algorithm).tag; }

std::optional<ChecksumAlgorithm> checksum_from_tag(std::string_view tag) {
  for (const auto& names : kNames) {
    if (names.tag == tag) return names.algorithm;
  }
  return std::nullopt;
}

uint64_t xxh3_64(const void* data, size_t size, uint64_t seed) { return XXH3_64bits_withSeed(data, size, seed); }

uint64_t fnv1a64(const void* data, size_t size, uint64_t state) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < size; ++i) state = (state ^ bytes[i]) * kFnvPrime;
  return state;
}

uint64_t fnv1a64_words(const void* data, size_t size, uint64_t state) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t word;
    std::memcpy(&word, bytes + i, 8);
    state = (state ^ word) * kFnvPrime;
  }
  return fnv1a64(bytes + i, size - i, state);
}

uint64_t checksum(ChecksumAlgorithm algorithm, const void* data, size_t size) {
  switch (algorithm) {
    case ChecksumAlgorithm::kXxh3_64:
      return xxh3_64(data, size);
    case ChecksumAlgorithm::kFnv1a64:
      return fnv1a64(data, size);
    case ChecksumAlgorithm::kFnv1a64Words:
      return fnv1a64_words(data, size);
  }
  throw std::invalid_argument("unknown checksum algorithm");
}

struct Xxh3Stream::State {
  XXH3_state_t xxh;  // 64-byte aligned; value-initialized (XXH3_INITSTATE) by make_unique
};

Xxh3Stream::Xxh3Stream(uint64_t seed) : state_(std::make_unique<State>()) { reset(seed); }
Xxh3Stream::~Xxh3Stream() = default;

void Xxh3Stream::reset(uint64_t seed) { XXH3_64bits_reset_withSeed(&state_->xxh, seed); }

void Xxh3Stream::update(const void* data, size_t size) {
  if (size > 0) XXH3_64bits_update(&state_->xxh, data, size);
}

uint64_t Xxh3Stream::digest() const { return XXH3_64bits_digest(&state_->xxh); }

}  // namespace longgan::checkpoints

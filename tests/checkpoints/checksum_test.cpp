// The file checksums: published test vectors, streaming equals one shot, names, and the bit flips
// that format 1's FNV-1a misses and XXH3-64 catches.
#include "checkpoints/checksum.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace longgan::checkpoints {
namespace {

uint64_t xxh3_of(const std::string& text, uint64_t seed = 0) { return xxh3_64(text.data(), text.size(), seed); }

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> bytes(n);
  for (auto& b : bytes) b = static_cast<uint8_t>(rng());
  return bytes;
}

TEST(Checksum, PublishedTestVectors) {
  EXPECT_EQ(xxh3_of(""), 0x2d06800538d394c2ULL);  // XXH3_64bits of no bytes (xxHash's sanity check)
  EXPECT_EQ(xxh3_of("a"), 0xe6c632b61e964e1fULL);
  EXPECT_EQ(fnv1a64("", 0), 0xcbf29ce484222325ULL);  // FNV-1a 64 test vectors
  EXPECT_EQ(fnv1a64("a", 1), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(fnv1a64("foobar", 6), 0x85944171f73967e8ULL);
  // The word-wise variant equals the byte-wise one below 8 bytes, and differs from there on.
  EXPECT_EQ(fnv1a64_words("foobar", 6), 0x85944171f73967e8ULL);
  EXPECT_NE(fnv1a64_words("foobar12", 8), fnv1a64("foobar12", 8));
  EXPECT_EQ(checksum(ChecksumAlgorithm::kXxh3_64, "a", 1), xxh3_of("a"));
  EXPECT_EQ(checksum(ChecksumAlgorithm::kFnv1a64, "a", 1), fnv1a64("a", 1));
  EXPECT_EQ(checksum(ChecksumAlgorithm::kFnv1a64Words, "foobar12", 8), fnv1a64_words("foobar12", 8));
}

TEST(Checksum, SeedChangesTheHash) {
  EXPECT_NE(xxh3_of("block", 0), xxh3_of("block", 1));
  EXPECT_EQ(xxh3_of("block", 0), xxh3_of("block"));
}

TEST(Checksum, StreamEqualsOneShotForAnySplit) {
  const auto bytes = random_bytes(5000, 1);
  for (size_t size : {size_t{0}, size_t{1}, size_t{105}, size_t{240}, size_t{241}, size_t{1024}, size_t{5000}}) {
    for (size_t piece : {size_t{1}, size_t{7}, size_t{64}, size_t{333}, size_t{5000}}) {
      for (uint64_t seed : {uint64_t{0}, uint64_t{3}}) {
        Xxh3Stream stream(seed);
        for (size_t at = 0; at < size; at += piece) stream.update(bytes.data() + at, std::min(piece, size - at));
        ASSERT_EQ(stream.digest(), xxh3_64(bytes.data(), size, seed)) << size << " " << piece << " " << seed;
      }
    }
  }
  Xxh3Stream stream(1);
  stream.update("ab", 2);
  stream.reset(2);  // starts over
  stream.update("cd", 2);
  EXPECT_EQ(stream.digest(), xxh3_of("cd", 2));
}

TEST(Checksum, NamesAndTagsRoundTrip) {
  for (auto algorithm : kChecksumAlgorithms) {
    EXPECT_EQ(checksum_from_tag(checksum_tag(algorithm)), algorithm) << checksum_tag(algorithm);
  }
  EXPECT_EQ(checksum_name(ChecksumAlgorithm::kXxh3_64), "XXH3-64");
  EXPECT_EQ(checksum_name(ChecksumAlgorithm::kFnv1a64), "FNV-1a");
  EXPECT_EQ(checksum_tag(ChecksumAlgorithm::kXxh3_64), "xxh3_64");
  EXPECT_EQ(checksum_from_tag("sha1"), std::nullopt);
  EXPECT_EQ(checksum_from_tag(""), std::nullopt);
}

// Bit 7 of bytes 7 and 15 is bit 63 of two consecutive little-endian words: word-wise FNV-1a
// (dataset format 1) carries a bit-63 difference only into bit 63, so the second flip cancels the
// first. This is why format 2 uses XXH3-64.
TEST(Checksum, TwoBitFlipThatWordWiseFnvMissesIsCaught) {
  auto bytes = random_bytes(105, 2);
  auto flipped = bytes;
  flipped[7] ^= 0x80;
  flipped[15] ^= 0x80;
  EXPECT_EQ(fnv1a64_words(bytes.data(), bytes.size()), fnv1a64_words(flipped.data(), flipped.size()));
  EXPECT_NE(xxh3_64(bytes.data(), bytes.size()), xxh3_64(flipped.data(), flipped.size()));
}

TEST(Checksum, EveryOneBitFlipChangesXxh3) {
  for (size_t size : {size_t{12}, size_t{105}, size_t{300}}) {
    auto bytes = random_bytes(size, 3);
    const uint64_t intact = xxh3_64(bytes.data(), bytes.size());
    for (size_t i = 0; i < size; ++i) {
      for (int bit = 0; bit < 8; ++bit) {
        bytes[i] ^= static_cast<uint8_t>(1 << bit);
        ASSERT_NE(xxh3_64(bytes.data(), bytes.size()), intact) << "byte " << i << " bit " << bit << " of " << size;
        bytes[i] ^= static_cast<uint8_t>(1 << bit);
      }
    }
  }
}

}  // namespace
}  // namespace longgan::checkpoints

#include "datasets/packed_format.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <random>

#include "checkpoints/atomic_file.h"
#include "tests/datasets/temp_dir.h"

namespace longgan::datasets {
namespace {

using testing::TempDir;

struct Fixture {
  std::vector<std::vector<uint8_t>> images;
  std::vector<int64_t> labels;
};

// 150 random 5x7x3 records (3 blocks, the last partial) with labels in [0, 4), in format `version`.
Fixture write_random(const std::filesystem::path& path, int64_t count = 150,
                     uint32_t version = kPackedFormatVersion) {
  Fixture f;
  std::mt19937 rng(7);
  PackedWriter writer(path, 5, 7, 3, 4, version);
  for (int64_t i = 0; i < count; ++i) {
    std::vector<uint8_t> image(5 * 7 * 3);
    for (auto& v : image) v = static_cast<uint8_t>(rng());
    f.images.push_back(image);
    f.labels.push_back(static_cast<int64_t>(rng() % 4));
    writer.add(image.data(), f.labels.back());
  }
  writer.finish();
  return f;
}

std::string error_of(const std::filesystem::path& path, bool verify_all = false) {
  try {
    PackedReader reader(path, verify_all);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(no error)";
}

void patch(const std::filesystem::path& path, std::streamoff at, const std::string& bytes) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(at);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

TEST(PackedFormat, RoundTripIsExact) {
  TempDir dir;
  auto path = dir / "data.lgd";
  auto f = write_random(path);
  PackedReader reader(path, /*verify_all=*/true);
  ASSERT_EQ(reader.size(), 150);
  EXPECT_EQ(reader.height(), 5);
  EXPECT_EQ(reader.width(), 7);
  EXPECT_EQ(reader.channels(), 3);
  EXPECT_EQ(reader.label_count(), 4);
  EXPECT_EQ(reader.block_count(), 3);
  for (int64_t i = 0; i < reader.size(); ++i) {
    auto image = reader.image(i);
    ASSERT_EQ(std::vector<uint8_t>(image.begin(), image.end()), f.images[i]) << "record " << i;
    ASSERT_EQ(reader.label(i), f.labels[i]) << "record " << i;
  }
  EXPECT_EQ(std::filesystem::file_size(path), reader.header().file_bytes());
  EXPECT_THROW(reader.image(150), std::out_of_range);
  EXPECT_FALSE(std::filesystem::exists(path.string() + ".tmp-" + std::to_string(::getpid())));
}

TEST(PackedFormat, FingerprintDependsOnContent) {
  TempDir dir;
  write_random(dir / "a.lgd");
  write_random(dir / "b.lgd");
  write_random(dir / "c.lgd", 149);
  EXPECT_EQ(PackedReader(dir / "a.lgd").fingerprint(), PackedReader(dir / "b.lgd").fingerprint());
  EXPECT_NE(PackedReader(dir / "a.lgd").fingerprint(), PackedReader(dir / "c.lgd").fingerprint());
}

TEST(PackedFormat, WriterWithoutFinishLeavesNothing) {
  TempDir dir;
  auto path = dir / "data.lgd";
  {
    PackedWriter writer(path, 2, 2, 3, 1);
    std::vector<uint8_t> image(12, 1);
    writer.add(image.data(), 0);
    EXPECT_THROW(writer.add(image.data(), 1), std::invalid_argument);  // label outside [0, 1)
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(PackedFormat, WrongMagic) {
  TempDir dir;
  auto path = dir / "data.lgd";
  checkpoints::write_file_atomic(path, "this is a text file, not a dataset at all, at least 64 bytes long......");
  auto message = error_of(path);
  EXPECT_NE(message.find("is not a LongGAN dataset"), std::string::npos) << message;
  EXPECT_NE(message.find(path.string()), std::string::npos) << message;
}

TEST(PackedFormat, NewerVersion) {
  TempDir dir;
  auto path = dir / "data.lgd";
  write_random(path);
  patch(path, 8, std::string("\x04\0\0\0", 4));
  auto message = error_of(path);
  EXPECT_NE(message.find("newer LongGAN"), std::string::npos) << message;
  EXPECT_NE(message.find("upgrade"), std::string::npos) << message;
}

TEST(PackedFormat, Truncated) {
  TempDir dir;
  auto path = dir / "data.lgd";
  write_random(path);
  const auto size = std::filesystem::file_size(path);
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(size - 100)), 0);
  auto message = error_of(path);
  EXPECT_NE(message.find("is truncated (expected " + std::to_string(size) + " bytes, found " +
                         std::to_string(size - 100) + ")"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("re-run longgan prepare"), std::string::npos) << message;
}

TEST(PackedFormat, CorruptedBlock) {
  TempDir dir;
  auto path = dir / "data.lgd";
  write_random(path);
  const int64_t record = 5 * 7 * 3;
  patch(path, kPackedHeaderBytes + 70 * record + 11, "\xff");  // record 70: block 1
  PackedReader reader(path);  // opening checks only the header, size and labels
  reader.verify_block(0);
  reader.verify_block(2);
  try {
    reader.verify_block(1);
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("corrupted block 1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
  EXPECT_NE(error_of(path, /*verify_all=*/true).find("corrupted block 1"), std::string::npos);
}

TEST(PackedFormat, CorruptedHeaderAndLabels) {
  TempDir dir;
  auto path = dir / "data.lgd";
  write_random(path);
  patch(path, 20, "\x06");  // height 5 -> 6
  EXPECT_NE(error_of(path).find("corrupted header"), std::string::npos);
  write_random(path);
  patch(path, kPackedHeaderBytes + 150 * 105 + 8 * 3, "\x09");  // label of record 3
  EXPECT_NE(error_of(path).find("corrupted labels"), std::string::npos);
}

// Overwrites a little-endian field and recomputes the header checksum (bytes 48..55; format 3: of
// bytes 0..47 and 56..63), as a writer with a bug (or a crafted file) would: only the field checks
// can catch it.
template <class T>
void patch_with_valid_header(const std::filesystem::path& path, size_t at, T value) {
  patch(path, at, std::string(reinterpret_cast<const char*>(&value), sizeof(T)));
  std::string bytes(64, '\0');
  std::ifstream(path, std::ios::binary).read(bytes.data(), 64);
  const std::string covered = bytes.substr(0, 48) + bytes.substr(56, 8);
  const uint64_t sum = checkpoints::xxh3_64(covered.data(), covered.size());
  patch(path, 48, std::string(reinterpret_cast<const char*>(&sum), 8));
}

TEST(PackedFormat, FourChannelsWithValidChecksumsIsNamed) {
  TempDir dir;
  auto path = dir / "data.lgd";
  write_random(path);
  patch_with_valid_header<uint32_t>(path, 28, 4);
  const auto message = error_of(path);
  EXPECT_NE(message.find("channels = 4"), std::string::npos) << message;
  EXPECT_NE(message.find(path.string()), std::string::npos) << message;
}

TEST(PackedFormat, HugeHeaderFieldsAreTruncationNotOverflow) {
  TempDir dir;
  auto path = dir / "data.lgd";
  write_random(path);
  patch_with_valid_header<uint64_t>(path, 12, uint64_t{1} << 62);  // count
  EXPECT_NE(error_of(path).find("is truncated"), std::string::npos) << error_of(path);
  write_random(path);
  patch_with_valid_header<uint32_t>(path, 20, 0xffffffffu);  // height
  EXPECT_NE(error_of(path).find("is truncated"), std::string::npos) << error_of(path);
}

TEST(PackedFormat, LabelOutsideClassesWithValidChecksumIsNamed) {
  TempDir dir;
  auto path = dir / "data.lgd";
  write_random(path);  // 150 records of 105 bytes, labels in [0, 4), 3 blocks
  const size_t labels_at = kPackedHeaderBytes + 150 * 105;
  std::string labels(150 * 8, '\0');
  {
    std::ifstream in(path, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(labels_at));
    in.read(labels.data(), static_cast<std::streamsize>(labels.size()));
  }
  for (int64_t bad : {int64_t{7}, int64_t{-1}}) {
    std::string changed = labels;
    std::memcpy(changed.data() + 8 * 42, &bad, 8);
    patch(path, labels_at, changed);
    const uint64_t sum = checkpoints::xxh3_64(changed.data(), changed.size());
    patch(path, labels_at + changed.size() + 3 * 8, std::string(reinterpret_cast<const char*>(&sum), 8));
    const auto message = error_of(path);
    EXPECT_NE(message.find("label " + std::to_string(bad) + " at image 42"), std::string::npos) << message;
    EXPECT_NE(message.find("label_count = 4"), std::string::npos) << message;
  }
}

std::string verify_error(const std::filesystem::path& path) {
  try {
    PackedReader(path).verify_all();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(no error)";
}

void flip_bit(const std::filesystem::path& path, uint64_t at, int bit) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(at));
  char byte = 0;
  f.read(&byte, 1);
  byte = static_cast<char>(byte ^ (1 << bit));
  f.seekp(static_cast<std::streamoff>(at));
  f.write(&byte, 1);
}

// Issue 20: format 1's word-wise FNV-1a missed bit 7 of bytes 7 and 15 of the first record (two
// flips of bit 63 of its state cancel); format 2 names the block.
TEST(PackedFormat, TwoBitFlipInTheFirstRecordIsDetected) {
  TempDir dir;
  for (uint32_t version : {1u, 2u, 3u}) {
    auto path = dir / ("v" + std::to_string(version) + ".lgd");
    write_random(path, 150, version);
    flip_bit(path, kPackedHeaderBytes + 7, 7);
    flip_bit(path, kPackedHeaderBytes + 15, 7);
    const auto message = verify_error(path);
    if (version == 1) {
      EXPECT_EQ(message, "(no error)") << "format 1 is expected to miss this flip";
    } else {
      EXPECT_NE(message.find("corrupted block 0"), std::string::npos) << message;
    }
  }
}

TEST(PackedFormat, EveryOneBitFlipOfASmallRecordIsDetected) {
  TempDir dir;
  auto path = dir / "data.lgd";
  write_random(path, 3);  // records of 5x7x3 = 105 bytes, one block
  const uint64_t record = 5 * 7 * 3;
  for (uint64_t i : {uint64_t{0}, uint64_t{2}}) {  // the first and the last record
    for (uint64_t byte = 0; byte < record; ++byte) {
      for (int bit = 0; bit < 8; ++bit) {
        const uint64_t at = kPackedHeaderBytes + i * record + byte;
        flip_bit(path, at, bit);
        const auto message = verify_error(path);
        ASSERT_NE(message.find("corrupted block 0"), std::string::npos)
            << "record " << i << " byte " << byte << " bit " << bit << ": " << message;
        flip_bit(path, at, bit);
      }
    }
  }
  EXPECT_EQ(verify_error(path), "(no error)");
}

// A format-1 file written by this build's format-1 path is byte for byte what the builds before
// format 2 wrote (the fingerprint and the file's XXH3-64 below were taken from that code), and reads
// and verifies with FNV-1a.
TEST(PackedFormat, FormatOneFileReadsAndVerifies) {
  TempDir dir;
  auto path = dir / "v1.lgd";
  const auto f = write_random(path, 150, 1);
  const auto bytes = checkpoints::read_file(path);
  EXPECT_EQ(checkpoints::xxh3_64(bytes.data(), bytes.size()), 0xaeca7c43c0c0b8d7ULL);
  PackedReader reader(path, /*verify_all=*/true);
  EXPECT_EQ(reader.header().version, 1u);
  EXPECT_EQ(reader.fingerprint(), 0x1a5088b50fbd8617ULL);
  EXPECT_EQ(reader.checksum_algorithm(), checkpoints::ChecksumAlgorithm::kFnv1a64Words);
  ASSERT_EQ(reader.size(), 150);
  for (int64_t i = 0; i < reader.size(); ++i) {
    auto image = reader.image(i);
    ASSERT_EQ(std::vector<uint8_t>(image.begin(), image.end()), f.images[i]) << "record " << i;
    ASSERT_EQ(reader.label(i), f.labels[i]) << "record " << i;
  }
  // Its checksums still catch what they can: one changed byte in block 1.
  patch(path, kPackedHeaderBytes + 70 * 105 + 11, "\xff");
  EXPECT_NE(verify_error(path).find("corrupted block 1"), std::string::npos) << verify_error(path);
  // The same images in the current format: other checksums, another fingerprint.
  write_random(dir / "v2.lgd");
  PackedReader current(dir / "v2.lgd", true);
  EXPECT_EQ(current.header().version, kPackedFormatVersion);
  EXPECT_EQ(current.checksum_algorithm(), checkpoints::ChecksumAlgorithm::kXxh3_64);
  EXPECT_NE(current.fingerprint(), 0x1a5088b50fbd8617ULL);
}

TEST(PackedFormat, WriterRefusesUnknownVersions) {
  TempDir dir;
  EXPECT_THROW(PackedWriter(dir / "x.lgd", 2, 2, 3, 1, 0), std::invalid_argument);
  EXPECT_THROW(PackedWriter(dir / "x.lgd", 2, 2, 3, 1, kPackedFormatVersion + 1), std::invalid_argument);
}

// Issue 20: a file of no images (well-formed, valid checksums) is named as empty, not truncated.
TEST(PackedFormat, EmptyDatasetIsNamedAsEmpty) {
  TempDir dir;
  for (uint32_t version : {1u, 2u}) {
    auto path = dir / ("empty" + std::to_string(version) + ".lgd");
    PackedWriter(path, 32, 32, 3, 1, version).finish();
    EXPECT_EQ(std::filesystem::file_size(path), kPackedHeaderBytes + 8);
    const auto message = error_of(path);
    EXPECT_NE(message.find("'" + path.string() + "' holds no images"), std::string::npos) << message;
    EXPECT_EQ(message.find("truncated"), std::string::npos) << message;
  }
}

TEST(PackedFormat, DirectoryIsNamed) {
  TempDir dir;
  const auto message = error_of(dir.path());
  EXPECT_NE(message.find("is a directory"), std::string::npos) << message;
  EXPECT_NE(message.find("longgan prepare"), std::string::npos) << message;
}

TEST(PackedFormat, WriterRefusesOtherThanThreeChannels) {
  TempDir dir;
  EXPECT_THROW(PackedWriter(dir / "x.lgd", 2, 2, 4, 1), std::invalid_argument);
}

}  // namespace
}  // namespace longgan::datasets

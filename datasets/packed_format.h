#pragma once
// The packed dataset file (.lgd): one file holding every image of a data set as raw uint8 HWC
// records, memory-mapped by the loader, with checksums that catch truncation and corruption.
// Layout (little-endian, documented in docs/DATASET_FORMAT.md):
//   header (64 bytes) | records (count x height*width*channels bytes) | labels (count x int64)
//   | block checksums (one u64 per block of records_per_block records) | labels checksum (u64)
// Checksums: XXH3-64 from format 2; FNV-1a in format 1 (still read and verified). Format 3 (written
// now) records where the images came from (DataSource) in the header's last 8 bytes.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "checkpoints/checksum.h"

namespace longgan::datasets {

inline constexpr uint32_t kPackedFormatVersion = 3;  // the version written; 1 .. this one are read
inline constexpr uint32_t kFirstVersionWithSource = 3;
inline constexpr uint32_t kRecordsPerBlock = 64;
inline constexpr uint64_t kPackedHeaderBytes = 64;
inline constexpr uint32_t kPackedChannels = 3;  // records are RGB

// The checksum algorithm of a format version: XXH3-64 from version 2, word-wise FNV-1a in version 1.
checkpoints::ChecksumAlgorithm packed_checksum_algorithm(uint32_t version);

// Word-wise FNV-1a (checkpoints::fnv1a64_words), the format-1 hash; gan/fid/inception.cpp names the
// Inception file's fingerprint with it.
inline uint64_t fnv1a64(const uint8_t* data, size_t size, uint64_t seed = checkpoints::kFnvOffsetBasis) {
  return checkpoints::fnv1a64_words(data, size, seed);
}

// Where a data set's images came from (header bytes 56..63 from format 3; unknown before): lets
// `longgan metrics` score the rules of LongGAN's synthetic images.
enum class DataSourceKind : uint8_t { kUnknown = 0, kSynthetic = 1 };
struct DataSource {
  DataSourceKind kind = DataSourceKind::kUnknown;  // an image folder, or a file before format 3
  uint8_t generator = 0;    // synthetic: the generator's version (1: datasets/synthetic.h)
  uint16_t motif_size = 0;  // synthetic: side of the corner motif squares, pixels
  uint32_t seed = 0;        // synthetic: the seed of `prepare --synthetic`

  // Byte 56 kind, 57 generator, 58-59 motif_size, 60-63 seed (little-endian).
  uint64_t encode() const;
  static DataSource decode(uint64_t bits);
  friend bool operator==(const DataSource&, const DataSource&) = default;
};

struct PackedHeader {
  uint32_t version = kPackedFormatVersion;
  uint64_t count = 0;
  uint32_t height = 0, width = 0, channels = 3;
  uint32_t label_count = 1;  // number of classes; labels are in [0, label_count)
  uint64_t fingerprint = 0;
  uint32_t records_per_block = kRecordsPerBlock;
  DataSource source;  // format 3 on

  uint64_t record_bytes() const { return uint64_t{height} * width * channels; }
  uint64_t block_count() const { return (count + records_per_block - 1) / records_per_block; }
  uint64_t file_bytes() const;  // the exact size of a well-formed file with this header
};

class BlockChecksum;

// Writes a packed file: records are appended one by one to PATH.tmp-<pid>; finish() writes the
// labels, checksums and header, fsyncs and renames over PATH. Without finish() (an exception, an
// early return) the destructor removes the temporary file and PATH is left untouched. `version`
// below kPackedFormatVersion writes an older format (tests of reading old files). A file of no
// images is well-formed, but PackedReader refuses it ("holds no images"); prepare never writes one.
class PackedWriter {
 public:
  PackedWriter(std::filesystem::path path, uint32_t height, uint32_t width, uint32_t channels, uint32_t label_count,
               uint32_t version = kPackedFormatVersion);
  ~PackedWriter();
  PackedWriter(const PackedWriter&) = delete;
  PackedWriter& operator=(const PackedWriter&) = delete;

  // Records where the images come from (format 3 on; std::invalid_argument for older versions).
  void set_source(const DataSource& source);
  // Appends one image of height*width*channels bytes (HWC) with its label in [0, label_count).
  void add(const uint8_t* hwc, int64_t label);
  // Completes the file; returns its fingerprint. Throws std::runtime_error naming the file on I/O errors.
  uint64_t finish();
  uint64_t count() const { return header_.count; }

 private:
  void write_all(const void* data, size_t size);
  void close_block();

  std::filesystem::path path_, tmp_path_;
  int fd_ = -1;
  PackedHeader header_;
  std::vector<int64_t> labels_;
  std::vector<uint64_t> block_checksums_;
  std::unique_ptr<BlockChecksum> block_checksum_;  // of the block being written
  uint32_t in_block_ = 0;
  bool finished_ = false;
};

// A read-only, memory-mapped packed file of format 1 or 2. The constructor checks magic, version,
// header checksum, header fields (channels = 3, at least one image: "holds no images", sizes that
// fit the file), file size, the labels checksum and that every label is in [0, label_count)
// (cheap); a directory is named as such; the record blocks are checked by verify_block /
// verify_all (the loader checks each block on first use), each with its version's checksum. Every
// error is a std::runtime_error naming the file and what to do.
class PackedReader {
 public:
  explicit PackedReader(std::filesystem::path path, bool verify_all = false);
  ~PackedReader();
  PackedReader(const PackedReader&) = delete;
  PackedReader& operator=(const PackedReader&) = delete;

  const PackedHeader& header() const { return header_; }
  int64_t size() const { return static_cast<int64_t>(header_.count); }
  int64_t height() const { return header_.height; }
  int64_t width() const { return header_.width; }
  int64_t channels() const { return header_.channels; }
  int64_t label_count() const { return header_.label_count; }
  uint64_t fingerprint() const { return header_.fingerprint; }
  const std::filesystem::path& path() const { return path_; }
  checkpoints::ChecksumAlgorithm checksum_algorithm() const { return packed_checksum_algorithm(header_.version); }

  // Record i (HWC uint8, record_bytes() long) and its label; std::out_of_range outside [0, size()).
  std::span<const uint8_t> image(int64_t i) const;
  int64_t label(int64_t i) const;

  int64_t block_count() const { return static_cast<int64_t>(header_.block_count()); }
  int64_t block_of(int64_t i) const { return i / header_.records_per_block; }
  // Recomputes the checksum of block b; throws "corrupted block b" on a mismatch.
  void verify_block(int64_t b) const;
  // Every block, plus the fingerprint.
  void verify_all() const;
  // Blocks in order (and then the fingerprint) until `seconds` have passed; returns how many
  // blocks were checked (block_count() when all, fingerprint included). Throws as verify_block.
  int64_t verify_within(double seconds) const;

 private:
  std::filesystem::path path_;
  PackedHeader header_;
  const uint8_t* data_ = nullptr;
  size_t mapped_bytes_ = 0;
  const uint8_t* records_ = nullptr;
  const uint8_t* labels_ = nullptr;
  const uint8_t* checksums_ = nullptr;
};

}  // namespace longgan::datasets

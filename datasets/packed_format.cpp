#include "datasets/packed_format.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <bit>
#include <cerrno>
#include <chrono>
#include <limits>
#include <cstring>
#include <stdexcept>

#include "checkpoints/atomic_file.h"

namespace longgan::datasets {
namespace {

static_assert(std::endian::native == std::endian::little, "the packed format is read and written little-endian");

constexpr char kMagic[8] = {'L', 'O', 'N', 'G', 'G', 'A', 'N', '\0'};
// Byte offsets inside the 64-byte header.
constexpr size_t kVersionAt = 8, kCountAt = 12, kHeightAt = 20, kWidthAt = 24, kChannelsAt = 28,
                 kLabelCountAt = 32, kFingerprintAt = 36, kPerBlockAt = 44, kHeaderChecksumAt = 48,
                 kSourceAt = 56;

template <class T>
void put(std::array<uint8_t, kPackedHeaderBytes>& bytes, size_t at, T value) {
  std::memcpy(bytes.data() + at, &value, sizeof(T));
}
template <class T>
T get(const uint8_t* bytes, size_t at) {
  T value;
  std::memcpy(&value, bytes + at, sizeof(T));
  return value;
}

// The labels checksum: the version's hash of the bytes.
uint64_t hash_of(uint32_t version, const uint8_t* data, size_t size) {
  return checkpoints::checksum(packed_checksum_algorithm(version), data, size);
}

// The header checksum: of bytes 0..47, and from format 3 on of the source bytes 56..63 after them.
uint64_t header_checksum(uint32_t version, const uint8_t* header) {
  if (version < kFirstVersionWithSource) return hash_of(version, header, kHeaderChecksumAt);
  checkpoints::Xxh3Stream stream;
  stream.update(header, kHeaderChecksumAt);
  stream.update(header + kSourceAt, kPackedHeaderBytes - kSourceAt);
  return stream.digest();
}

std::array<uint8_t, kPackedHeaderBytes> encode_header(const PackedHeader& h) {
  std::array<uint8_t, kPackedHeaderBytes> bytes{};
  std::memcpy(bytes.data(), kMagic, sizeof(kMagic));
  put(bytes, kVersionAt, h.version);
  put(bytes, kCountAt, h.count);
  put(bytes, kHeightAt, h.height);
  put(bytes, kWidthAt, h.width);
  put(bytes, kChannelsAt, h.channels);
  put(bytes, kLabelCountAt, h.label_count);
  put(bytes, kFingerprintAt, h.fingerprint);
  put(bytes, kPerBlockAt, h.records_per_block);
  if (h.version >= kFirstVersionWithSource) put(bytes, kSourceAt, h.source.encode());
  put(bytes, kHeaderChecksumAt, header_checksum(h.version, bytes.data()));
  return bytes;
}

// Hash of the header's shape fields (everything but the fingerprint and the header checksum),
// the block checksums and the labels checksum.
uint64_t compute_fingerprint(const PackedHeader& h, const uint8_t* block_checksums, uint64_t labels_checksum) {
  const auto bytes = encode_header(h);
  const size_t checksum_bytes = h.block_count() * sizeof(uint64_t);
  if (h.version == 1) {  // FNV-1a continued piece by piece
    uint64_t state = checkpoints::fnv1a64_words(bytes.data(), kFingerprintAt);
    state = checkpoints::fnv1a64_words(bytes.data() + kPerBlockAt, kHeaderChecksumAt - kPerBlockAt, state);
    state = checkpoints::fnv1a64_words(block_checksums, checksum_bytes, state);
    return checkpoints::fnv1a64_words(&labels_checksum, sizeof(labels_checksum), state);
  }
  checkpoints::Xxh3Stream stream;  // XXH3-64 of the pieces one after the other
  stream.update(bytes.data(), kFingerprintAt);
  stream.update(bytes.data() + kPerBlockAt, kHeaderChecksumAt - kPerBlockAt);
  if (h.version >= kFirstVersionWithSource) stream.update(bytes.data() + kSourceAt, kPackedHeaderBytes - kSourceAt);
  stream.update(block_checksums, checksum_bytes);
  stream.update(&labels_checksum, sizeof(labels_checksum));
  return stream.digest();
}

std::string system_error(const std::string& what, const std::filesystem::path& path) {
  return what + " '" + path.string() + "': " + std::strerror(errno);
}

}  // namespace

// The checksum of one block of records, given record by record. Format 2: XXH3-64 of the block's
// record bytes seeded with the block index. Format 1: FNV-1a chain of the record hashes from a
// seed that depends on the block index. Either way swapped blocks are caught too.
class BlockChecksum {
 public:
  BlockChecksum(uint32_t version, uint64_t block) : version_(version) { start(block); }

  void start(uint64_t block) {
    if (version_ == 1) {
      state_ = checkpoints::fnv1a64_words(&block, sizeof(block));
    } else {
      stream_.reset(block);
    }
  }
  void add(const uint8_t* record, uint64_t bytes) {
    if (version_ == 1) {
      const uint64_t h = checkpoints::fnv1a64_words(record, bytes);
      state_ = checkpoints::fnv1a64_words(&h, sizeof(h), state_);
    } else {
      stream_.update(record, bytes);
    }
  }
  uint64_t value() const { return version_ == 1 ? state_ : stream_.digest(); }

 private:
  uint32_t version_;
  uint64_t state_ = 0;
  checkpoints::Xxh3Stream stream_;
};

checkpoints::ChecksumAlgorithm packed_checksum_algorithm(uint32_t version) {
  return version == 1 ? checkpoints::ChecksumAlgorithm::kFnv1a64Words : checkpoints::ChecksumAlgorithm::kXxh3_64;
}

uint64_t DataSource::encode() const {
  return uint64_t{static_cast<uint8_t>(kind)} | uint64_t{generator} << 8 | uint64_t{motif_size} << 16 |
         uint64_t{seed} << 32;
}

DataSource DataSource::decode(uint64_t bits) {
  return {static_cast<DataSourceKind>(bits & 0xff), static_cast<uint8_t>(bits >> 8 & 0xff),
          static_cast<uint16_t>(bits >> 16 & 0xffff), static_cast<uint32_t>(bits >> 32)};
}

uint64_t PackedHeader::file_bytes() const {
  return kPackedHeaderBytes + count * record_bytes() + count * sizeof(int64_t) + block_count() * sizeof(uint64_t) +
         sizeof(uint64_t);
}

// ---------------------------------------------------------------------------------------------- writer

PackedWriter::PackedWriter(std::filesystem::path path, uint32_t height, uint32_t width, uint32_t channels,
                           uint32_t label_count, uint32_t version)
    : path_(std::move(path)) {
  if (version < 1 || version > kPackedFormatVersion) {
    throw std::invalid_argument("PackedWriter for '" + path_.string() + "': format version must be in [1, " +
                                std::to_string(kPackedFormatVersion) + "], got " + std::to_string(version));
  }
  if (height == 0 || width == 0 || channels == 0 || label_count == 0) {
    throw std::invalid_argument("PackedWriter for '" + path_.string() +
                                "': height, width, channels and label_count must be positive");
  }
  if (channels != kPackedChannels) {
    throw std::invalid_argument("PackedWriter for '" + path_.string() + "': channels must be 3 (RGB), got " +
                                std::to_string(channels));
  }
  header_.version = version;
  header_.height = height;
  header_.width = width;
  header_.channels = channels;
  header_.label_count = label_count;
  tmp_path_ = path_;
  tmp_path_ += ".tmp-" + std::to_string(::getpid());
  if (!path_.parent_path().empty()) std::filesystem::create_directories(path_.parent_path());
  fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::runtime_error(system_error("cannot create", tmp_path_));
  auto placeholder = encode_header(header_);  // rewritten by finish()
  write_all(placeholder.data(), placeholder.size());
  block_checksum_ = std::make_unique<BlockChecksum>(version, 0);
}

PackedWriter::~PackedWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!finished_) ::unlink(tmp_path_.c_str());
}

void PackedWriter::write_all(const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd_, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error(system_error("cannot write", tmp_path_) + " (is the disk full?)");
    p += n;
    size -= static_cast<size_t>(n);
  }
}

void PackedWriter::set_source(const DataSource& source) {
  if (header_.version < kFirstVersionWithSource && source != DataSource{}) {
    throw std::invalid_argument("PackedWriter for '" + path_.string() + "': format " +
                                std::to_string(header_.version) + " cannot record the data source (format " +
                                std::to_string(kFirstVersionWithSource) + " on)");
  }
  header_.source = source;
}

void PackedWriter::add(const uint8_t* hwc, int64_t label) {
  if (finished_) throw std::logic_error("PackedWriter::add after finish() for '" + path_.string() + "'");
  if (label < 0 || label >= header_.label_count) {
    throw std::invalid_argument("label " + std::to_string(label) + " outside [0, " +
                                std::to_string(header_.label_count) + ") for '" + path_.string() + "'");
  }
  write_all(hwc, header_.record_bytes());
  labels_.push_back(label);
  block_checksum_->add(hwc, header_.record_bytes());
  ++header_.count;
  if (++in_block_ == header_.records_per_block) close_block();
}

void PackedWriter::close_block() {
  block_checksums_.push_back(block_checksum_->value());
  block_checksum_->start(block_checksums_.size());
  in_block_ = 0;
}

uint64_t PackedWriter::finish() {
  if (finished_) return header_.fingerprint;
  if (in_block_ > 0) close_block();
  const auto* label_bytes = reinterpret_cast<const uint8_t*>(labels_.data());
  const uint64_t labels_checksum = hash_of(header_.version, label_bytes, labels_.size() * sizeof(int64_t));
  write_all(label_bytes, labels_.size() * sizeof(int64_t));
  write_all(block_checksums_.data(), block_checksums_.size() * sizeof(uint64_t));
  write_all(&labels_checksum, sizeof(labels_checksum));
  header_.fingerprint =
      compute_fingerprint(header_, reinterpret_cast<const uint8_t*>(block_checksums_.data()), labels_checksum);
  auto bytes = encode_header(header_);
  if (::pwrite(fd_, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size())) {
    throw std::runtime_error(system_error("cannot write the header of", tmp_path_));
  }
  if (::fsync(fd_) != 0) throw std::runtime_error(system_error("cannot fsync", tmp_path_));
  ::close(fd_);
  fd_ = -1;
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    throw std::runtime_error(system_error("cannot rename '" + tmp_path_.string() + "' to", path_));
  }
  finished_ = true;
  checkpoints::fsync_directory(path_.parent_path().empty() ? std::filesystem::path(".") : path_.parent_path());
  return header_.fingerprint;
}

// ---------------------------------------------------------------------------------------------- reader

PackedReader::PackedReader(std::filesystem::path path, bool verify_all_blocks) : path_(std::move(path)) {
  const std::string name = "'" + path_.string() + "'";
  std::error_code ignored;
  if (std::filesystem::is_directory(path_, ignored)) {
    throw std::runtime_error(name + " is a directory; a packed dataset file (.lgd) is expected: make one from an "
                             "image folder with `longgan prepare --input DIR --output FILE.lgd --resolution R`");
  }
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(system_error("cannot open dataset", path_));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw std::runtime_error(system_error("cannot stat dataset", path_));
  }
  mapped_bytes_ = static_cast<size_t>(st.st_size);
  if (mapped_bytes_ > 0) {
    void* p = ::mmap(nullptr, mapped_bytes_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      throw std::runtime_error(system_error("cannot memory-map dataset", path_));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  try {
    if (mapped_bytes_ < kVersionAt + 4 || std::memcmp(data_, kMagic, sizeof(kMagic)) != 0) {
      throw std::runtime_error(name + " is not a LongGAN dataset (wrong magic bytes); create one with `longgan prepare`");
    }
    header_.version = get<uint32_t>(data_, kVersionAt);
    if (header_.version > kPackedFormatVersion) {
      throw std::runtime_error(name + " was written by a newer LongGAN (dataset format version " +
                               std::to_string(header_.version) + ", this build reads up to " +
                               std::to_string(kPackedFormatVersion) + "); upgrade LongGAN to read it");
    }
    if (header_.version == 0) throw std::runtime_error(name + " has an invalid format version 0; re-run longgan prepare");
    if (mapped_bytes_ < kPackedHeaderBytes) {
      throw std::runtime_error(name + " is truncated (expected at least " + std::to_string(kPackedHeaderBytes) +
                               " bytes, found " + std::to_string(mapped_bytes_) + "); re-run longgan prepare");
    }
    if (get<uint64_t>(data_, kHeaderChecksumAt) != header_checksum(header_.version, data_)) {
      throw std::runtime_error(name + " has a corrupted header (checksum mismatch); re-run longgan prepare");
    }
    header_.count = get<uint64_t>(data_, kCountAt);
    header_.height = get<uint32_t>(data_, kHeightAt);
    header_.width = get<uint32_t>(data_, kWidthAt);
    header_.channels = get<uint32_t>(data_, kChannelsAt);
    header_.label_count = get<uint32_t>(data_, kLabelCountAt);
    header_.fingerprint = get<uint64_t>(data_, kFingerprintAt);
    header_.records_per_block = get<uint32_t>(data_, kPerBlockAt);
    if (header_.version >= kFirstVersionWithSource) header_.source = DataSource::decode(get<uint64_t>(data_, kSourceAt));
    if (header_.records_per_block == 0 || header_.record_bytes() == 0 || header_.label_count == 0) {
      throw std::runtime_error(name + " has an invalid header (zero-sized field); re-run longgan prepare");
    }
    if (header_.channels != kPackedChannels) {
      throw std::runtime_error(name + " has header field channels = " + std::to_string(header_.channels) +
                               " but LongGAN datasets hold RGB images (channels = 3); re-run longgan prepare");
    }
    if (header_.count == 0) {
      throw std::runtime_error(name + " holds no images (its header says count 0); make the dataset from a folder "
                               "holding images with `longgan prepare --input DIR --output FILE.lgd --resolution R`");
    }
    // Sizes computed wide, so that huge header fields cannot wrap around to a matching file size
    // (file_bytes() below is exact once this passes).
    const unsigned __int128 record_bytes =
        static_cast<unsigned __int128>(header_.height) * header_.width * header_.channels;
    const uint64_t blocks = (header_.count + header_.records_per_block - 1) / header_.records_per_block;
    const unsigned __int128 needed =
        record_bytes > mapped_bytes_ || header_.count > mapped_bytes_
            ? ~static_cast<unsigned __int128>(0)
            : kPackedHeaderBytes + header_.count * (record_bytes + sizeof(int64_t)) + (blocks + 1) * sizeof(uint64_t);
    if (needed > mapped_bytes_ && needed > UINT64_MAX) {
      throw std::runtime_error(name + " is truncated (its header describes " + std::to_string(header_.count) +
                               " images of " + std::to_string(header_.height) + "x" + std::to_string(header_.width) +
                               "x" + std::to_string(header_.channels) + ", more than the " +
                               std::to_string(mapped_bytes_) + " bytes of the file); re-run longgan prepare");
    }
    const uint64_t expected = header_.file_bytes();
    if (mapped_bytes_ < expected) {
      throw std::runtime_error(name + " is truncated (expected " + std::to_string(expected) + " bytes, found " +
                               std::to_string(mapped_bytes_) + "); re-run longgan prepare");
    }
    if (mapped_bytes_ > expected) {
      throw std::runtime_error(name + " has " + std::to_string(mapped_bytes_ - expected) +
                               " unexpected trailing bytes (expected " + std::to_string(expected) +
                               "); re-run longgan prepare");
    }
    records_ = data_ + kPackedHeaderBytes;
    labels_ = records_ + header_.count * header_.record_bytes();
    checksums_ = labels_ + header_.count * sizeof(int64_t);
    const uint64_t labels_checksum = get<uint64_t>(checksums_, header_.block_count() * sizeof(uint64_t));
    if (hash_of(header_.version, labels_, header_.count * sizeof(int64_t)) != labels_checksum) {
      throw std::runtime_error(name + " has corrupted labels (checksum mismatch); re-run longgan prepare");
    }
    for (uint64_t i = 0; i < header_.count; ++i) {
      const int64_t label = get<int64_t>(labels_, i * sizeof(int64_t));
      if (label < 0 || label >= static_cast<int64_t>(header_.label_count)) {
        throw std::runtime_error(name + " has label " + std::to_string(label) + " at image " + std::to_string(i) +
                                 ", outside [0, label_count = " + std::to_string(header_.label_count) +
                                 ") of its header; re-run longgan prepare");
      }
    }
    if (verify_all_blocks) verify_all();
  } catch (...) {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), mapped_bytes_);
    data_ = nullptr;
    throw;
  }
}

PackedReader::~PackedReader() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), mapped_bytes_);
}

std::span<const uint8_t> PackedReader::image(int64_t i) const {
  if (i < 0 || i >= size()) {
    throw std::out_of_range("image " + std::to_string(i) + " outside [0, " + std::to_string(size()) + ") in '" +
                            path_.string() + "'");
  }
  const uint64_t bytes = header_.record_bytes();
  return {records_ + static_cast<uint64_t>(i) * bytes, bytes};
}

int64_t PackedReader::label(int64_t i) const {
  if (i < 0 || i >= size()) {
    throw std::out_of_range("label " + std::to_string(i) + " outside [0, " + std::to_string(size()) + ") in '" +
                            path_.string() + "'");
  }
  return get<int64_t>(labels_, static_cast<size_t>(i) * sizeof(int64_t));
}

void PackedReader::verify_block(int64_t b) const {
  if (b < 0 || b >= block_count()) {
    throw std::out_of_range("block " + std::to_string(b) + " outside [0, " + std::to_string(block_count()) +
                            ") in '" + path_.string() + "'");
  }
  const uint64_t bytes = header_.record_bytes();
  const uint64_t first = static_cast<uint64_t>(b) * header_.records_per_block;
  const uint64_t last = std::min<uint64_t>(first + header_.records_per_block, header_.count);
  BlockChecksum checksum(header_.version, static_cast<uint64_t>(b));
  for (uint64_t i = first; i < last; ++i) checksum.add(records_ + i * bytes, bytes);
  if (checksum.value() != get<uint64_t>(checksums_, static_cast<size_t>(b) * sizeof(uint64_t))) {
    throw std::runtime_error("'" + path_.string() + "' has a corrupted block " + std::to_string(b) + " (records " +
                             std::to_string(first) + ".." + std::to_string(last - 1) +
                             ", checksum mismatch); re-run longgan prepare or restore the file");
  }
}

void PackedReader::verify_all() const { verify_within(std::numeric_limits<double>::infinity()); }

int64_t PackedReader::verify_within(double seconds) const {
  const auto start = std::chrono::steady_clock::now();
  for (int64_t b = 0; b < block_count(); ++b) {
    verify_block(b);
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > seconds &&
        b + 1 < block_count()) {
      return b + 1;
    }
  }
  const uint64_t labels_checksum = get<uint64_t>(checksums_, header_.block_count() * sizeof(uint64_t));
  if (compute_fingerprint(header_, checksums_, labels_checksum) != header_.fingerprint) {
    throw std::runtime_error("'" + path_.string() +
                             "' has a corrupted checksum table (fingerprint mismatch); re-run longgan prepare");
  }
  return block_count();
}

}  // namespace longgan::datasets

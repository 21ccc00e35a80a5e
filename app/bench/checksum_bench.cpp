// longgan bench checksum: GB/s of the file checksums (checkpoints/checksum.h) on one core, over a
// buffer of random bytes or a file (memory-mapped; its first pass fills the page cache, untimed).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "app/cli.h"
#include "checkpoints/atomic_file.h"
#include "checkpoints/checksum.h"
#include "datasets/hash.h"

namespace longgan::app {
namespace {

// The bytes to hash: a buffer of random bytes, or a read-only mapping of a file.
class Input {
 public:
  explicit Input(size_t bytes) : buffer_(bytes) {
    uint64_t state = 0;
    for (size_t i = 0; i < bytes; i += 8) {
      const uint64_t word = datasets::mix64(state++);
      std::memcpy(buffer_.data() + i, &word, std::min<size_t>(8, bytes - i));
    }
    data_ = buffer_.data();
    size_ = bytes;
  }
  explicit Input(const std::string& file) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st {};
    if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
      const std::string reason = fd < 0 ? std::strerror(errno) : "not a non-empty regular file";
      if (fd >= 0) ::close(fd);
      throw std::runtime_error("bench checksum: cannot read --file '" + file + "': " + reason);
    }
    size_ = static_cast<size_t>(st.st_size);
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) throw std::runtime_error("bench checksum: cannot memory-map '" + file + "'");
    mapped_ = p;
    data_ = static_cast<const uint8_t*>(p);
  }
  ~Input() {
    if (mapped_) ::munmap(mapped_, size_);
  }
  Input(const Input&) = delete;
  Input& operator=(const Input&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  std::vector<uint8_t> buffer_;
  void* mapped_ = nullptr;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

std::vector<checkpoints::ChecksumAlgorithm> parse_algorithms(const std::string& text) {
  std::vector<checkpoints::ChecksumAlgorithm> algorithms;
  std::stringstream stream(text);
  for (std::string tag; std::getline(stream, tag, ',');) {
    auto algorithm = checkpoints::checksum_from_tag(tag);
    if (!algorithm) {
      throw UsageError("--algorithms: unknown checksum '" + tag + "'; known: xxh3_64, fnv1a64, fnv1a64_words");
    }
    algorithms.push_back(*algorithm);
  }
  if (algorithms.empty()) throw UsageError("--algorithms is empty");
  return algorithms;
}

}  // namespace

int run_checksum_bench(int argc, char** argv) {
  cxxopts::Options options(argv[0], "Measure GB/s of the dataset and checkpoint checksums on one core.\n"
                                    "Usage: longgan bench checksum [--size-mb MB | --file FILE] [options]");
  options.add_options()
      ("size-mb", "Size of the buffer of random bytes, in MiB", cxxopts::value<int64_t>()->default_value("2048"))
      ("file", "Hash this file instead (memory-mapped; the first pass fills the page cache and is not timed)",
       cxxopts::value<std::string>())
      ("algorithms", "Comma-separated: xxh3_64 (written now), fnv1a64 (format-1 checkpoints), fnv1a64_words "
                     "(format-1 datasets)",
       cxxopts::value<std::string>()->default_value("xxh3_64,fnv1a64_words,fnv1a64"))
      ("repeats", "Timed passes per algorithm (the best is reported)", cxxopts::value<int64_t>()->default_value("3"))
      ("json", "Also write the results as JSON to this file", cxxopts::value<std::string>());
  auto parsed = parse_command_line(options, argc, argv);
  if (!parsed) return 0;
  const auto& args = *parsed;
  const auto algorithms = parse_algorithms(args["algorithms"].as<std::string>());
  const int64_t repeats = args["repeats"].as<int64_t>();
  const int64_t size_mb = args["size-mb"].as<int64_t>();
  if (repeats < 1) throw UsageError("--repeats must be >= 1, got " + std::to_string(repeats));
  if (size_mb < 1) throw UsageError("--size-mb must be >= 1, got " + std::to_string(size_mb));
  if (args.count("file") && args.count("size-mb")) throw UsageError("give either --file or --size-mb, not both");

  const bool from_file = args.count("file") > 0;
  const auto input = from_file ? std::make_unique<Input>(args["file"].as<std::string>())
                               : std::make_unique<Input>(static_cast<size_t>(size_mb) << 20);
  const std::string source = from_file ? "file " + args["file"].as<std::string>() : "random bytes in memory";
  if (from_file) (void)checkpoints::xxh3_64(input->data(), input->size());  // page cache

  std::cout << "checksum: " << std::fixed << std::setprecision(1) << static_cast<double>(input->size()) / 1e9
            << " GB (" << source << "), one thread, best of " << repeats << "\n";
  nlohmann::json results = nlohmann::json::array();
  for (const auto algorithm : algorithms) {
    double best = 0;
    uint64_t hash = 0;
    for (int64_t r = 0; r < repeats; ++r) {
      const auto start = std::chrono::steady_clock::now();
      hash = checkpoints::checksum(algorithm, input->data(), input->size());
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      best = r == 0 ? seconds : std::min(best, seconds);
    }
    const double gb_per_s = static_cast<double>(input->size()) / 1e9 / best;
    std::ostringstream hex;
    hex << std::hex << std::setw(16) << std::setfill('0') << hash;
    std::cout << "  " << std::left << std::setw(14) << checkpoints::checksum_tag(algorithm) << std::right
              << std::setprecision(2) << std::setw(8) << gb_per_s << " GB/s  (" << std::setprecision(3) << best
              << " s, hash " << hex.str() << ")\n";
    results.push_back({{"algorithm", checkpoints::checksum_tag(algorithm)}, {"gb_per_s", gb_per_s},
                       {"seconds", best}, {"hash", hex.str()}});
  }
  std::cout << std::flush;
  if (args.count("json")) {
    const nlohmann::json doc{{"bytes", input->size()}, {"source", source}, {"repeats", repeats}, {"threads", 1},
                             {"results", results}};
    checkpoints::write_file_atomic(args["json"].as<std::string>(), doc.dump(2) + "\n");
  }
  return 0;
}

}  // namespace longgan::app

#pragma once
// TensorBoard event files written by hand: a TFRecord stream (length, masked CRC32C of the
// length, payload, masked CRC32C of the payload) of `Event` protocol buffers (tensorflow's
// event.proto / summary.proto): wall_time (1, double), step (2, int64), file_version (3,
// string), summary (5: repeated value (1): tag (1), simple_value (2, float) or image (4:
// height 1, width 2, colorspace 3, encoded_image_string 4)) or session_log (7: status 1). Only these fields are written; the
// `tensorboard` package reads them as scalars and images.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace longgan::app {

// CRC-32C (Castagnoli), as TFRecord uses it, and its masked form ((crc >> 15 | crc << 17) + 0xa282ead8).
uint32_t crc32c(const void* data, size_t size);
uint32_t masked_crc32c(const void* data, size_t size);
// One TFRecord: the framing around `payload`.
std::string tfrecord(const std::string& payload);

class EventWriter {
 public:
  // Creates DIR/events.out.tfevents.<unix seconds>.<host>.<pid> and writes its first event (the
  // file version). std::runtime_error naming the file when it cannot be created.
  explicit EventWriter(const std::filesystem::path& dir);

  // One event at `step` holding one scalar per entry.
  void add_scalars(int64_t step, const std::map<std::string, double>& values);
  // One event at `step` holding a PNG image (`png` the file bytes) of the given size.
  void add_image(int64_t step, const std::string& tag, const std::string& png, int64_t height, int64_t width,
                 int64_t channels);
  // A restart marker at `step` (session_log (7): status START (1)): TensorBoard drops the events
  // of earlier files at steps >= `step`, so that the steps a resumed run repeats show once.
  void add_session_start(int64_t step);
  // Pushes written events to the file (each add_* ends with one too: a reader sees them at once).
  void flush();

  const std::filesystem::path& file() const { return file_; }

 private:
  void write_event(int64_t step, int field, const std::string& body);

  std::filesystem::path file_;
  std::ofstream out_;
};

}  // namespace longgan::app

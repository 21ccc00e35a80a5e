#include "app/train/tensorboard.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <stdexcept>

namespace longgan::app {
namespace {

// Protocol-buffer wire format: a key is (field << 3 | wire type); integers are base-128 varints.
enum WireType { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

void put_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

void put_key(std::string& out, int field, WireType type) { put_varint(out, static_cast<uint64_t>(field) << 3 | type); }

template <class T>
void put_little_endian(std::string& out, T value) {
  // x86-64 and aarch64 are little-endian, as the formats require.
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_key(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out += bytes;
}

void put_int(std::string& out, int field, int64_t value) {
  put_key(out, field, kVarint);
  put_varint(out, static_cast<uint64_t>(value));
}

constexpr std::array<uint32_t, 256> crc32c_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1) ? 0x82f63b78u : 0u);  // reflected polynomial
    table[i] = crc;
  }
  return table;
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

}  // namespace

uint32_t crc32c(const void* data, size_t size) {
  static constexpr auto kTable = crc32c_table();
  const auto* bytes = static_cast<const uint8_t*>(data);
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < size; ++i) crc = kTable[(crc ^ bytes[i]) & 0xff] ^ (crc >> 8);
  return crc ^ 0xffffffffu;
}

uint32_t masked_crc32c(const void* data, size_t size) {
  const uint32_t crc = crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::string tfrecord(const std::string& payload) {
  std::string length;
  put_little_endian<uint64_t>(length, payload.size());
  std::string record = length;
  put_little_endian<uint32_t>(record, masked_crc32c(length.data(), length.size()));
  record += payload;
  put_little_endian<uint32_t>(record, masked_crc32c(payload.data(), payload.size()));
  return record;
}

EventWriter::EventWriter(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
      std::chrono::system_clock::now().time_since_epoch()).count();
  file_ = dir / ("events.out.tfevents." + std::to_string(seconds) + "." + host_name() + "." + std::to_string(::getpid()));
  out_.open(file_, std::ios::binary | std::ios::app);
  if (!out_) throw std::runtime_error("cannot create the TensorBoard event file '" + file_.string() + "'");
  write_event(0, 3, "brain.Event:2");
}

void EventWriter::write_event(int64_t step, int field, const std::string& body) {
  const double wall_time =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::string event;
  put_key(event, 1, kFixed64);
  put_little_endian<double>(event, wall_time);
  put_int(event, 2, step);
  put_bytes(event, field, body);
  out_ << tfrecord(event);
  flush();
}

void EventWriter::add_scalars(int64_t step, const std::map<std::string, double>& values) {
  std::string summary;
  for (const auto& [tag, value] : values) {
    std::string entry;
    put_bytes(entry, 1, tag);
    put_key(entry, 2, kFixed32);
    put_little_endian<float>(entry, static_cast<float>(value));
    put_bytes(summary, 1, entry);
  }
  write_event(step, 5, summary);
}

void EventWriter::add_image(int64_t step, const std::string& tag, const std::string& png, int64_t height,
                            int64_t width, int64_t channels) {
  std::string image;
  put_int(image, 1, height);
  put_int(image, 2, width);
  put_int(image, 3, channels);  // colorspace: 1 grey, 3 RGB, 4 RGBA
  put_bytes(image, 4, png);
  std::string entry;
  put_bytes(entry, 1, tag);
  put_bytes(entry, 4, image);
  std::string summary;
  put_bytes(summary, 1, entry);
  write_event(step, 5, summary);
}

void EventWriter::add_session_start(int64_t step) {
  std::string session_log;
  put_int(session_log, 1, 1);  // SessionLog.START
  write_event(step, 7, session_log);
}

void EventWriter::flush() {
  out_.flush();
  if (!out_) throw std::runtime_error("cannot write the TensorBoard event file '" + file_.string() + "'");
}

}  // namespace longgan::app

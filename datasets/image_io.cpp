#include "datasets/image_io.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "checkpoints/atomic_file.h"
#include "longgan/build_config.h"

#if LONGGAN_HAVE_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

#define STB_IMAGE_WRITE_STATIC  // private copy: no symbol clash with other users of stb
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

namespace longgan::datasets {
namespace {

void append(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<size_t>(size));
}

void check(const std::string& path, int height, int width, int channels) {
  if (height < 1 || width < 1 || (channels != 1 && channels != 3 && channels != 4)) {
    throw std::invalid_argument("cannot write '" + path + "': need height, width >= 1 and 1, 3 or 4 channels, got " +
                                std::to_string(height) + "x" + std::to_string(width) + "x" + std::to_string(channels));
  }
}

uint32_t big_endian32(const std::string& b, size_t at) {
  return static_cast<uint32_t>(static_cast<uint8_t>(b[at])) << 24 | static_cast<uint32_t>(static_cast<uint8_t>(b[at + 1])) << 16 |
         static_cast<uint32_t>(static_cast<uint8_t>(b[at + 2])) << 8 | static_cast<uint8_t>(b[at + 3]);
}

// JPEG: walks the segments from SOI; after each start of scan, the entropy-coded data up to the
// next marker (0xFF not followed by 0x00 or a restart marker). The image must reach its EOI.
std::string jpeg_structure_problem(const std::string& b) {
  auto byte = [&](size_t i) { return static_cast<uint8_t>(b[i]); };
  size_t i = 2;  // after SOI
  while (true) {
    while (i < b.size() && byte(i) != 0xFF) ++i;  // tolerate padding between segments
    while (i < b.size() && byte(i) == 0xFF) ++i;  // fill bytes
    if (i >= b.size()) return "truncated JPEG (no end-of-image marker)";
    const uint8_t marker = byte(i++);
    if (marker == 0xD9) return "";                                     // EOI
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // no length
    if (i + 2 > b.size()) return "truncated JPEG (no end-of-image marker)";
    const size_t length = static_cast<size_t>(byte(i)) << 8 | byte(i + 1);
    if (length < 2) return "corrupt JPEG (segment length " + std::to_string(length) + ")";
    i += length;
    if (i > b.size()) return "truncated JPEG (a segment runs past the end of the file)";
    if (marker == 0xDA) {  // start of scan: skip the entropy-coded data
      while (i + 1 < b.size() && !(byte(i) == 0xFF && byte(i + 1) != 0x00 && !(byte(i + 1) >= 0xD0 && byte(i + 1) <= 0xD7))) {
        ++i;
      }
      if (i + 1 >= b.size()) return "truncated JPEG (image data cut before the end-of-image marker)";
    }
  }
}

// PNG: walks the chunks after the signature; the file must reach its IEND chunk.
std::string png_structure_problem(const std::string& b) {
  size_t i = 8;
  while (true) {
    if (i + 8 > b.size()) return "truncated PNG (no IEND chunk)";
    const uint64_t length = big_endian32(b, i);
    const std::string type = b.substr(i + 4, 4);
    if (i + 12 + length > b.size()) return "truncated PNG (chunk " + type + " runs past the end of the file)";
    if (type == "IEND") return "";
    i += 12 + length;
  }
}

}  // namespace

std::string image_structure_problem(const std::string& bytes) {
  if (bytes.size() >= 3 && static_cast<uint8_t>(bytes[0]) == 0xFF && static_cast<uint8_t>(bytes[1]) == 0xD8 &&
      static_cast<uint8_t>(bytes[2]) == 0xFF) {
    return jpeg_structure_problem(bytes);
  }
  if (bytes.size() >= 8 && bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0) return png_structure_problem(bytes);
  return "";
}

std::optional<RgbImage> decode_rgb_image(const std::filesystem::path& path, std::string& problem) {
#if !LONGGAN_HAVE_OPENCV
  (void)path;
  problem = "this build of LongGAN has no OpenCV to decode images (install libopencv-imgcodecs-dev, "
            "libopencv-imgproc-dev and libopencv-core-dev, as scripts/setup.sh does, and rebuild)";
  return std::nullopt;
#else
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      problem = std::string("cannot open it: ") + std::strerror(errno);
      return std::nullopt;
    }
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) {
      problem = "cannot read it (I/O error)";
      return std::nullopt;
    }
  }
  if (bytes.empty()) {
    problem = "empty file";
    return std::nullopt;
  }
  // libjpeg only warns about a file cut inside its image data (and decodes grey), so the container
  // is checked first.
  problem = image_structure_problem(bytes);
  if (!problem.empty()) return std::nullopt;
  cv::Mat image;
  try {
    image = cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8U, bytes.data()), cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    problem = std::string("OpenCV cannot decode it: ") + e.what();
    return std::nullopt;
  }
  if (image.empty()) {
    problem = "cannot be decoded (not an image, or corrupted)";
    return std::nullopt;
  }
  if (image.depth() == CV_16U) {
    image.convertTo(image, CV_8U, 1.0 / 257.0);
  } else if (image.depth() != CV_8U) {
    problem = "unsupported pixel depth (only 8-bit and 16-bit images)";
    return std::nullopt;
  }
  switch (image.channels()) {
    case 1: cv::cvtColor(image, image, cv::COLOR_GRAY2RGB); break;
    case 3: cv::cvtColor(image, image, cv::COLOR_BGR2RGB); break;
    case 4: cv::cvtColor(image, image, cv::COLOR_BGRA2RGB); break;
    default:
      problem = "unsupported channel count " + std::to_string(image.channels());
      return std::nullopt;
  }
  if (!image.isContinuous()) image = image.clone();
  RgbImage rgb;
  rgb.height = image.rows;
  rgb.width = image.cols;
  rgb.pixels.assign(image.data, image.data + static_cast<size_t>(image.rows) * image.cols * 3);
  return rgb;
#endif
}

std::string encode_png(const uint8_t* hwc, int height, int width, int channels) {
  check("a PNG", height, width, channels);
  std::string bytes;
  if (stbi_write_png_to_func(append, &bytes, width, height, channels, hwc, width * channels) == 0) {
    throw std::runtime_error("cannot encode a " + std::to_string(width) + "x" + std::to_string(height) + " PNG");
  }
  return bytes;
}

void write_png(const std::string& path, const uint8_t* hwc, int height, int width, int channels) {
  check(path, height, width, channels);
  std::string bytes;
  try {
    bytes = encode_png(hwc, height, width, channels);
  } catch (const std::runtime_error&) {
    throw std::runtime_error("cannot encode PNG for '" + path + "'");
  }
  checkpoints::write_file_atomic(path, bytes);
}

void write_jpeg(const std::string& path, const uint8_t* hwc, int height, int width, int channels, int quality) {
  check(path, height, width, channels);
  if (quality < 1 || quality > 100) throw std::invalid_argument("JPEG quality must be in [1, 100] for '" + path + "'");
  std::string bytes;
  if (stbi_write_jpg_to_func(append, &bytes, width, height, channels, hwc, quality) == 0) {
    throw std::runtime_error("cannot encode JPEG for '" + path + "'");
  }
  checkpoints::write_file_atomic(path, bytes);
}

}  // namespace longgan::datasets

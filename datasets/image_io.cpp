#include "datasets/image_io.h"

#include <stdexcept>

#include "checkpoints/atomic_file.h"

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

}  // namespace

void write_png(const std::string& path, const uint8_t* hwc, int height, int width, int channels) {
  check(path, height, width, channels);
  std::string bytes;
  if (stbi_write_png_to_func(append, &bytes, width, height, channels, hwc, width * channels) == 0) {
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

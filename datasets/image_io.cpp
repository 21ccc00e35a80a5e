#include "datasets/image_io.h"

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

}  // namespace

std::optional<RgbImage> decode_rgb_image(const std::filesystem::path& path, std::string& problem) {
#if !LONGGAN_HAVE_OPENCV
  (void)path;
  problem = "this build of LongGAN has no OpenCV to decode images (install libopencv-imgcodecs-dev, "
            "libopencv-imgproc-dev and libopencv-core-dev, as scripts/setup.sh does, and rebuild)";
  return std::nullopt;
#else
  cv::Mat image;
  try {
    image = cv::imread(path.string(), cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    problem = std::string("OpenCV cannot decode it: ") + e.what();
    return std::nullopt;
  }
  if (image.empty()) {
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(path, ec);
    problem = !ec && bytes == 0 ? "empty file" : "cannot be decoded (not an image, or corrupted)";
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

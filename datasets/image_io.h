#pragma once
// Reading image files (OpenCV) and writing them (stb_image_write) atomically: a crash leaves the
// old file or the new one.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace longgan::datasets {

struct RgbImage {
  std::vector<uint8_t> pixels;  // HWC, 3 channels
  int64_t height = 0, width = 0;
};

// Decodes an image file (JPEG, PNG, WebP, ... as OpenCV reads them) to 8-bit RGB: grayscale and
// RGBA are converted, 16-bit scaled by 1/257. nullopt with `problem` set (without the path) when
// the file cannot be used; a build without OpenCV says so in `problem`.
std::optional<RgbImage> decode_rgb_image(const std::filesystem::path& path, std::string& problem);

// For JPEG and PNG file contents: "" when the container is whole (JPEG segments up to the
// end-of-image marker, PNG chunks up to IEND), otherwise what is wrong ("truncated JPEG ...").
// Other formats: "". decode_rgb_image checks this first (libjpeg only warns about cut data).
std::string image_structure_problem(const std::string& bytes);

// The PNG file bytes of an 8-bit image (HWC, channels 1, 3 or 4): the one PNG encoder of the
// project (sample grids, sample PNGs, TensorBoard images). std::invalid_argument for bad sizes.
std::string encode_png(const uint8_t* hwc, int height, int width, int channels);
// Writes an 8-bit image (HWC, channels 1, 3 or 4) as PNG. Throws std::runtime_error naming the path.
void write_png(const std::string& path, const uint8_t* hwc, int height, int width, int channels);
// Same as JPEG with the given quality in [1, 100].
void write_jpeg(const std::string& path, const uint8_t* hwc, int height, int width, int channels, int quality = 95);

}  // namespace longgan::datasets

#pragma once
// Writing images to files (stb_image_write), atomically: a crash leaves the old file or the new one.
#include <cstdint>
#include <string>

namespace longgan::datasets {

// Writes an 8-bit image (HWC, channels 1, 3 or 4) as PNG. Throws std::runtime_error naming the path.
void write_png(const std::string& path, const uint8_t* hwc, int height, int width, int channels);
// Same as JPEG with the given quality in [1, 100].
void write_jpeg(const std::string& path, const uint8_t* hwc, int height, int width, int channels, int quality = 95);

}  // namespace longgan::datasets

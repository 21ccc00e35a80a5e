#pragma once
// Sample grids: images in [-1, 1] tiled into one uint8 picture and written as PNG atomically.
#include <filesystem>
#include <string>

namespace longgan::app {

// images [N, 3, H, W] float in [-1, 1] -> uint8 [rows*(H+pad)+pad, cols*(W+pad)+pad, 3] (HWC),
// `columns` images per row (0: about square), `pad` pixels of black between tiles.
at::Tensor make_grid(const at::Tensor& images, int64_t columns = 0, int64_t pad = 2);

// The PNG file bytes of a uint8 HWC image.
std::string encode_png(const at::Tensor& hwc_uint8);

// Writes a uint8 HWC image as PNG atomically (checkpoints::write_file_atomic).
void write_png_atomic(const std::filesystem::path& path, const at::Tensor& hwc_uint8);

}  // namespace longgan::app

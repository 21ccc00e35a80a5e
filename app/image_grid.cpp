#include "app/image_grid.h"

#include <cmath>
#include <stdexcept>

#include "checkpoints/atomic_file.h"
#include "datasets/image_io.h"
#include "gan/fid/inception.h"

namespace longgan::app {

at::Tensor make_grid(const at::Tensor& images, int64_t columns, int64_t pad) {
  if (images.dim() != 4 || images.size(1) != 3) {
    throw std::invalid_argument("make_grid needs images [N, 3, H, W], got " + std::to_string(images.dim()) + " dims");
  }
  const int64_t n = images.size(0), h = images.size(2), w = images.size(3);
  if (columns <= 0) columns = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(n))));
  const int64_t rows = (n + columns - 1) / columns;
  // The quantizer of the FID's generated images: FID scores exactly the pixels of these PNGs.
  auto pixels = gan::quantize_images(images.to(at::kCPU));
  auto grid = torch::zeros({rows * (h + pad) + pad, columns * (w + pad) + pad, 3}, torch::kUInt8);
  for (int64_t i = 0; i < n; ++i) {
    int64_t top = pad + (i / columns) * (h + pad), left = pad + (i % columns) * (w + pad);
    grid.narrow(0, top, h).narrow(1, left, w).copy_(pixels[i].permute({1, 2, 0}));
  }
  return grid;
}

std::string encode_png(const at::Tensor& hwc_uint8) {
  if (hwc_uint8.dim() != 3 || hwc_uint8.scalar_type() != at::kByte) {
    throw std::invalid_argument("encode_png needs a uint8 [H, W, C] image");
  }
  auto pixels = hwc_uint8.contiguous();
  return datasets::encode_png(pixels.data_ptr<uint8_t>(), static_cast<int>(pixels.size(0)),
                              static_cast<int>(pixels.size(1)), static_cast<int>(pixels.size(2)));
}

void write_png_atomic(const std::filesystem::path& path, const at::Tensor& hwc_uint8) {
  const std::string png = encode_png(hwc_uint8);
  if (!path.parent_path().empty()) std::filesystem::create_directories(path.parent_path());
  checkpoints::write_file_atomic(path, png);
}

}  // namespace longgan::app

#include "app/image_grid.h"

#include <cmath>
#include <stdexcept>

#include "checkpoints/atomic_file.h"

#define STB_IMAGE_WRITE_STATIC  // private copy: no symbol clash with other users of stb
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

namespace longgan::app {

at::Tensor make_grid(const at::Tensor& images, int64_t columns, int64_t pad) {
  if (images.dim() != 4 || images.size(1) != 3) {
    throw std::invalid_argument("make_grid needs images [N, 3, H, W], got " + std::to_string(images.dim()) + " dims");
  }
  const int64_t n = images.size(0), h = images.size(2), w = images.size(3);
  if (columns <= 0) columns = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(n))));
  const int64_t rows = (n + columns - 1) / columns;
  auto pixels = ((images.detach().to(at::kCPU, at::kFloat).clamp(-1, 1) + 1) * 127.5).round().to(at::kByte);
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
  std::string png;
  auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<size_t>(size));
  };
  const int h = static_cast<int>(pixels.size(0)), w = static_cast<int>(pixels.size(1)), c = static_cast<int>(pixels.size(2));
  if (stbi_write_png_to_func(append, &png, w, h, c, pixels.data_ptr<uint8_t>(), w * c) == 0) {
    throw std::runtime_error("cannot encode a " + std::to_string(w) + "x" + std::to_string(h) + " PNG");
  }
  return png;
}

void write_png_atomic(const std::filesystem::path& path, const at::Tensor& hwc_uint8) {
  const std::string png = encode_png(hwc_uint8);
  if (!path.parent_path().empty()) std::filesystem::create_directories(path.parent_path());
  checkpoints::write_file_atomic(path, png);
}

}  // namespace longgan::app

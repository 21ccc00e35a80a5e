#pragma once
// DiffAugment (Zhao et al., NeurIPS 2020, "Differentiable Augmentation for Data-Efficient GAN
// Training"): random augmentations applied to every image D sees, real and generated alike,
// differentiable w.r.t. the images so that G's gradient passes through them. Each sample gets its
// own draw. The random numbers are drawn on the CPU from an explicit generator (the trainer's:
// resume stays bit-exact) and moved to the images' device.
//
// Operations (sizes of an [B, C, H, W] batch):
// - color: per sample, brightness x + b with b ~ U(-0.5, 0.5); then saturation
//   (x - m) * s + m with m the per-pixel mean over channels and s ~ U(0, 2); then contrast
//   (x - m) * c + m with m the mean of the whole image and c ~ U(0.5, 1.5).
// - translation: per sample an integer shift (dy, dx), each uniform in [-S, S] with
//   S = round(H / 8) (resp. W / 8); content moves by (dy, dx), uncovered pixels are 0.
// - cutout: per sample a K x K square (K = round(H / 2), round(W / 2) across) set to 0, its centre
//   uniform over the image as in the authors' code, so a square near an edge is clipped by it.
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace longgan::gan {

enum class DiffAugmentOp { color, translation, cutout };

struct DiffAugmentPolicy {
  std::vector<DiffAugmentOp> ops;  // applied in this order (the order of the policy string)
  bool enabled() const { return !ops.empty(); }
  bool has(DiffAugmentOp op) const;
  bool operator==(const DiffAugmentPolicy&) const = default;
};

// "color,translation,cutout": any subset in any order, comma-separated (spaces around names
// ignored); "" or "none": off. std::invalid_argument naming the bad name and the valid ones for
// an unknown or empty name, and for a name listed twice.
DiffAugmentPolicy parse_diff_augment_policy(const std::string& text);
// The canonical text: names joined by ',' in policy order; "" when off.
std::string to_string(const DiffAugmentPolicy& policy);

// The random parameters of one application, one row per sample (CPU tensors; those of operations
// not in the policy stay undefined). brightness/saturation/contrast: float [B] (the factors
// above); shift_y/shift_x: int64 [B]; cut_y/cut_x: int64 [B], the first row/column of the square
// (may be negative: clipped).
struct DiffAugmentParams {
  at::Tensor brightness, saturation, contrast;
  at::Tensor shift_y, shift_x;
  at::Tensor cut_y, cut_x;

  // The rows `index` (int64 [n]) of every defined tensor: a slice of parameters drawn for a
  // larger batch (data-parallel ranks draw for the global batch and keep their own samples).
  DiffAugmentParams select(const at::Tensor& index) const;
};

// Draws the parameters of `policy` for `batch` images of height x width from `generator`, operation
// by operation in policy order. Nothing is drawn when the policy is off.
DiffAugmentParams draw_diff_augment_params(const DiffAugmentPolicy& policy, int64_t batch, int64_t height,
                                           int64_t width, at::Generator& generator);

// The operations with given parameters (images [B, C, H, W], floating point, any device; the result
// has the images' dtype and device, the input is not modified; every operation is differentiable
// w.r.t. the images). Colour computes reduced-precision images (bf16, fp16) in float and rounds
// the result back; translation and cutout move or zero values, exact in any dtype.
at::Tensor diff_augment_color(const at::Tensor& images, const at::Tensor& brightness, const at::Tensor& saturation,
                              const at::Tensor& contrast);
at::Tensor diff_augment_translation(const at::Tensor& images, const at::Tensor& shift_y, const at::Tensor& shift_x);
at::Tensor diff_augment_cutout(const at::Tensor& images, const at::Tensor& cut_y, const at::Tensor& cut_x);
// The policy's operations in order with `params` (drawn for this batch size).
at::Tensor apply_diff_augment(const at::Tensor& images, const DiffAugmentPolicy& policy,
                              const DiffAugmentParams& params);

// draw_diff_augment_params + apply_diff_augment. Policy off: returns `images` itself and draws
// nothing.
at::Tensor diff_augment(const at::Tensor& images, const DiffAugmentPolicy& policy, at::Generator& generator);

// Largest translation and cutout size for an image side (round(side / 8), round(side / 2)).
int64_t diff_augment_max_shift(int64_t side);
int64_t diff_augment_cutout_size(int64_t side);

}  // namespace longgan::gan

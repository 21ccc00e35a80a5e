#include "gan/diff_augment.h"

#include <algorithm>
#include <array>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace longgan::gan {
namespace {

constexpr std::array<std::pair<const char*, DiffAugmentOp>, 3> kOps{{
    {"color", DiffAugmentOp::color},
    {"translation", DiffAugmentOp::translation},
    {"cutout", DiffAugmentOp::cutout},
}};

const char* name_of(DiffAugmentOp op) {
  for (const auto& [name, value] : kOps) {
    if (value == op) return name;
  }
  return "?";
}

std::string valid_names() {
  std::string names;
  for (const auto& [name, value] : kOps) {
    if (!names.empty()) names += ", ";
    names += name;
  }
  return names + " (any subset, comma-separated), or none";
}

std::string trimmed(const std::string& text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

void check_images(const at::Tensor& images, const char* what) {
  if (!images.defined() || images.dim() != 4 || !images.is_floating_point()) {
    std::ostringstream message;
    message << "DiffAugment " << what << ": expected floating-point images [B, C, H, W], got ";
    if (images.defined()) {
      message << images.sizes() << " " << images.scalar_type();
    } else {
      message << "an undefined tensor";
    }
    throw std::invalid_argument(message.str());
  }
}

// `param` must be a defined tensor of `batch` values; returned on `device` as [B, 1, ..., 1].
at::Tensor per_sample(const at::Tensor& param, int64_t batch, const char* name, const at::TensorOptions& options,
                      int64_t dims) {
  if (!param.defined() || param.dim() != 1 || param.size(0) != batch) {
    std::ostringstream message;
    message << "DiffAugment: " << name << " must hold one value per image (" << batch << "), got ";
    if (param.defined()) {
      message << param.sizes();
    } else {
      message << "an undefined tensor";
    }
    throw std::invalid_argument(message.str());
  }
  std::vector<int64_t> shape(static_cast<size_t>(dims), 1);
  shape[0] = batch;
  return param.to(options).view(shape);
}

// Rows [first, first + size) of an image side against a per-sample start [B, 1, 1]: a [B, side, 1]
// or [B, 1, side] (when `across`) boolean mask.
at::Tensor in_range(const at::Tensor& start, int64_t size, int64_t side, bool across) {
  at::Tensor positions = at::arange(side, start.options());
  positions = across ? positions.view({1, 1, side}) : positions.view({1, side, 1});
  return (positions >= start) & (positions < start + size);
}

}  // namespace

bool DiffAugmentPolicy::has(DiffAugmentOp op) const { return std::find(ops.begin(), ops.end(), op) != ops.end(); }

DiffAugmentPolicy parse_diff_augment_policy(const std::string& text) {
  DiffAugmentPolicy policy;
  const std::string whole = trimmed(text);
  if (whole.empty() || whole == "none") return policy;
  std::stringstream items(whole);
  std::string item;
  auto error = [&](const std::string& what) {
    return std::invalid_argument(what + " in DiffAugment policy \"" + text + "\"; valid: " + valid_names());
  };
  int64_t count = 0;
  while (std::getline(items, item, ',')) {
    ++count;
    const std::string name = trimmed(item);
    if (name.empty()) throw error("empty name");
    const auto found = std::find_if(kOps.begin(), kOps.end(), [&](const auto& op) { return name == op.first; });
    if (found == kOps.end()) {
      throw error(name == "none" ? std::string("\"none\" combined with other names") : "unknown name \"" + name + "\"");
    }
    if (policy.has(found->second)) throw error("\"" + name + "\" listed twice");
    policy.ops.push_back(found->second);
  }
  if (whole.back() == ',') throw error("empty name");  // getline drops a trailing empty item
  return policy;
}

std::string to_string(const DiffAugmentPolicy& policy) {
  std::string text;
  for (DiffAugmentOp op : policy.ops) {
    if (!text.empty()) text += ',';
    text += name_of(op);
  }
  return text;
}

int64_t diff_augment_max_shift(int64_t side) { return (side + 4) / 8; }     // round(side / 8), halves up
int64_t diff_augment_cutout_size(int64_t side) { return (side + 1) / 2; }  // round(side / 2), halves up

DiffAugmentParams DiffAugmentParams::select(const at::Tensor& index) const {
  auto rows = [&](const at::Tensor& t) { return t.defined() ? t.index_select(0, index) : t; };
  return {rows(brightness), rows(saturation), rows(contrast), rows(shift_y), rows(shift_x), rows(cut_y), rows(cut_x)};
}

DiffAugmentParams draw_diff_augment_params(const DiffAugmentPolicy& policy, int64_t batch, int64_t height,
                                           int64_t width, at::Generator& generator) {
  if (batch < 0 || height < 1 || width < 1) {
    throw std::invalid_argument("DiffAugment: batch " + std::to_string(batch) + " of " + std::to_string(height) +
                                "x" + std::to_string(width) + " images");
  }
  const auto floats = at::TensorOptions().dtype(at::kFloat);
  const auto longs = at::TensorOptions().dtype(at::kLong);
  DiffAugmentParams params;
  for (DiffAugmentOp op : policy.ops) {
    switch (op) {
      case DiffAugmentOp::color:
        params.brightness = at::rand({batch}, generator, floats) - 0.5;
        params.saturation = at::rand({batch}, generator, floats) * 2;
        params.contrast = at::rand({batch}, generator, floats) + 0.5;
        break;
      case DiffAugmentOp::translation: {
        const int64_t sy = diff_augment_max_shift(height), sx = diff_augment_max_shift(width);
        params.shift_y = at::randint(-sy, sy + 1, {batch}, generator, longs);
        params.shift_x = at::randint(-sx, sx + 1, {batch}, generator, longs);
        break;
      }
      case DiffAugmentOp::cutout: {
        // The square's centre row c is uniform in [0, H - K % 2] and it covers rows
        // [c - K / 2, c - K / 2 + K), clipped to the image (the authors' distribution).
        const int64_t ky = diff_augment_cutout_size(height), kx = diff_augment_cutout_size(width);
        params.cut_y = at::randint(0, height - ky % 2 + 1, {batch}, generator, longs) - ky / 2;
        params.cut_x = at::randint(0, width - kx % 2 + 1, {batch}, generator, longs) - kx / 2;
        break;
      }
    }
  }
  return params;
}

at::Tensor diff_augment_color(const at::Tensor& images, const at::Tensor& brightness, const at::Tensor& saturation,
                              const at::Tensor& contrast) {
  check_images(images, "color");
  const bool reduced = images.scalar_type() == at::kBFloat16 || images.scalar_type() == at::kHalf;
  at::Tensor x = reduced ? images.to(at::kFloat) : images;
  const int64_t batch = images.size(0);
  const auto options = x.options();
  x = x + per_sample(brightness, batch, "brightness", options, 4);
  at::Tensor mean = x.mean(1, /*keepdim=*/true);
  x = (x - mean) * per_sample(saturation, batch, "saturation", options, 4) + mean;
  mean = x.mean({1, 2, 3}, /*keepdim=*/true);
  x = (x - mean) * per_sample(contrast, batch, "contrast", options, 4) + mean;
  return reduced ? x.to(images.scalar_type()) : x;
}

at::Tensor diff_augment_translation(const at::Tensor& images, const at::Tensor& shift_y, const at::Tensor& shift_x) {
  check_images(images, "translation");
  const int64_t batch = images.size(0), channels = images.size(1), height = images.size(2), width = images.size(3);
  const auto longs = at::TensorOptions().dtype(at::kLong).device(images.device());
  // Output pixel (i, j) of sample b reads input (i - dy_b, j - dx_b), or is 0 outside the image.
  const at::Tensor rows = at::arange(height, longs).view({1, height, 1}) - per_sample(shift_y, batch, "shift_y", longs, 3);
  const at::Tensor cols = at::arange(width, longs).view({1, 1, width}) - per_sample(shift_x, batch, "shift_x", longs, 3);
  const at::Tensor inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width);  // [B, H, W]
  const at::Tensor source = rows.clamp(0, height - 1) * width + cols.clamp(0, width - 1);    // [B, H, W]
  const at::Tensor index = source.view({batch, 1, height * width}).expand({batch, channels, height * width});
  const at::Tensor moved = images.reshape({batch, channels, height * width}).gather(2, index).view_as(images);
  return at::where(inside.unsqueeze(1), moved, at::zeros({}, images.options()));
}

at::Tensor diff_augment_cutout(const at::Tensor& images, const at::Tensor& cut_y, const at::Tensor& cut_x) {
  check_images(images, "cutout");
  const int64_t batch = images.size(0), height = images.size(2), width = images.size(3);
  const auto longs = at::TensorOptions().dtype(at::kLong).device(images.device());
  const at::Tensor in_square =
      in_range(per_sample(cut_y, batch, "cut_y", longs, 3), diff_augment_cutout_size(height), height, false) &
      in_range(per_sample(cut_x, batch, "cut_x", longs, 3), diff_augment_cutout_size(width), width, true);
  return at::where(in_square.unsqueeze(1), at::zeros({}, images.options()), images);
}

at::Tensor apply_diff_augment(const at::Tensor& images, const DiffAugmentPolicy& policy,
                              const DiffAugmentParams& params) {
  at::Tensor x = images;
  for (DiffAugmentOp op : policy.ops) {
    switch (op) {
      case DiffAugmentOp::color:
        x = diff_augment_color(x, params.brightness, params.saturation, params.contrast);
        break;
      case DiffAugmentOp::translation:
        x = diff_augment_translation(x, params.shift_y, params.shift_x);
        break;
      case DiffAugmentOp::cutout:
        x = diff_augment_cutout(x, params.cut_y, params.cut_x);
        break;
    }
  }
  return x;
}

at::Tensor diff_augment(const at::Tensor& images, const DiffAugmentPolicy& policy, at::Generator& generator) {
  if (!policy.enabled()) return images;
  check_images(images, "input");
  return apply_diff_augment(images, policy,
                            draw_diff_augment_params(policy, images.size(0), images.size(2), images.size(3), generator));
}

}  // namespace longgan::gan

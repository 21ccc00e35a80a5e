#include "datasets/structure_scores.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "datasets/loader.h"
#include "datasets/synthetic.h"

namespace longgan::datasets {
namespace {

// Per image, the mean absolute difference between each pixel of the left half and its mirror
// image in the right half (the middle column of an odd width pairs with itself and is left out),
// over the pixel pairs `pairs` [H, W/2] (bool) marks. images [n, 3, H, W] int16.
at::Tensor mirror_errors(const at::Tensor& images, const at::Tensor& pairs) {
  const int64_t half = images.size(3) / 2;
  const at::Tensor left = images.narrow(3, 0, half);
  const at::Tensor right = images.flip({3}).narrow(3, 0, half);
  const at::Tensor difference = (left - right).abs().to(at::kDouble) * pairs;  // [n, 3, H, W/2]
  return difference.sum({1, 2, 3}) / (3.0 * pairs.sum().item<double>());
}

// The pixel pairs the synthetic mirror rule relates: all but the rows of the motifs within
// their columns (the top-left motif is not mirrored into the top-right corner, nor the
// bottom-right one into the bottom-left).
at::Tensor synthetic_mirror_pairs(int64_t height, int64_t width, int64_t motif) {
  at::Tensor pairs = at::ones({height, width / 2}, at::kDouble);
  pairs.narrow(0, 0, motif).narrow(1, 0, motif).zero_();
  pairs.narrow(0, height - motif, motif).narrow(1, 0, motif).zero_();
  return pairs;
}

}  // namespace

StructureRules structure_rules(const PackedHeader& header) {
  const DataSource& source = header.source;
  if (source.kind == DataSourceKind::kSynthetic && source.generator == kSyntheticGeneratorVersion) {
    return {true, source.motif_size};
  }
  return {};
}

StructureScorer::StructureScorer(StructureRules rules, double tolerance) : rules_(rules), tolerance_(tolerance) {
  if (!(tolerance >= 0)) throw std::invalid_argument("structure tolerance must be >= 0, got " + std::to_string(tolerance));
  if (rules.synthetic && rules.motif_size < 1) {
    throw std::invalid_argument("synthetic structure rules need a motif size >= 1, got " +
                                std::to_string(rules.motif_size));
  }
}

void StructureScorer::add(const at::Tensor& batch, bool hwc) {
  if (batch.dim() != 4 || batch.scalar_type() != at::kByte || batch.size(hwc ? 3 : 1) != 3) {
    throw std::invalid_argument(std::string("structure scores take uint8 images ") +
                                (hwc ? "[n, H, W, 3]" : "[n, 3, H, W]"));
  }
  const at::Tensor images = (hwc ? batch.permute({0, 3, 1, 2}) : batch).to(at::kCPU).to(at::kShort);
  const int64_t n = images.size(0), height = images.size(2), width = images.size(3);
  if (n == 0) return;
  if (width < 2) throw std::invalid_argument("structure scores need images at least 2 pixels wide");
  at::Tensor pairs = at::ones({height, width / 2}, at::kDouble);
  if (rules_.synthetic) {
    const int64_t m = rules_.motif_size;
    if (2 * m > std::min(height, width)) {
      throw std::invalid_argument("the synthetic motif (" + std::to_string(m) + " px) does not fit " +
                                  std::to_string(height) + "x" + std::to_string(width) + " images twice");
    }
    pairs = synthetic_mirror_pairs(height, width, m);
    const at::Tensor top_left = images.narrow(2, 0, m).narrow(3, 0, m);
    const at::Tensor bottom_right = images.narrow(2, height - m, m).narrow(3, width - m, m);
    const at::Tensor corner = (bottom_right - top_left).abs().to(at::kDouble).mean({1, 2, 3});
    corner_sum_ += corner.sum().item<double>();
    corner_kept_ += (corner <= tolerance_).sum().item<int64_t>();
  }
  const at::Tensor mirror = mirror_errors(images, pairs);
  mirror_sum_ += mirror.sum().item<double>();
  mirror_kept_ += (mirror <= tolerance_).sum().item<int64_t>();
  images_ += n;
}

StructureScores StructureScorer::scores() const {
  StructureScores s;
  s.images = images_;
  s.synthetic = rules_.synthetic;
  s.tolerance = tolerance_;
  if (images_ == 0) return s;
  const double n = static_cast<double>(images_);
  s.mirror_error = mirror_sum_ / n;
  if (rules_.synthetic) {
    s.mirror_kept = static_cast<double>(mirror_kept_) / n;
    s.corner_error = corner_sum_ / n;
    s.corner_kept = static_cast<double>(corner_kept_) / n;
  }
  return s;
}

StructureScores dataset_structure_scores(const PackedReader& reader, const StructureRules& rules, int64_t n,
                                         double tolerance) {
  StructureScorer scorer(rules, tolerance);
  const int64_t count = n <= 0 ? reader.size() : std::min(n, reader.size());
  for (int64_t b = 0; b <= reader.block_of(count - 1); ++b) reader.verify_block(b);
  const int64_t batch = 256;
  for (int64_t first = 0; first < count; first += batch) {
    scorer.add(read_images(reader, first, std::min(batch, count - first)), /*hwc=*/true);
  }
  return scorer.scores();
}

}  // namespace longgan::datasets

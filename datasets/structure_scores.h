#pragma once
// Long-range structure of images, scored: does a generator keep the rules its data obeys?
//   - LongGAN's synthetic images (datasets/synthetic.h) obey two rules exactly: the right half
//     mirrors the left half (outside the corner motifs), and the bottom-right motif square equals
//     the top-left one. Each image's error is the mean absolute difference in levels (0..255)
//     over the pixels a rule relates; an image keeps a rule when its error is at most the
//     tolerance. Real synthetic images score 0 on both.
//   - For any other data only the mirror error of the whole image is reported, as a statistic
//     (faces are near mirror-symmetric), not as a rule.
// Which applies comes from the dataset header's DataSource (format 3 on).
#include <torch/torch.h>

#include <cstdint>

#include "datasets/packed_format.h"

namespace longgan::datasets {

// An image keeps a rule when its mean absolute error is at most this many levels (of 255): well
// above what JPEG-free quantization leaves (0) and well below what breaking a rule costs (tens).
inline constexpr double kDefaultStructureTolerance = 8.0;

struct StructureRules {
  bool synthetic = false;  // the synthetic generator's two rules hold in the data
  int64_t motif_size = 0;  // synthetic: side of the corner motif squares, pixels
};

// The rules of a data set from its header: synthetic ones for LongGAN's generator version 1.
StructureRules structure_rules(const PackedHeader& header);

struct StructureScores {
  int64_t images = 0;
  bool synthetic = false;
  double tolerance = kDefaultStructureTolerance;
  double mirror_error = 0;  // mean over images; synthetic: outside the motif corners
  double mirror_kept = 0;   // synthetic: share of images whose mirror error <= tolerance
  double corner_error = 0;  // synthetic: mean |bottom-right motif - top-left motif|
  double corner_kept = 0;   // synthetic: share of images whose corner error <= tolerance
};

// Accumulates the scores of batches of images.
class StructureScorer {
 public:
  explicit StructureScorer(StructureRules rules, double tolerance = kDefaultStructureTolerance);
  // images [n, 3, H, W] uint8 (as gan::quantize_images makes them) or [n, H, W, 3] with `hwc`.
  // std::invalid_argument for another shape or dtype, or a motif that does not fit the images.
  void add(const at::Tensor& images, bool hwc = false);
  StructureScores scores() const;

 private:
  StructureRules rules_;
  double tolerance_;
  int64_t images_ = 0;
  double mirror_sum_ = 0, corner_sum_ = 0;
  int64_t mirror_kept_ = 0, corner_kept_ = 0;
};

// Scores of the first `n` images of a data set (all of them when n <= 0 or n > size) by `rules`
// (its own: structure_rules(reader.header())).
StructureScores dataset_structure_scores(const PackedReader& reader, const StructureRules& rules, int64_t n,
                                         double tolerance = kDefaultStructureTolerance);

}  // namespace longgan::datasets

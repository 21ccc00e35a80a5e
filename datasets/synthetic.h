#pragma once
// Synthetic images with long-range structure, the built-in default data: a small GAN learns them
// in minutes on a CPU, and only a model whose receptive field spans the whole image gets the
// symmetries right. Each image (deterministic in seed and index, any resolution):
//   - the left half: 2 to 4 soft coloured ellipses on a smooth background gradient;
//   - the right half: the mirror image of the left half (column x equals column R-1-x);
//   - the same small square motif (random colours and 2x2 pattern) in the top-left and the
//     bottom-right corners, drawn after mirroring.
// The label is the number of ellipses minus 2 (3 classes).
//
// Labelled variant (`classes` = K >= 2, `longgan prepare --synthetic N --classes K`): the same
// scenes, but image i is of class i % K, and the class decides what it looks like: every colour of
// the background and the shapes has the class hue (k / K of the colour circle, a small jitter
// around it), and odd classes draw rounded squares where even classes draw ellipses. The hue of
// an image's mean colour names its class. K = 1: the default images, all of class 0.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <vector>

namespace longgan::datasets {

inline constexpr int64_t kSyntheticClasses = 3;
// `classes` of the default data set: labels are the number of ellipses minus 2.
inline constexpr int64_t kSyntheticEllipseLabels = 0;
// The most classes of the labelled variant.
inline constexpr int64_t kSyntheticMaxClasses = 1000;

// An RGB image [resolution, resolution, 3] uint8 HWC. resolution >= 4; classes 0 (the default) or
// in [1, kSyntheticMaxClasses]; motif_size 0 (synthetic_motif_size(resolution)) or in
// [1, resolution / 2] (std::invalid_argument otherwise).
std::vector<uint8_t> make_synthetic_image(uint64_t seed, int64_t index, int64_t resolution,
                                          int64_t classes = kSyntheticEllipseLabels, int64_t motif_size = 0);
// Its label: in [0, kSyntheticClasses) by default, index % classes for classes >= 1.
int64_t synthetic_label(uint64_t seed, int64_t index, int64_t classes = kSyntheticEllipseLabels);
// The number of classes a data set made with `classes` has.
int64_t synthetic_label_count(int64_t classes);
// The hue (in [0, 1), 0 red, 1/3 green, 2/3 blue) of class k of `classes` >= 2.
double synthetic_class_hue(int64_t k, int64_t classes);
// The side of the corner motif square at this resolution unless set: max(2, resolution / 8).
int64_t synthetic_motif_size(int64_t resolution);
// The version of this generator recorded in the .lgd header (DataSource::generator): a change of
// the images' rules gets a new one.
inline constexpr uint8_t kSyntheticGeneratorVersion = 1;

// Writes `count` synthetic images (index 0..count-1) as a packed file that records the generator,
// its motif size and the seed in its header (seed < 2^32: std::invalid_argument otherwise);
// returns its fingerprint.
// `progress(done, count)` is called now and then when given.
uint64_t write_synthetic_dataset(const std::filesystem::path& path, int64_t count, int64_t resolution, uint64_t seed,
                                 const std::function<void(int64_t, int64_t)>& progress = {},
                                 int64_t classes = kSyntheticEllipseLabels, int64_t motif_size = 0);

}  // namespace longgan::datasets

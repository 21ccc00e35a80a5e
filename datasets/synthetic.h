#pragma once
// Synthetic images with long-range structure, the built-in default data: a small GAN learns them
// in minutes on a CPU, and only a model whose receptive field spans the whole image gets the
// symmetries right. Each image (deterministic in seed and index, any resolution):
//   - the left half: 2 to 4 soft coloured ellipses on a smooth background gradient;
//   - the right half: the mirror image of the left half (column x equals column R-1-x);
//   - the same small square motif (random colours and 2x2 pattern) in the top-left and the
//     bottom-right corners, drawn after mirroring.
// The label is the number of ellipses minus 2 (3 classes).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <vector>

namespace longgan::datasets {

inline constexpr int64_t kSyntheticClasses = 3;

// An RGB image [resolution, resolution, 3] uint8 HWC. resolution >= 4.
std::vector<uint8_t> make_synthetic_image(uint64_t seed, int64_t index, int64_t resolution);
// Its label, in [0, kSyntheticClasses).
int64_t synthetic_label(uint64_t seed, int64_t index);
// The side of the corner motif square at this resolution.
int64_t synthetic_motif_size(int64_t resolution);

// Writes `count` synthetic images (index 0..count-1) as a packed file; returns its fingerprint.
// `progress(done, count)` is called now and then when given.
uint64_t write_synthetic_dataset(const std::filesystem::path& path, int64_t count, int64_t resolution, uint64_t seed,
                                 const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace longgan::datasets

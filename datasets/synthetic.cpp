#include "datasets/synthetic.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cmath>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>

#include "datasets/hash.h"
#include "datasets/packed_format.h"

namespace longgan::datasets {
namespace {

struct Ellipse {
  double cx, cy, rx, ry, cos_a, sin_a;
  std::array<double, 3> colour;
};

struct Scene {
  std::array<double, 3> background0, background1;
  double gradient_dx, gradient_dy;
  std::vector<Ellipse> ellipses;
  std::array<uint8_t, 3> motif_a, motif_b;
  unsigned motif_pattern;  // 4 bits: which quadrant of the motif takes colour b
  bool rounded_squares = false;  // shapes are rounded squares instead of ellipses
};

// All random choices come from one generator seeded by (seed, index), in a fixed order, in
// resolution-independent units (fractions of the image side).
Scene make_scene(uint64_t seed, int64_t index) {
  std::mt19937_64 rng(mix64(mix64(seed) ^ static_cast<uint64_t>(index)));
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  auto colour = [&] { return std::array<double, 3>{unit(rng), unit(rng), unit(rng)}; };
  Scene s;
  s.background0 = colour();
  s.background1 = colour();
  const double angle = unit(rng) * 2 * M_PI;
  s.gradient_dx = std::cos(angle);
  s.gradient_dy = std::sin(angle);
  const int n = 2 + static_cast<int>(rng() % 3);
  for (int k = 0; k < n; ++k) {
    Ellipse e;
    e.cx = 0.05 + 0.4 * unit(rng);  // inside the left half
    e.cy = 0.1 + 0.8 * unit(rng);
    e.rx = 0.06 + 0.14 * unit(rng);
    e.ry = 0.06 + 0.14 * unit(rng);
    const double a = unit(rng) * M_PI;
    e.cos_a = std::cos(a);
    e.sin_a = std::sin(a);
    e.colour = colour();
    s.ellipses.push_back(e);
  }
  for (auto* c : {&s.motif_a, &s.motif_b}) {
    for (auto& v : *c) v = static_cast<uint8_t>(rng() % 256);
  }
  s.motif_pattern = 1 + static_cast<unsigned>(rng() % 14);  // never all-a or all-b
  return s;
}

// HSV in [0, 1] (the hue wraps around) to RGB in [0, 1].
std::array<double, 3> hsv_to_rgb(double h, double s, double v) {
  const double h6 = (h - std::floor(h)) * 6.0;
  const int sector = static_cast<int>(h6) % 6;
  const double f = h6 - std::floor(h6);
  const double p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  switch (sector) {
    case 0: return {v, t, p};
    case 1: return {q, v, p};
    case 2: return {p, v, t};
    case 3: return {p, q, v};
    case 4: return {t, p, v};
    default: return {v, p, q};
  }
}

struct ColourRange {
  double s_lo, s_hi, v_lo, v_hi;
};

// The random colour `u` (three numbers in [0, 1]) as a colour near `hue`: u[0] moves the hue by up
// to +-jitter, u[1] and u[2] choose saturation and value in `range`.
std::array<double, 3> in_hue(const std::array<double, 3>& u, double hue, double jitter, const ColourRange& range) {
  return hsv_to_rgb(hue + jitter * (2 * u[0] - 1), range.s_lo + (range.s_hi - range.s_lo) * u[1],
                    range.v_lo + (range.v_hi - range.v_lo) * u[2]);
}

// Recolours the scene in the hue of class k of `classes` (>= 2) and picks its shape family; the
// geometry (and so the random stream) stays that of the default image.
void apply_class(Scene& s, int64_t k, int64_t classes) {
  const double hue = synthetic_class_hue(k, classes);
  const double jitter = std::min(0.04, 0.2 / static_cast<double>(classes));  // well inside half the gap to the next class
  const ColourRange background{0.15, 0.45, 0.25, 0.9}, shape{0.6, 1.0, 0.45, 1.0};
  s.background0 = in_hue(s.background0, hue, jitter, background);
  s.background1 = in_hue(s.background1, hue, jitter, background);
  for (auto& e : s.ellipses) e.colour = in_hue(e.colour, hue, jitter, shape);
  for (auto* c : {&s.motif_a, &s.motif_b}) {
    const auto rgb = in_hue({(*c)[0] / 255.0, (*c)[1] / 255.0, (*c)[2] / 255.0}, hue, jitter, shape);
    for (int i = 0; i < 3; ++i) (*c)[i] = static_cast<uint8_t>(std::lround(rgb[i] * 255.0));
  }
  s.rounded_squares = k % 2 == 1;
}

uint8_t to_byte(double v) { return static_cast<uint8_t>(std::lround(std::clamp(v, 0.0, 1.0) * 255.0)); }

void check_resolution(int64_t resolution) {
  if (resolution < 4 || resolution > 8192) {
    throw std::invalid_argument("synthetic images need a resolution in [4, 8192], got " + std::to_string(resolution));
  }
}

void check_classes(int64_t classes) {
  if (classes < 0 || classes > kSyntheticMaxClasses) {
    throw std::invalid_argument("synthetic classes must be in [1, " + std::to_string(kSyntheticMaxClasses) +
                                "] (0: the default labels), got " + std::to_string(classes));
  }
}

}  // namespace

int64_t synthetic_motif_size(int64_t resolution) { return std::max<int64_t>(2, resolution / 8); }

namespace {

// The motif side a call asks for: 0 is the resolution's default.
int64_t chosen_motif_size(int64_t resolution, int64_t motif_size) {
  if (motif_size == 0) return synthetic_motif_size(resolution);
  if (motif_size < 1 || motif_size > resolution / 2) {
    throw std::invalid_argument("the synthetic motif size must be in 1.." + std::to_string(resolution / 2) +
                                " at resolution " + std::to_string(resolution) + " (the two corner squares must not " +
                                "overlap), got " + std::to_string(motif_size));
  }
  return motif_size;
}

}  // namespace

int64_t synthetic_label(uint64_t seed, int64_t index, int64_t classes) {
  check_classes(classes);
  if (classes != kSyntheticEllipseLabels) return index % classes;
  return static_cast<int64_t>(make_scene(seed, index).ellipses.size()) - 2;
}

int64_t synthetic_label_count(int64_t classes) {
  check_classes(classes);
  return classes == kSyntheticEllipseLabels ? kSyntheticClasses : classes;
}

double synthetic_class_hue(int64_t k, int64_t classes) {
  return static_cast<double>(k) / static_cast<double>(classes);
}

std::vector<uint8_t> make_synthetic_image(uint64_t seed, int64_t index, int64_t resolution, int64_t classes,
                                          int64_t motif_size) {
  check_resolution(resolution);
  check_classes(classes);
  const int64_t m = chosen_motif_size(resolution, motif_size);
  Scene s = make_scene(seed, index);
  if (classes >= 2) apply_class(s, synthetic_label(seed, index, classes), classes);
  const int64_t r = resolution;
  std::vector<uint8_t> image(static_cast<size_t>(r * r * 3));
  const int64_t half = (r + 1) / 2;  // columns drawn; the rest mirrors them
  const double softness = 8.0;       // edge steepness of the ellipses
  for (int64_t y = 0; y < r; ++y) {
    const double v = (y + 0.5) / r;
    for (int64_t x = 0; x < half; ++x) {
      const double u = (x + 0.5) / r;
      const double t = 0.5 + 0.5 * ((u - 0.5) * s.gradient_dx + (v - 0.5) * s.gradient_dy) * 1.41421356;
      std::array<double, 3> px;
      for (int c = 0; c < 3; ++c) px[c] = s.background0[c] + (s.background1[c] - s.background0[c]) * t;
      for (const auto& e : s.ellipses) {
        const double du = u - e.cx, dv = v - e.cy;
        const double a = (du * e.cos_a + dv * e.sin_a) / e.rx, b = (-du * e.sin_a + dv * e.cos_a) / e.ry;
        const double d = s.rounded_squares ? std::pow(std::pow(a, 6) + std::pow(b, 6), 1.0 / 6)
                                           : std::sqrt(a * a + b * b);
        const double alpha = 1.0 / (1.0 + std::exp((d - 1.0) * softness));
        for (int c = 0; c < 3; ++c) px[c] += (e.colour[c] - px[c]) * alpha;
      }
      uint8_t* left = &image[static_cast<size_t>((y * r + x) * 3)];
      uint8_t* right = &image[static_cast<size_t>((y * r + (r - 1 - x)) * 3)];
      for (int c = 0; c < 3; ++c) left[c] = right[c] = to_byte(px[c]);
    }
  }
  for (int64_t y = 0; y < m; ++y) {
    for (int64_t x = 0; x < m; ++x) {
      const unsigned quadrant = (y * 2 >= m ? 2u : 0u) + (x * 2 >= m ? 1u : 0u);
      const auto& colour = (s.motif_pattern >> quadrant) & 1u ? s.motif_b : s.motif_a;
      for (int64_t oy : {int64_t{0}, r - m}) {
        uint8_t* p = &image[static_cast<size_t>(((oy + y) * r + oy + x) * 3)];
        for (int c = 0; c < 3; ++c) p[c] = colour[c];
      }
    }
  }
  return image;
}

uint64_t write_synthetic_dataset(const std::filesystem::path& path, int64_t count, int64_t resolution, uint64_t seed,
                                 const std::function<void(int64_t, int64_t)>& progress, int64_t classes,
                                 int64_t motif_size) {
  check_resolution(resolution);
  const int64_t motif = chosen_motif_size(resolution, motif_size);
  const int64_t label_count = synthetic_label_count(classes);
  if (count < 1) throw std::invalid_argument("a synthetic dataset needs at least 1 image, got " + std::to_string(count));
  if (seed > UINT32_MAX) {
    throw std::invalid_argument("the seed of synthetic images must be below 4294967296 (the dataset header records "
                                "it in 32 bits), got " + std::to_string(seed));
  }
  const auto r = static_cast<uint32_t>(resolution);
  PackedWriter writer(path, r, r, 3, static_cast<uint32_t>(label_count));
  writer.set_source({DataSourceKind::kSynthetic, kSyntheticGeneratorVersion,
                     static_cast<uint16_t>(motif), static_cast<uint32_t>(seed)});
  // Images are made in parallel chunks and written in index order.
  const int64_t threads = std::clamp<int64_t>(std::thread::hardware_concurrency(), 1, 8);
  const int64_t chunk = threads * 8;
  std::vector<std::vector<uint8_t>> images(static_cast<size_t>(chunk));
  for (int64_t first = 0; first < count; first += chunk) {
    const int64_t n = std::min(chunk, count - first);
    std::vector<std::thread> workers;
    for (int64_t t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        for (int64_t k = t; k < n; k += threads) images[k] = make_synthetic_image(seed, first + k, resolution, classes, motif);
      });
    }
    for (auto& w : workers) w.join();
    for (int64_t k = 0; k < n; ++k) writer.add(images[k].data(), synthetic_label(seed, first + k, classes));
    if (progress) progress(first + n, count);
  }
  return writer.finish();
}

}  // namespace longgan::datasets

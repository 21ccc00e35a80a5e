#include "attention/clustered.h"

#include <stdexcept>
#include <string>

namespace longgan::attention {

void ClusteredOptions::validate() const {
  if (clusters < 1) {
    throw std::invalid_argument("attention clustered: clusters must be >= 1, got " + std::to_string(clusters));
  }
  if (bits < 1 || bits > 63) {
    throw std::invalid_argument("attention clustered: bits must be in [1, 63], got " + std::to_string(bits));
  }
  if (iterations < 0) {
    throw std::invalid_argument("attention clustered: iterations must be >= 0, got " + std::to_string(iterations));
  }
}

void ClusteredOptions::validate_lengths(int64_t n, int64_t /*m*/) const {
  if (clusters > n) {
    throw std::invalid_argument("attention clustered: clusters=" + std::to_string(clusters) + " exceeds the " +
                                std::to_string(n) + " queries; use clusters in [1, " + std::to_string(n) + "]");
  }
}

void ImprovedClusteredOptions::validate() const {
  clustering.validate();
  if (topk < 1) {
    throw std::invalid_argument("attention improved_clustered: topk must be >= 1, got " + std::to_string(topk));
  }
}

void ImprovedClusteredOptions::validate_lengths(int64_t n, int64_t m) const {
  clustering.validate_lengths(n, m);
  if (topk > m) {
    throw std::invalid_argument("attention improved_clustered: topk=" + std::to_string(topk) + " exceeds the " +
                                std::to_string(m) + " keys; use topk in [1, " + std::to_string(m) + "]");
  }
}

// TODO(helper): hyperplanes, assignment, attention functions and references.

}  // namespace longgan::attention

#include "attention/smyrf.h"

#include <stdexcept>
#include <string>

namespace longgan::attention {

void SmyrfOptions::validate() const {
  if (hashes < 1 || hashes > 64) {
    throw std::invalid_argument("attention smyrf: hashes must be in [1, 64], got " + std::to_string(hashes));
  }
  if (q_cluster < 1) {
    throw std::invalid_argument("attention smyrf: q_cluster must be >= 1, got " + std::to_string(q_cluster));
  }
  if (k_cluster < 1) {
    throw std::invalid_argument("attention smyrf: k_cluster must be >= 1, got " + std::to_string(k_cluster));
  }
}

void SmyrfOptions::validate_lengths(int64_t n, int64_t m) const {
  if (q_cluster > n) {
    throw std::invalid_argument("attention smyrf: q_cluster=" + std::to_string(q_cluster) +
                                " is larger than the " + std::to_string(n) + " queries; use q_cluster in [1, " +
                                std::to_string(n) + "]");
  }
  if (k_cluster > m) {
    throw std::invalid_argument("attention smyrf: k_cluster=" + std::to_string(k_cluster) +
                                " is larger than the " + std::to_string(m) + " keys; use k_cluster in [1, " +
                                std::to_string(m) + "]");
  }
  int64_t q_clusters = (n + q_cluster - 1) / q_cluster, k_clusters = (m + k_cluster - 1) / k_cluster;
  if (q_clusters != k_clusters) {
    throw std::invalid_argument("attention smyrf: " + std::to_string(n) + " queries / q_cluster=" +
                                std::to_string(q_cluster) + " gives " + std::to_string(q_clusters) +
                                " clusters but " + std::to_string(m) + " keys / k_cluster=" +
                                std::to_string(k_cluster) + " gives " + std::to_string(k_clusters) +
                                "; choose sizes with N/q_cluster == M/k_cluster");
  }
}

// TODO(helper): smyrf_draw_projections, smyrf_attention, smyrf_attention_reference.

}  // namespace longgan::attention

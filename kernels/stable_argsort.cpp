#include "kernels/stable_argsort.h"

#include <ATen/Parallel.h>

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

namespace longgan::kernels {
namespace {

// A float's bit pattern as an unsigned key with the same order: negatives flipped whole,
// positives with the sign bit set; -0.0 as +0.0 and every NaN as the largest key.
uint32_t sort_key(float value) {
  if (std::isnan(value)) return 0xFFFFFFFFu;
  uint32_t bits = std::bit_cast<uint32_t>(value);
  if (bits == 0x80000000u) bits = 0;
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

constexpr int kDigitBits = 11;  // three passes cover 32 bits
constexpr int kPasses = 3;
constexpr uint32_t kBuckets = 1u << kDigitBits;

// Sorts one row: `out` receives the positions in stable ascending order of `values`.
// `keys`/`positions` and their second buffers hold length entries each.
void radix_sort_row(const float* values, int64_t length, int64_t* out, std::vector<uint32_t>& keys,
                    std::vector<uint32_t>& keys2, std::vector<int64_t>& positions, std::vector<int64_t>& positions2) {
  std::array<std::array<uint32_t, kBuckets>, kPasses> counts{};
  for (int64_t i = 0; i < length; ++i) {
    const uint32_t key = sort_key(values[i]);
    keys[i] = key;
    positions[i] = i;
    for (int pass = 0; pass < kPasses; ++pass) ++counts[pass][(key >> (pass * kDigitBits)) & (kBuckets - 1)];
  }
  uint32_t* from_keys = keys.data();
  uint32_t* to_keys = keys2.data();
  int64_t* from_positions = positions.data();
  int64_t* to_positions = positions2.data();
  for (int pass = 0; pass < kPasses; ++pass) {
    auto& count = counts[pass];
    const int shift = pass * kDigitBits;
    // A digit that every key shares leaves the order as it is.
    if (count[(from_keys[0] >> shift) & (kBuckets - 1)] == static_cast<uint32_t>(length)) continue;
    uint32_t offset = 0;
    for (uint32_t& c : count) {
      const uint32_t n = c;
      c = offset;
      offset += n;
    }
    for (int64_t i = 0; i < length; ++i) {
      const uint32_t key = from_keys[i];
      const uint32_t slot = count[(key >> shift) & (kBuckets - 1)]++;
      to_keys[slot] = key;
      to_positions[slot] = from_positions[i];
    }
    std::swap(from_keys, to_keys);
    std::swap(from_positions, to_positions);
  }
  std::copy(from_positions, from_positions + length, out);
}

}  // namespace

bool stable_argsort_uses_radix(const at::Tensor& values) {
  return values.device().is_cpu() && values.scalar_type() == at::kFloat && values.dim() >= 1 &&
         values.size(-1) > 1 && values.size(-1) < (int64_t{1} << 32);  // bucket counts are uint32
}

at::Tensor stable_argsort_reference(const at::Tensor& values) {
  // Spelled with std::optional: sort(true, -1) would pick the sort(dim, descending) overload.
  return std::get<1>(at::sort(values, std::optional<bool>(true), /*dim=*/-1));
}

at::Tensor stable_argsort(const at::Tensor& values) {
  if (!stable_argsort_uses_radix(values)) return stable_argsort_reference(values);
  const at::Tensor rows = values.contiguous();
  const int64_t length = rows.size(-1), count = rows.numel() / length;
  at::Tensor order = at::empty(rows.sizes(), rows.options().dtype(at::kLong));
  const float* in = rows.const_data_ptr<float>();
  int64_t* out = order.mutable_data_ptr<int64_t>();
  at::parallel_for(0, count, 1, [&](int64_t begin, int64_t end) {
    std::vector<uint32_t> keys(length), keys2(length);
    std::vector<int64_t> positions(length), positions2(length);
    for (int64_t row = begin; row < end; ++row) {
      radix_sort_row(in + row * length, length, out + row * length, keys, keys2, positions, positions2);
    }
  });
  return order;
}

}  // namespace longgan::kernels

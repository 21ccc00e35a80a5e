#pragma once
// Small deterministic hashes shared by the synthetic generator and the loader.
#include <cstdint>

namespace longgan::datasets {

// The splitmix64 finaliser: a bijective 64-bit mix, used to derive seeds and per-sample coin flips.
inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace longgan::datasets

#pragma once
// Launch function of the Hamming k-means kernels: raw device pointers, sizes and a stream, no torch.
// Included by hamming_kmeans.cu and, in CUDA builds only, by its wrapper hamming_kmeans.cpp.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace longgan::kernels {

// Hamming k-means over [BH] independent sets of n codes (bit b of a code = hash bit b).
//   codes [BH, n]; centroids [BH, C] in/out (the initial centroids given); assignment [BH, n] out.
//   reseed, ties [iterations, BH, C]: per Lloyd step, the code an empty cluster takes and the bits
//   a centroid takes where its members split evenly (fast-transformers' random choices, drawn by
//   the caller so that the ATen reference makes the same ones).
//   scratch: int32 [BH, C, 65] workspace (member count and per-bit counts).
// `iterations` Lloyd steps, then a final assignment; ties in distance go to the lowest centroid.
void hamming_kmeans(const int64_t* codes, int64_t* centroids, int64_t* assignment, const int64_t* reseed,
                    const int64_t* ties, int32_t* scratch, int64_t bh, int64_t n, int64_t clusters, int64_t bits,
                    int64_t iterations, cudaStream_t stream);

}  // namespace longgan::kernels

#include "kernels/hamming_kmeans.h"

#include <stdexcept>
#include <string>

#include "longgan/build_config.h"
#if LONGGAN_HAVE_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "kernels/hamming_kmeans_launch.h"
#endif

namespace longgan::kernels {
namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument("hamming_kmeans kernel: " + message);
}

}  // namespace

bool hamming_kmeans_supports(const at::Tensor& codes) { return LONGGAN_HAVE_CUDA && codes.defined() && codes.is_cuda(); }

at::Tensor hamming_kmeans_cuda(const at::Tensor& codes, const at::Tensor& initial_centroids,
                               const at::Tensor& reseed, const at::Tensor& ties, int64_t bits) {
  require(hamming_kmeans_supports(codes), "needs a CUDA build and CUDA codes; use the reference backend");
  require(codes.dim() == 3 && codes.scalar_type() == at::kLong, "codes must be int64 [B, H, N]");
  const int64_t b = codes.size(0), h = codes.size(1), n = codes.size(2);
  require(initial_centroids.dim() == 3 && initial_centroids.scalar_type() == at::kLong &&
              initial_centroids.size(0) == b && initial_centroids.size(1) == h &&
              initial_centroids.device() == codes.device(),
          "initial centroids must be int64 [B, H, C] on the codes' device");
  const int64_t clusters = initial_centroids.size(2);
  require(clusters >= 1 && clusters <= n, "clusters must be in [1, N]");
  require(bits >= 1 && bits <= 63, "bits must be in [1, 63]");
  const int64_t iterations = reseed.dim() == 4 ? reseed.size(0) : -1;
  for (const auto* draws : {&reseed, &ties}) {
    require(draws->dim() == 4 && draws->scalar_type() == at::kLong && draws->device() == codes.device() &&
                draws->size(0) == iterations && draws->size(1) == b && draws->size(2) == h &&
                draws->size(3) == clusters,
            "reseed and ties must be int64 [iterations, B, H, C] on the codes' device");
  }
#if LONGGAN_HAVE_CUDA
  const c10::cuda::CUDAGuard guard(codes.device());
  auto codes_c = codes.contiguous(), reseed_c = reseed.contiguous(), ties_c = ties.contiguous();
  auto centroids = initial_centroids.contiguous().clone();
  auto assignment = at::empty({b, h, n}, codes.options());
  auto scratch = at::empty({b * h * clusters * 65}, codes.options().dtype(at::kInt));
  hamming_kmeans(codes_c.data_ptr<int64_t>(), centroids.data_ptr<int64_t>(), assignment.data_ptr<int64_t>(),
                 reseed_c.data_ptr<int64_t>(), ties_c.data_ptr<int64_t>(), scratch.data_ptr<int32_t>(), b * h, n,
                 clusters, bits, iterations, at::cuda::getCurrentCUDAStream(codes.device().index()).stream());
  return assignment;
#else
  throw std::logic_error("hamming_kmeans kernel: unreachable without CUDA");
#endif
}

}  // namespace longgan::kernels

#include "attention/clustered.h"

#include <stdexcept>
#include <string>

#include "kernels/attention_kernels.h"

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

namespace {

// Rows of `table` [B, H, R, D] picked per position by `index` [B, H, N]: [B, H, N, D].
at::Tensor gather_rows(const at::Tensor& table, const at::Tensor& index) {
  auto sizes = index.sizes().vec();
  sizes.push_back(table.size(-1));
  return table.gather(2, index.unsqueeze(-1).expand(sizes));
}

// Per-cluster sums of `values` [B, H, N, D] over the queries of each cluster: [B, H, C, D].
at::Tensor cluster_sums(const at::Tensor& values, const at::Tensor& assignment, int64_t clusters) {
  auto sums = at::zeros({values.size(0), values.size(1), clusters, values.size(3)}, values.options());
  return sums.scatter_add(2, assignment.unsqueeze(-1).expand_as(values), values);
}

// Number of queries of each cluster as [B, H, C] of `dtype`.
at::Tensor cluster_counts(const at::Tensor& assignment, int64_t clusters, at::ScalarType dtype) {
  auto counts = at::zeros({assignment.size(0), assignment.size(1), clusters}, assignment.options().dtype(dtype));
  return counts.scatter_add(2, assignment, at::ones_like(assignment, counts.options()));
}

// Centroid attention of the clusters: the centroid attention matrix A [B, H, C, M] and the
// centroid outputs V_c = A v [B, H, C, Dv], in the compute type. Empty clusters get a zero
// centroid (their rows are computed but never read).
std::pair<at::Tensor, at::Tensor> centroid_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                                     int64_t clusters, double scale, const at::Tensor& assignment) {
  auto counts = cluster_counts(assignment, clusters, q.scalar_type()).clamp_min(1);
  auto centroids = cluster_sums(q, assignment, clusters) / counts.unsqueeze(-1);
  auto weights = at::softmax(at::matmul(centroids, k.transpose(-1, -2)) * scale, -1);
  return {weights, at::matmul(weights, v)};
}

void check_reference_args(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t clusters,
                          const at::Tensor& assignment, const char* what) {
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4) {
    throw std::invalid_argument(std::string(what) + ": q, k, v must be 4-D [B, H, length, features]");
  }
  if (clusters < 1) throw std::invalid_argument(std::string(what) + ": clusters must be >= 1");
  if (assignment.scalar_type() != at::kLong || assignment.dim() != 3 || assignment.size(0) != q.size(0) ||
      assignment.size(1) != q.size(1) || assignment.size(2) != q.size(2)) {
    throw std::invalid_argument(std::string(what) +
                                ": assignment must be int64 [B, H, N] matching q (from clustered_assign)");
  }
}

// The kernel runs when the backend allows it and the kernel supports the inputs; an explicit
// Backend::Kernel the kernel cannot serve is an error rather than a silent fallback.
bool use_kernel(const CallOptions& call, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                const char* what) {
  if (call.backend == Backend::Reference) return false;
  if (kernels::clustered_kernel_supports(q, k, v)) return true;
  if (call.backend == Backend::Kernel) {
    throw std::invalid_argument(std::string("attention ") + what +
                                ": backend=kernel but the CUDA kernel does not support these inputs (it needs "
                                "CUDA tensors of a supported dtype and head size in a build with CUDA kernels); "
                                "use backend=auto or backend=reference");
  }
  return false;
}

}  // namespace

at::Tensor clustered_draw_hyperplanes(int64_t batch, int64_t heads, const ClusteredOptions& options, int64_t dqk,
                                      at::Generator generator, at::Device device) {
  auto planes = at::randn({batch, heads, options.bits, dqk + 1}, generator, at::TensorOptions().dtype(at::kFloat));
  if (!options.hash_bias) planes.select(-1, dqk).zero_();
  return planes.to(device);
}

// The clustering, step by step (a CUDA kernel reproduces it bit for bit):
//  1. Codes: bit b of query i is set iff dot([q_i, 1], hyperplane_b) > 0, an fp32 matmul of the
//     upcast queries (bit b is the coefficient of 2^b of the query's code). Queries whose
//     projection is within rounding of 0 may hash differently under another summation order.
//  2. Initial centroids: the codes of the queries at indices floor(c * N / C), c = 0..C-1.
//  3. `iterations` Lloyd steps: each query joins the centroid at the smallest Hamming distance
//     popcount(code ^ centroid), ties to the lowest centroid index; then bit b of each centroid
//     := 1 iff 2 * (members with bit b set) > members (majority; a tie gives 0). Empty clusters
//     keep their centroid.
//  4. The returned assignment uses the final centroids (iterations = 0: the initial ones).
// Hamming distances come from a matmul of +-1 bit vectors: dot = bits - 2 * distance, exact
// small integers in fp32 for bits <= 63.
at::Tensor clustered_assign(const at::Tensor& q, const ClusteredOptions& options, const at::Tensor& hyperplanes) {
  options.validate();
  options.validate_lengths(q.size(2), q.size(2));
  if (hyperplanes.dim() != 4 || hyperplanes.size(0) != q.size(0) || hyperplanes.size(1) != q.size(1) ||
      hyperplanes.size(2) != options.bits || hyperplanes.size(3) != q.size(3) + 1) {
    throw std::invalid_argument(
        "attention clustered: hyperplanes must be [B, H, bits, Dqk + 1] (from clustered_draw_hyperplanes)");
  }
  at::NoGradGuard no_grad;
  const int64_t n = q.size(2);
  const int64_t clusters = options.clusters;
  auto qf = q.to(at::kFloat);
  auto augmented = at::cat({qf, at::ones_like(qf.narrow(-1, 0, 1))}, -1);
  auto projections = at::matmul(augmented, hyperplanes.to(q.device(), at::kFloat).transpose(-1, -2));
  auto query_bits = projections.gt(0).to(at::kFloat);  // [B, H, N, bits] in {0, 1}
  auto query_signs = query_bits * 2 - 1;               // {-1, +1}

  auto first = at::arange(clusters, q.options().dtype(at::kLong)).mul(n).div(clusters, "floor");
  auto centroid_bits = query_bits.index_select(2, first);  // [B, H, C, bits]

  const auto bits = static_cast<double>(options.bits);
  auto assign = [&] {
    auto agreement = at::matmul(query_signs, (centroid_bits * 2 - 1).transpose(-1, -2));  // [B, H, N, C]
    auto distance = (bits - agreement) * 0.5;
    return distance.argmin(-1);  // first minimum: ties go to the lowest centroid index
  };
  for (int64_t step = 0; step < options.iterations; ++step) {
    auto assignment = assign();
    auto members = cluster_counts(assignment, clusters, at::kFloat).unsqueeze(-1);
    auto set_bits = cluster_sums(query_bits, assignment, clusters);
    auto majority = (set_bits * 2).gt(members).to(at::kFloat);
    centroid_bits = at::where(members.gt(0), majority, centroid_bits);
  }
  return assign();
}

at::Tensor clustered_attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                         int64_t clusters, double scale, const at::Tensor& assignment) {
  check_reference_args(q, k, v, clusters, assignment, "clustered_attention_reference");
  const auto type = compute_dtype(q);
  auto [weights, values] = centroid_attention(q.to(type), k.to(type), v.to(type), clusters, scale, assignment);
  return gather_rows(values, assignment).to(q.scalar_type());
}

// Per cluster c: the topk keys T_c of highest A_c, m_c = sum_{j in T_c} A_c[j], and the rest
// R_c = V_c - sum_{j in T_c} A_c[j] v_j. Query i of cluster c: softmax of its own logits over
// T_c, times m_c, applied to v_{T_c}, plus R_c. Ties in A_c at the top-k boundary are broken by
// at::topk (unspecified order).
at::Tensor improved_clustered_attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                                  int64_t clusters, int64_t topk, double scale,
                                                  const at::Tensor& assignment) {
  check_reference_args(q, k, v, clusters, assignment, "improved_clustered_attention_reference");
  if (topk < 1 || topk > k.size(2)) {
    throw std::invalid_argument("improved_clustered_attention_reference: topk must be in [1, M]");
  }
  const auto type = compute_dtype(q);
  auto qc = q.to(type);
  auto kc = k.to(type);
  auto vc = v.to(type);
  const int64_t b = q.size(0), h = q.size(1), n = q.size(2);
  auto [weights, values] = centroid_attention(qc, kc, vc, clusters, scale, assignment);
  auto [top_weights, top_keys] = weights.topk(topk, -1);  // [B, H, C, topk]
  auto mass = top_weights.sum(-1, /*keepdim=*/true);      // m_c [B, H, C, 1]

  // Rows of `table` [B, H, M, D] at the key indices `keys` [B, H, R, topk]: [B, H, R, topk, D].
  auto pick = [](const at::Tensor& table, const at::Tensor& keys) {
    auto flat = keys.flatten(2);
    auto rows = gather_rows(table, flat);
    return rows.view({keys.size(0), keys.size(1), keys.size(2), keys.size(3), table.size(-1)});
  };
  auto rest = values - at::matmul(top_weights.unsqueeze(-2), pick(vc, top_keys)).squeeze(-2);  // [B, H, C, Dv]

  auto query_keys = top_keys.gather(2, assignment.unsqueeze(-1).expand({b, h, n, topk}));  // [B, H, N, topk]
  auto logits = at::matmul(pick(kc, query_keys), qc.unsqueeze(-1)).squeeze(-1) * scale;    // [B, H, N, topk]
  auto exact = at::softmax(logits, -1) * gather_rows(mass, assignment);
  auto out = at::matmul(exact.unsqueeze(-2), pick(vc, query_keys)).squeeze(-2) + gather_rows(rest, assignment);
  return out.to(q.scalar_type());
}

at::Tensor clustered_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               const ClusteredOptions& options, const CallOptions& call) {
  options.validate();
  options.validate_lengths(q.size(2), k.size(2));
  const double scale = resolve_scale(call, q.size(3));
  auto planes = clustered_draw_hyperplanes(q.size(0), q.size(1), options, q.size(3), resolve_generator(call),
                                           q.device());
  if (use_kernel(call, q, k, v, "clustered")) {
    auto assignment = kernels::clustered_assign_cuda(q, planes, options.clusters, options.iterations);
    return kernels::clustered_attention_cuda(q, k, v, options.clusters, scale, assignment);
  }
  auto assignment = clustered_assign(q, options, planes);
  return clustered_attention_reference(q, k, v, options.clusters, scale, assignment);
}

at::Tensor improved_clustered_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        const ImprovedClusteredOptions& options, const CallOptions& call) {
  options.validate();
  options.validate_lengths(q.size(2), k.size(2));
  const auto& clustering = options.clustering;
  const double scale = resolve_scale(call, q.size(3));
  auto planes = clustered_draw_hyperplanes(q.size(0), q.size(1), clustering, q.size(3), resolve_generator(call),
                                           q.device());
  if (use_kernel(call, q, k, v, "improved_clustered")) {
    auto assignment = kernels::clustered_assign_cuda(q, planes, clustering.clusters, clustering.iterations);
    return kernels::improved_clustered_attention_cuda(q, k, v, clustering.clusters, options.topk, scale,
                                                      assignment);
  }
  auto assignment = clustered_assign(q, clustering, planes);
  return improved_clustered_attention_reference(q, k, v, clustering.clusters, options.topk, scale, assignment);
}

}  // namespace longgan::attention

#include "attention/clustered.h"

#include <stdexcept>
#include <string>

#include "attention/autocast_off.h"
#include "attention/call_profile.h"
#include "attention/gathered_attention.h"
#include "kernels/hamming_kmeans.h"

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

// int64 codes [.., bits] -> [..]: bit b of the code is element b.
at::Tensor pack_bits(const at::Tensor& bits) {
  auto powers = at::pow(2, at::arange(bits.size(-1), bits.options().dtype(at::kLong)));
  return (bits.to(at::kLong) * powers).sum(-1);
}

// Members of each cluster in tiles of at most `tile` queries, each tile with its cluster's
// top-k keys: query rows [P, tile] (empty slots hold B*H*N) and key rows [P, topk] of the tables.
std::pair<at::Tensor, at::Tensor> topk_problems(const at::Tensor& assignment, const at::Tensor& top_keys,
                                                int64_t clusters, int64_t keys, int64_t tile) {
  const int64_t rows = assignment.numel();
  auto cluster = table_rows(assignment, clusters).reshape(-1);  // (b, h, c) as one id
  auto members = std::get<1>(at::sort(cluster, std::optional<bool>(true), 0, false));  // query rows by cluster
  auto counts = at::bincount(cluster, {}, top_keys.size(0) * top_keys.size(1) * clusters);
  auto tiles = counts.add(tile - 1).div(tile, "floor");
  auto first_tile = tiles.cumsum(0) - tiles;
  auto first_member = counts.cumsum(0) - counts;
  const int64_t problems = tiles.sum().item<int64_t>();
  // Member r of a cluster (in row order) goes to slot r of the cluster's tiles laid end to end.
  auto member_cluster = cluster.index_select(0, members);
  auto rank = at::arange(rows, cluster.options()) - first_member.index_select(0, member_cluster);
  auto slot = first_tile.index_select(0, member_cluster) * tile + rank;
  auto query_rows = at::full({problems * tile}, rows, cluster.options()).index_copy_(0, slot, members);
  auto tile_cluster = at::repeat_interleave(tiles, std::optional<int64_t>(problems));  // cluster of each tile
  auto key_rows = table_rows(top_keys, keys).reshape({-1, top_keys.size(3)}).index_select(0, tile_cluster);
  return {query_rows.view({problems, tile}), key_rows};
}

}  // namespace

at::Tensor clustered_draw_hyperplanes(int64_t batch, int64_t heads, const ClusteredOptions& options, int64_t dqk,
                                      at::Generator generator, at::Device device) {
  auto planes = at::randn({batch, heads, options.bits, dqk + 1}, generator, at::TensorOptions().dtype(at::kFloat));
  if (!options.hash_bias) planes.select(-1, dqk).zero_();
  return planes.to(device);
}

ClusteredDraws clustered_draw(int64_t batch, int64_t heads, const ClusteredOptions& options, int64_t dqk,
                              at::Generator generator, at::Device device) {
  ClusteredDraws draws;
  draws.hyperplanes = clustered_draw_hyperplanes(batch, heads, options, dqk, generator, device);
  const std::vector<int64_t> shape = {options.iterations, batch, heads, options.clusters, options.bits};
  const auto bytes = at::TensorOptions().dtype(at::kByte);
  draws.reseed = at::randint(2, shape, generator, bytes).to(device);
  draws.ties = at::randint(2, shape, generator, bytes).to(device);
  return draws;
}

at::Tensor clustered_hash_bits(const at::Tensor& q, const at::Tensor& hyperplanes) {
  at::NoGradGuard no_grad;
  const AutocastOff fp32;
  auto qf = q.to(at::kFloat);
  auto augmented = at::cat({qf, at::ones_like(qf.narrow(-1, 0, 1))}, -1);
  return at::matmul(augmented, hyperplanes.to(q.device(), at::kFloat).transpose(-1, -2)).gt(0);
}

namespace {

void check_draws(const at::Tensor& q, const ClusteredOptions& options, const ClusteredDraws& draws) {
  const auto& planes = draws.hyperplanes;
  if (planes.dim() != 4 || planes.size(0) != q.size(0) || planes.size(1) != q.size(1) ||
      planes.size(2) != options.bits || planes.size(3) != q.size(3) + 1) {
    throw std::invalid_argument(
        "attention clustered: hyperplanes must be [B, H, bits, Dqk + 1] (from clustered_draw)");
  }
  const std::vector<int64_t> shape = {options.iterations, q.size(0), q.size(1), options.clusters, options.bits};
  for (const auto* t : {&draws.reseed, &draws.ties}) {
    if (!t->defined() || t->sizes() != at::IntArrayRef(shape)) {
      throw std::invalid_argument(
          "attention clustered: reseed and ties must be [iterations, B, H, clusters, bits] (from clustered_draw)");
    }
  }
}

// Initial centroids: the codes of the queries at indices floor(c * N / C), c = 0..C-1.
at::Tensor initial_centroid_indices(int64_t n, int64_t clusters, const at::Tensor& like) {
  return at::arange(clusters, like.options().dtype(at::kLong)).mul(n).div(clusters, "floor");
}

}  // namespace

// The clustering, step by step (the CUDA kernel makes the same choices):
//  1. Codes: bit b of query i is set iff dot([q_i, 1], hyperplane_b) > 0, an fp32 matmul of the
//     upcast queries. Queries whose projection is within rounding of 0 may hash differently under
//     another summation order.
//  2. Initial centroids: the codes of the queries at indices floor(c * N / C), c = 0..C-1.
//  3. `iterations` Lloyd steps s: each query joins the centroid at the smallest Hamming distance
//     popcount(code ^ centroid), ties to the lowest centroid index; then bit b of each centroid
//     := 1 iff 2 * (members with bit b set) > members, ties[s] where 2 * set == members; a
//     cluster without members takes the code reseed[s] (as in fast-transformers, so that a
//     duplicate initial code does not leave a cluster empty for good).
//  4. The returned assignment uses the final centroids (iterations = 0: the initial ones).
// Hamming distances come from a matmul of +-1 bit vectors: dot = bits - 2 * distance, exact
// small integers in fp32 for bits <= 63.
at::Tensor clustered_assign(const at::Tensor& q, const ClusteredOptions& options, const ClusteredDraws& draws) {
  options.validate();
  options.validate_lengths(q.size(2), q.size(2));
  check_draws(q, options, draws);
  at::NoGradGuard no_grad;
  const AutocastOff fp32;
  const int64_t clusters = options.clusters;
  auto query_bits = clustered_hash_bits(q, draws.hyperplanes).to(at::kFloat);  // [B, H, N, bits] in {0, 1}
  auto query_signs = query_bits * 2 - 1;                                         // {-1, +1}
  auto centroid_bits = query_bits.index_select(2, initial_centroid_indices(q.size(2), clusters, q));

  auto assign = [&] {
    // agreement = bits - 2 * distance: the largest agreement is the smallest distance.
    auto agreement = at::matmul(query_signs, (centroid_bits * 2 - 1).transpose(-1, -2));  // [B, H, N, C]
    return agreement.argmax(-1);  // first maximum: ties go to the lowest centroid index
  };
  for (int64_t step = 0; step < options.iterations; ++step) {
    auto assignment = assign();
    auto members = cluster_counts(assignment, clusters, at::kFloat).unsqueeze(-1);
    auto twice_set = cluster_sums(query_bits, assignment, clusters) * 2;
    auto ties = draws.ties[step].to(q.device(), at::kFloat);
    auto majority = at::where(twice_set.eq(members), ties, twice_set.gt(members).to(at::kFloat));
    centroid_bits = at::where(members.gt(0), majority, draws.reseed[step].to(q.device(), at::kFloat));
  }
  return assign();
}

at::Tensor clustered_assign_dispatch(const at::Tensor& q, const ClusteredOptions& options,
                                     const ClusteredDraws& draws, Backend backend) {
  if (backend == Backend::Reference || !kernels::hamming_kmeans_supports(q)) {
    return clustered_assign(q, options, draws);
  }
  options.validate();
  options.validate_lengths(q.size(2), q.size(2));
  check_draws(q, options, draws);
  at::NoGradGuard no_grad;
  auto codes = pack_bits(clustered_hash_bits(q, draws.hyperplanes));  // [B, H, N]
  auto initial = codes.index_select(2, initial_centroid_indices(q.size(2), options.clusters, q));
  return kernels::hamming_kmeans_cuda(codes, initial, pack_bits(draws.reseed), pack_bits(draws.ties), options.bits);
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

at::Tensor clustered_attention_fused(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                     int64_t clusters, double scale, const at::Tensor& assignment,
                                     kernels::FusedKernel kernel) {
  check_reference_args(q, k, v, clusters, assignment, "clustered_attention_fused");
  const auto type = compute_dtype(q);
  const int64_t b = q.size(0), h = q.size(1), m = k.size(2);
  auto counts = cluster_counts(assignment, clusters, type).clamp_min(1);
  auto centroids = (cluster_sums(q.to(type), assignment, clusters) / counts.unsqueeze(-1)).to(q.scalar_type());
  // One problem per (b, h): its C centroids attend to its M keys.
  auto centroid_rows = at::arange(b * h * clusters, assignment.options()).view({b * h, clusters});
  auto key_rows = at::arange(b * h * m, assignment.options()).view({b * h, m});
  auto values = gathered_attention(row_table(centroids), row_table(k), row_table(v), centroid_rows, key_rows, scale,
                                   kernel);
  PhaseTimer phase(kPhaseMerge);
  return gather_rows(values.view({b, h, clusters, v.size(3)}), assignment);
}

at::Tensor improved_clustered_attention_fused(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                              int64_t clusters, int64_t topk, double scale,
                                              const at::Tensor& assignment, kernels::FusedKernel kernel,
                                              int64_t topk_tile) {
  check_reference_args(q, k, v, clusters, assignment, "improved_clustered_attention_fused");
  if (topk < 1 || topk > k.size(2)) {
    throw std::invalid_argument("improved_clustered_attention_fused: topk must be in [1, M]");
  }
  if (topk_tile < 1) throw std::invalid_argument("improved_clustered_attention_fused: topk_tile must be >= 1");
  const auto type = compute_dtype(q);
  const int64_t b = q.size(0), h = q.size(1), n = q.size(2), dv = v.size(3);
  auto vc = v.to(type);
  // Centroid weights A [B, H, C, M] and their split into the top-k mass m_c and the rest R_c, as
  // in the reference.
  auto [weights, values] = centroid_attention(q.to(type), k.to(type), vc, clusters, scale, assignment);
  auto top_keys = std::get<1>(weights.detach().topk(topk, -1));  // [B, H, C, topk]
  auto top_weights = weights.gather(-1, top_keys);
  auto mass = top_weights.sum(-1, /*keepdim=*/true);
  auto top_values = gather_rows(vc, top_keys.flatten(2)).view({b, h, clusters, topk, dv});
  auto rest = values - at::matmul(top_weights.unsqueeze(-2), top_values).squeeze(-2);  // [B, H, C, Dv]

  auto [query_rows, key_rows] = topk_problems(assignment, top_keys, clusters, k.size(2), topk_tile);
  auto exact = gathered_attention(row_table(q), row_table(k), row_table(v), query_rows, key_rows, scale, kernel);
  PhaseTimer phase(kPhaseMerge);
  auto out = gather_rows(mass, assignment) * exact.view({b, h, n, dv}).to(type) + gather_rows(rest, assignment);
  return out.to(q.scalar_type());
}

namespace {

// The draws and the assignment of a call (the "hash" phase).
at::Tensor clustered_assignment(const at::Tensor& q, const ClusteredOptions& options, const CallOptions& call) {
  PhaseTimer phase(kPhaseHash);
  auto draws = clustered_draw(q.size(0), q.size(1), options, q.size(3), resolve_generator(call), q.device());
  return clustered_assign_dispatch(q, options, draws, call.backend);
}

}  // namespace

at::Tensor clustered_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               const ClusteredOptions& options, const CallOptions& call) {
  options.validate();
  options.validate_lengths(q.size(2), k.size(2));
  const double scale = resolve_scale(call, q.size(3));
  const bool reference = call.backend == Backend::Reference;
  const auto kernel = reference ? kernels::FusedKernel::Math : fused_kernel_for_call(call, q, "clustered");
  record_implementation(reference ? "aten reference" : std::string("fused ") + kernels::fused_kernel_name(kernel));
  auto assignment = clustered_assignment(q, options, call);
  if (reference) return clustered_attention_reference(q, k, v, options.clusters, scale, assignment);
  return clustered_attention_fused(q, k, v, options.clusters, scale, assignment, kernel);
}

at::Tensor improved_clustered_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        const ImprovedClusteredOptions& options, const CallOptions& call) {
  options.validate();
  options.validate_lengths(q.size(2), k.size(2));
  const auto& clustering = options.clustering;
  const double scale = resolve_scale(call, q.size(3));
  const bool reference = call.backend == Backend::Reference;
  const auto kernel = reference ? kernels::FusedKernel::Math : fused_kernel_for_call(call, q, "improved_clustered");
  record_implementation(reference ? "aten reference" : std::string("fused ") + kernels::fused_kernel_name(kernel));
  auto assignment = clustered_assignment(q, clustering, call);
  if (reference) {
    return improved_clustered_attention_reference(q, k, v, clustering.clusters, options.topk, scale, assignment);
  }
  return improved_clustered_attention_fused(q, k, v, clustering.clusters, options.topk, scale, assignment, kernel);
}

}  // namespace longgan::attention

// clustered / improved_clustered on CUDA: hash codes in ATen, Hamming k-means in kernels, centroid
// attention in ATen (C x M is small), and the exact top-k recomputation of improved_clustered in
// kernels (an autograd function whose backward is a kernel too).
#include <torch/autograd.h>

#include <stdexcept>
#include <string>

#include "kernels/attention_kernels.h"
#include "kernels/kernel_inputs.h"
#include "longgan/build_config.h"

#if LONGGAN_HAVE_CUDA
#include <c10/cuda/CUDAGuard.h>
#endif

namespace longgan::kernels {

#if LONGGAN_HAVE_CUDA
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

void require_assignment(const char* what, const at::Tensor& q, const at::Tensor& assignment, int64_t clusters) {
  if (clusters < 1 || clusters > q.size(2)) {
    throw std::invalid_argument(std::string(what) + " kernel: clusters=" + std::to_string(clusters) +
                                " must be in [1, N=" + std::to_string(q.size(2)) + "]");
  }
  require_tensor(what, "assignment", assignment, q, at::kLong, {q.size(0), q.size(1), q.size(2)});
  if (assignment.min().item<int64_t>() < 0 || assignment.max().item<int64_t>() >= clusters) {
    throw std::invalid_argument(std::string(what) + " kernel: assignment values must be in [0, " +
                                std::to_string(clusters) + ")");
  }
}

// Bit b of code i is set iff [q_i, 1] . hyperplane_b > 0 (fp32): int64 [B, H, N].
at::Tensor hash_codes(const at::Tensor& q, const at::Tensor& hyperplanes) {
  const at::Tensor qf = q.to(at::kFloat);
  const at::Tensor augmented = at::cat({qf, at::ones_like(qf.narrow(-1, 0, 1))}, -1);  // [B, H, N, D + 1]
  const at::Tensor bits = at::matmul(augmented, hyperplanes.transpose(-1, -2)).gt(0);   // [B, H, N, bits]
  const at::Tensor powers = at::pow(2, at::arange(hyperplanes.size(2), q.options().dtype(at::kLong)));
  return (bits.to(at::kLong) * powers).sum(-1).contiguous();
}

// Mean of the member queries of every cluster (zero for empty clusters): fp32 [B, H, C, Dqk].
at::Tensor centroid_queries(const at::Tensor& q, const at::Tensor& assignment, int64_t clusters) {
  const at::Tensor qf = q.to(at::kFloat);
  const int64_t b = q.size(0), h = q.size(1), d = q.size(3);
  const at::Tensor sums =
      at::zeros({b, h, clusters, d}, qf.options()).scatter_add(2, assignment.unsqueeze(-1).expand({b, h, -1, d}), qf);
  const at::Tensor counts = at::zeros({b, h, clusters}, qf.options())
                                .scatter_add(2, assignment, at::ones_like(assignment, qf.options()));
  return sums / counts.clamp_min(1).unsqueeze(-1);
}

// Rows `assignment` of per-cluster values [B, H, C, D] -> [B, H, N, D].
at::Tensor broadcast_to_queries(const at::Tensor& per_cluster, const at::Tensor& assignment) {
  return per_cluster.gather(2, assignment.unsqueeze(-1).expand({-1, -1, -1, per_cluster.size(3)}));
}

TopkArgs topk_args(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& topk_index,
                   const at::Tensor& assignment, double scale) {
  TopkArgs args;
  args.qkv = qkv_args(q, k, v, scale);
  args.assignment = assignment.data_ptr<int64_t>();
  args.topk_index = topk_index.data_ptr<int64_t>();
  args.clusters = topk_index.size(2);
  args.topk = topk_index.size(3);
  return args;
}

// o_i = softmax_{t}(q_i . k_{idx[c(i), t]} * scale) v_{idx[c(i), t]}: fp32 [B, H, N, Dv].
// Inputs: contiguous q, k, v, topk_index int64 [B, H, C, K], assignment int64 [B, H, N].
class TopkAttentionFunction : public torch::autograd::Function<TopkAttentionFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& topk_index, const at::Tensor& assignment, double scale) {
    const c10::cuda::CUDAGuard guard(q.device());
    const auto options = q.options().dtype(at::kFloat);
    at::Tensor out = at::empty({q.size(0), q.size(1), q.size(2), v.size(3)}, options);
    at::Tensor lse = at::empty({q.size(0), q.size(1), q.size(2)}, options);
    topk_attention_forward(topk_args(q, k, v, topk_index, assignment, scale), out.data_ptr<float>(),
                           lse.data_ptr<float>(), current_stream(q));
    ctx->save_for_backward({q, k, v, topk_index, assignment, out, lse});
    ctx->saved_data["scale"] = scale;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &topk_index = saved[3], &assignment = saved[4];
    const at::Tensor &out = saved[5], &lse = saved[6];
    const c10::cuda::CUDAGuard guard(q.device());
    const at::Tensor grad_out = grads[0].defined() ? grads[0].to(at::kFloat).contiguous() : at::zeros_like(out);
    const at::Tensor delta = (grad_out * out).sum(-1).contiguous();
    // Queries grouped by cluster for the key-side backward: members and offsets per (b, h).
    const int64_t clusters = topk_index.size(2);
    const at::Tensor members = std::get<1>(at::sort(assignment, std::optional<bool>(true), /*dim=*/-1)).contiguous();
    const at::Tensor counts =
        at::zeros({q.size(0), q.size(1), clusters}, assignment.options()).scatter_add(2, assignment,
                                                                                     at::ones_like(assignment));
    const at::Tensor offsets = at::cat({at::zeros_like(counts.narrow(2, 0, 1)), counts.cumsum(2)}, 2).contiguous();
    TopkArgs args = topk_args(q, k, v, topk_index, assignment, ctx->saved_data["scale"].toDouble());
    args.members = members.data_ptr<int64_t>();
    args.member_offsets = offsets.data_ptr<int64_t>();
    const auto options = q.options().dtype(at::kFloat);
    at::Tensor dq = at::empty(q.sizes(), options);
    at::Tensor dk = at::zeros(k.sizes(), options);
    at::Tensor dv = at::zeros(v.sizes(), options);
    topk_attention_backward(args, grad_out.data_ptr<float>(), lse.data_ptr<float>(), delta.data_ptr<float>(),
                            dq.data_ptr<float>(), dk.data_ptr<float>(), dv.data_ptr<float>(), current_stream(q));
    const auto type = q.scalar_type();
    return {dq.to(type), dk.to(type), dv.to(type), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor clustered_assign_cuda(const at::Tensor& q, const at::Tensor& hyperplanes, int64_t clusters,
                                 int64_t iterations) {
  if (!q.defined() || !q.is_cuda() || q.dim() != 4 ||
      (q.scalar_type() != at::kFloat && q.scalar_type() != at::kBFloat16)) {
    throw std::invalid_argument("clustered kernel: q must be a float32 or bfloat16 CUDA tensor [B, H, N, Dqk]");
  }
  const int64_t b = q.size(0), h = q.size(1), n = q.size(2);
  if (clusters < 1 || clusters > n || iterations < 0) {
    throw std::invalid_argument("clustered kernel: clusters=" + std::to_string(clusters) + " must be in [1, N=" +
                                std::to_string(n) + "] and iterations=" + std::to_string(iterations) + " >= 0");
  }
  if (hyperplanes.dim() != 4 || hyperplanes.size(2) < 1 || hyperplanes.size(2) > 63) {
    throw std::invalid_argument("clustered kernel: hyperplanes must be [B, H, bits, Dqk + 1] with bits in [1, 63]");
  }
  const int64_t bits = hyperplanes.size(2);
  require_tensor("clustered", "hyperplanes", hyperplanes, q, at::kFloat, {b, h, bits, q.size(3) + 1});
  const c10::cuda::CUDAGuard guard(q.device());
  at::NoGradGuard no_grad;
  const at::Tensor codes = hash_codes(q, hyperplanes);
  // Initial centroids: the codes of queries floor(c * N / C).
  const at::Tensor first = at::arange(clusters, codes.options()).mul(n).div(clusters, "floor");
  at::Tensor centroids = codes.index_select(2, first).contiguous();
  at::Tensor assignment = at::empty({b, h, n}, codes.options());
  at::Tensor scratch = at::empty({b * h * clusters * 65}, codes.options().dtype(at::kInt));
  hamming_kmeans(codes.data_ptr<int64_t>(), centroids.data_ptr<int64_t>(), assignment.data_ptr<int64_t>(),
                 scratch.data_ptr<int32_t>(), b * h, n, clusters, bits, iterations, current_stream(q));
  return assignment;
}

at::Tensor clustered_attention_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t clusters,
                                    double scale, const at::Tensor& assignment) {
  require_kernel_inputs("clustered", q, k, v);
  require_assignment("clustered", q, assignment, clusters);
  const c10::cuda::CUDAGuard guard(q.device());
  const at::Tensor centroids = centroid_queries(q, assignment, clusters);
  const at::Tensor attention = at::softmax(at::matmul(centroids, k.to(at::kFloat).transpose(-1, -2)) * scale, -1);
  const at::Tensor values = at::matmul(attention, v.to(at::kFloat));  // [B, H, C, Dv]
  return broadcast_to_queries(values, assignment).to(q.scalar_type());
}

at::Tensor improved_clustered_attention_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                             int64_t clusters, int64_t topk, double scale,
                                             const at::Tensor& assignment) {
  require_kernel_inputs("improved_clustered", q, k, v);
  require_assignment("improved_clustered", q, assignment, clusters);
  if (topk < 1 || topk > k.size(2)) {
    throw std::invalid_argument("improved_clustered kernel: topk=" + std::to_string(topk) + " must be in [1, M=" +
                                std::to_string(k.size(2)) + "]");
  }
  const c10::cuda::CUDAGuard guard(q.device());
  const at::Tensor vf = v.to(at::kFloat);
  const at::Tensor centroids = centroid_queries(q, assignment, clusters);
  const at::Tensor attention = at::softmax(at::matmul(centroids, k.to(at::kFloat).transpose(-1, -2)) * scale, -1);
  const at::Tensor values = at::matmul(attention, vf);  // [B, H, C, Dv]
  const at::Tensor topk_index = std::get<1>(at::topk(attention.detach(), topk, -1)).contiguous();  // [B, H, C, K]
  const at::Tensor topk_weights = attention.gather(-1, topk_index);                                // [B, H, C, K]
  const at::Tensor mass = topk_weights.sum(-1, true);                                              // [B, H, C, 1]
  const int64_t b = q.size(0), h = q.size(1), dv = v.size(3);
  const at::Tensor topk_values =
      vf.gather(2, topk_index.view({b, h, clusters * topk, 1}).expand({b, h, clusters * topk, dv}))
          .view({b, h, clusters, topk, dv});
  // The centroid's attention on the keys outside its top-k.
  const at::Tensor rest = values - (topk_weights.unsqueeze(-1) * topk_values).sum(3);  // [B, H, C, Dv]
  const at::Tensor exact = TopkAttentionFunction::apply(q.contiguous(), k.contiguous(), v.contiguous(), topk_index,
                                                        assignment.contiguous(), scale);  // [B, H, N, Dv]
  const at::Tensor out = broadcast_to_queries(mass, assignment) * exact + broadcast_to_queries(rest, assignment);
  return out.to(q.scalar_type());
}

#else

at::Tensor clustered_assign_cuda(const at::Tensor&, const at::Tensor&, int64_t, int64_t) {
  throw std::invalid_argument("clustered kernel: no CUDA kernels in this build; use the reference backend");
}
at::Tensor clustered_attention_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t, double,
                                    const at::Tensor&) {
  require_kernel_inputs("clustered", q, k, v);  // always throws in a build without CUDA
  throw std::logic_error("clustered kernel: unreachable");
}
at::Tensor improved_clustered_attention_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t,
                                             int64_t, double, const at::Tensor&) {
  require_kernel_inputs("improved_clustered", q, k, v);
  throw std::logic_error("improved_clustered kernel: unreachable");
}

#endif

}  // namespace longgan::kernels

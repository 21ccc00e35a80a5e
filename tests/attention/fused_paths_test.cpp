// The fused paths (clusters gathered into batches for a fused kernel) against the references, with
// the same random draws: outputs and every input gradient, for the CPU flash kernel and the
// plain-ATen kernel, fp64/fp32/bf16, N != M, lengths that do not divide, batch and heads > 1,
// single-element clusters, top-k > 128, more than 1024 centroids, non-contiguous inputs; and the
// same on CUDA when a GPU is present.
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <cmath>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "attention/gathered_attention.h"
#include "attention_test_support.h"

namespace longgan::attention {
namespace {

using testing::randn;
using testing::seeded;

struct Result {
  at::Tensor out, dq, dk, dv;
};

using AttentionFn = std::function<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&)>;

// Output and gradients of sum(f(q, k, v) * weight) on leaf copies of the inputs.
Result run(const AttentionFn& f, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  auto ql = q.detach().clone().requires_grad_(true);
  auto kl = k.detach().clone().requires_grad_(true);
  auto vl = v.detach().clone().requires_grad_(true);
  auto out = f(ql, kl, vl);
  // A weight per output element: the rounds of SMYRF (and the queries of a cluster) get uneven gradients.
  auto weight = at::randn(out.sizes(), seeded(77), at::TensorOptions().dtype(at::kFloat)).to(out.device());
  (out.to(at::kFloat) * weight).sum().backward();
  return {out.detach(), ql.grad(), kl.grad(), vl.grad()};
}

// Norm-relative tolerances. fp64 and fp32: the fused paths compute the reference's function and
// only the summation order differs; gradients that are small differences of larger terms (merge
// weights of tiny clusters) amplify it (fp32 dq measured up to 9.5e-5). bf16: the kernels store
// their output in bf16 and the backward's delta term reads it (as FlashAttention does), so the
// gradients carry that rounding; measured on these cases up to 0.0024 (out), 0.048 (dq), 0.023 (dk)
// and 0.0052 (dv).
double tolerance_for(at::ScalarType type, const char* what) {
  const bool out = std::string(what) == "out", dq = std::string(what) == "dq";
  if (type == at::kDouble) return 1e-10;
  if (type == at::kFloat) return out ? 2e-5 : 3e-4;
  return out ? 1e-2 : dq ? 8e-2 : 4e-2;
}

// ||got - want|| / ||want|| for each of out, dq, dk, dv (dq skipped in bf16 where `bf16_dq` is false).
void expect_equal_results(const Result& got, const Result& want, at::ScalarType type, const std::string& what,
                          bool bf16_dq = true) {
  ASSERT_TRUE(got.dq.defined() && got.dk.defined() && got.dv.defined()) << what << ": missing gradients";
  EXPECT_EQ(got.out.scalar_type(), type) << what;
  EXPECT_EQ(got.dq.scalar_type(), type) << what;
  const char* names[] = {"out", "dq", "dk", "dv"};
  const at::Tensor* pairs[][2] = {{&got.out, &want.out}, {&got.dq, &want.dq}, {&got.dk, &want.dk}, {&got.dv, &want.dv}};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(pairs[i][0]->sizes(), pairs[i][1]->sizes()) << what << ": " << names[i];
    if (type == at::kBFloat16 && i == 1 && !bf16_dq) continue;
    EXPECT_LT(testing::relative_error(pairs[i][0]->cpu(), pairs[i][1]->cpu()), tolerance_for(type, names[i]))
        << what << ": " << names[i];
  }
}

struct Shape {
  int64_t b, h, n, m, dqk, dv;
};

struct Inputs {
  at::Tensor q, k, v;
};

// Structured inputs (tokens around shared centres, so that clusters mean something), rounded to
// `type`; `strided` gives non-contiguous tensors with the same values.
Inputs make_inputs(const Shape& s, at::ScalarType type, at::Device device, bool strided, uint64_t seed) {
  auto in = testing::structured_inputs(s.b, s.h, s.n, s.m, s.dqk, s.dv, 4, seed);
  auto place = [&](const at::Tensor& t) {
    auto placed = t.to(device, type);
    if (!strided) return placed;
    // The same values in every other column of a wider tensor: strided rows.
    auto sizes = placed.sizes().vec();
    sizes.back() *= 2;
    auto wide = at::zeros(sizes, placed.options());
    auto strided = wide.slice(-1, 0, sizes.back(), 2);
    strided.copy_(placed);
    return strided;
  };
  Inputs out{place(in.q), place(in.k), place(in.v)};
  if (strided) EXPECT_FALSE(out.q.is_contiguous());
  return out;
}

std::string describe(const AttentionSpec& spec, const Shape& s, at::ScalarType type, Backend backend) {
  return to_string(spec) + " B=" + std::to_string(s.b) + " H=" + std::to_string(s.h) + " N=" + std::to_string(s.n) +
         " M=" + std::to_string(s.m) + " Dqk=" + std::to_string(s.dqk) + " Dv=" + std::to_string(s.dv) + " " +
         c10::toString(type) + " " + backend_name(backend);
}

// attend() with `backend` equals attend() with the reference, for one generator seed.
void expect_fused_equals_reference(const AttentionSpec& spec, const Shape& shape, at::Device device,
                                   bool strided = false, bool bf16_dq = true) {
  for (auto type : {at::kDouble, at::kFloat, at::kBFloat16}) {
    auto in = make_inputs(shape, type, device, strided, 3);
    auto with = [&](Backend backend) {
      return [&, backend](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
        return attend(spec, q, k, v, {.backend = backend, .generator = seeded(11)});
      };
    };
    auto reference = run(with(Backend::Reference), in.q, in.k, in.v);
    for (auto backend : {Backend::Auto, Backend::FusedMath}) {
      expect_equal_results(run(with(backend), in.q, in.k, in.v), reference, type, describe(spec, shape, type, backend),
                           bf16_dq);
    }
  }
}

SmyrfOptions smyrf(int64_t hashes, int64_t q_cluster, int64_t k_cluster) { return {hashes, q_cluster, k_cluster}; }

void smyrf_cases(at::Device device) {
  expect_fused_equals_reference(smyrf(3, 16, 4), {2, 3, 64, 16, 8, 12}, device);       // divisible
  expect_fused_equals_reference(smyrf(2, 8, 4), {2, 2, 30, 13, 6, 4}, device);         // a shorter last cluster
  // Last cluster 1 query and 1 key. Its bf16 dq is a near-cancelling sum of per-round terms that
  // the bf16 output dominates (measured 0.26); fp64 and fp32 check it exactly.
  expect_fused_equals_reference(smyrf(2, 4, 2), {1, 2, 9, 5, 4, 3}, device, false, false);
  expect_fused_equals_reference(smyrf(4, 1, 1), {1, 1, 6, 6, 5, 7}, device);           // single-element clusters
  expect_fused_equals_reference(smyrf(2, 32, 12), {1, 1, 32, 12, 16, 4}, device);      // one cluster: dense
  expect_fused_equals_reference(smyrf(2, 16, 8), {2, 2, 48, 24, 8, 16}, device, true);  // non-contiguous
  // More query rows than one CPU kernel call takes (8192): the 18 full clusters in calls of 16
  // and 2, then the shorter last cluster.
  expect_fused_equals_reference(smyrf(2, 500, 125), {1, 1, 9100, 2300, 4, 4}, device);
}

void clustered_cases(at::Device device) {
  expect_fused_equals_reference(ClusteredOptions{.clusters = 5, .bits = 16, .iterations = 3}, {2, 3, 40, 17, 8, 12},
                                device);
  expect_fused_equals_reference(ClusteredOptions{.clusters = 12, .bits = 8}, {1, 2, 12, 9, 4, 6}, device, true);
  // More than 1024 centroids, some of them single queries.
  expect_fused_equals_reference(ClusteredOptions{.clusters = 1030, .bits = 20, .iterations = 2}, {1, 1, 1100, 24, 4, 4},
                                device);
}

void improved_cases(at::Device device) {
  expect_fused_equals_reference(ImprovedClusteredOptions{.clustering = {.clusters = 5, .bits = 16}, .topk = 6},
                                {2, 3, 40, 17, 8, 12}, device);
  // Top-k above 128.
  expect_fused_equals_reference(ImprovedClusteredOptions{.clustering = {.clusters = 3, .bits = 12}, .topk = 150},
                                {1, 2, 70, 200, 6, 5}, device);
  // Clusters larger than a tile of 64 queries, and non-contiguous inputs.
  expect_fused_equals_reference(ImprovedClusteredOptions{.clustering = {.clusters = 2, .bits = 4}, .topk = 7},
                                {1, 1, 300, 20, 4, 4}, device, true);
  // More than 1024 centroids.
  expect_fused_equals_reference(
      ImprovedClusteredOptions{.clustering = {.clusters = 1030, .bits = 20, .iterations = 2}, .topk = 3},
      {1, 1, 1100, 24, 4, 4}, device);
}

TEST(FusedPaths, SmyrfEqualsReference) { smyrf_cases(at::kCPU); }
TEST(FusedPaths, ClusteredEqualsReference) { clustered_cases(at::kCPU); }
TEST(FusedPaths, ImprovedClusteredEqualsReference) { improved_cases(at::kCPU); }

TEST(FusedPaths, ImprovedClusteredTilesOfAnySizeGiveTheSameResult) {
  // Tiles of 1 (one query per problem), 3 (last tiles of clusters half empty) and 64.
  auto in = make_inputs({2, 2, 50, 19, 6, 5}, at::kDouble, at::kCPU, false, 5);
  auto assignment = at::arange(50, at::kLong).remainder(7).expand({2, 2, 50}).contiguous();
  auto f = [&](int64_t tile) {
    return [&, tile](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
      return improved_clustered_attention_fused(q, k, v, 9, 4, 0.4, assignment, kernels::FusedKernel::CpuFlash, tile);
    };
  };
  auto reference = run(
      [&](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
        return improved_clustered_attention_reference(q, k, v, 9, 4, 0.4, assignment);  // clusters 7, 8 empty
      },
      in.q, in.k, in.v);
  for (int64_t tile : {1, 3, 64}) {
    expect_equal_results(run(f(tile), in.q, in.k, in.v), reference, at::kDouble, "tile " + std::to_string(tile));
  }
}

TEST(FusedPaths, SmyrfGradientsMatchFiniteDifferences) {
  // The fused backward (kernel backward with the merged output) against central differences, in
  // fp64 on the CPU flash kernel, with the hash orders fixed; hashes >= 2 so that the gradient
  // through the merge weights matters, and lengths that do not divide.
  auto q = randn({1, 2, 10, 3}, 14, at::kDouble), k = randn({1, 2, 7, 3}, 15, at::kDouble);
  auto v = randn({1, 2, 7, 2}, 16, at::kDouble);
  auto options = smyrf(3, 4, 3);
  auto orders = smyrf_sort_orders(q, k, smyrf_draw_projections(1, 2, 3, 3, seeded(13), at::kCPU));
  for (auto kernel : {kernels::FusedKernel::CpuFlash, kernels::FusedKernel::Math}) {
    for (auto merge : {SmyrfRoundMerge::Online, SmyrfRoundMerge::Buffered}) {
      auto f = [&](const at::Tensor& a, const at::Tensor& b, const at::Tensor& c) {
        return smyrf_attention_fused(a, b, c, options, 0.8, orders, kernel, merge);
      };
      EXPECT_LT(testing::max_gradient_error(f, q, k, v), 1e-7)
          << kernels::fused_kernel_name(kernel) << (merge == SmyrfRoundMerge::Online ? " online" : " buffered");
    }
  }
}

// Both ways of merging the hash rounds give the reference's function, outputs and gradients, for
// one round and several, one kernel call per round and several (CUDA takes Buffered by default, the
// CPU Online: both run here).
TEST(FusedPaths, SmyrfRoundMergesEqualTheReference) {
  EXPECT_EQ(default_round_merge(kernels::FusedKernel::CudaEfficient), SmyrfRoundMerge::Buffered);
  EXPECT_EQ(default_round_merge(kernels::FusedKernel::CpuFlash), SmyrfRoundMerge::Online);
  const std::vector<std::pair<SmyrfOptions, Shape>> cases = {
      {smyrf(1, 8, 4), {2, 2, 30, 13, 6, 4}},          // one round: no merging at all
      {smyrf(3, 16, 4), {2, 3, 64, 16, 8, 12}},        // three rounds, one call each
      {smyrf(2, 500, 125), {1, 1, 9100, 2300, 4, 4}},  // several calls per round
  };
  for (const auto& [options, shape] : cases) {
    for (auto type : {at::kDouble, at::kFloat, at::kBFloat16}) {
      auto in = make_inputs(shape, type, at::kCPU, false, 6);
      auto projections = smyrf_draw_projections(shape.b, shape.h, options.hashes, shape.dqk, seeded(2), at::kCPU);
      auto orders = smyrf_sort_orders(in.q, in.k, projections);
      const double scale = 1.0 / std::sqrt(static_cast<double>(shape.dqk));
      auto reference = run(
          [&](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
            return smyrf_attention_reference(q, k, v, options, scale, projections);
          },
          in.q, in.k, in.v);
      for (auto merge : {SmyrfRoundMerge::Online, SmyrfRoundMerge::Buffered}) {
        auto fused = run(
            [&](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
              return smyrf_attention_fused(q, k, v, options, scale, orders, kernels::FusedKernel::CpuFlash, merge);
            },
            in.q, in.k, in.v);
        const std::string what = describe(options, shape, type, Backend::Fused) +
                                 (merge == SmyrfRoundMerge::Online ? " online" : " buffered");
        // bf16 dq: a near-cancelling sum whose delta term reads the bf16 output (measured up to
        // 0.095 on these inputs, both merges alike); checked at that size, the rest as everywhere.
        expect_equal_results(fused, reference, type, what, /*bf16_dq=*/false);
        if (type == at::kBFloat16) EXPECT_LT(testing::relative_error(fused.dq, reference.dq), 0.15) << what << ": dq";
      }
    }
  }
}

TEST(FusedPaths, ImprovedClusteredGradientsMatchFiniteDifferences) {
  auto assignment = at::tensor({1, 0, 1, 1, 0, 2, 1}, at::kLong).expand({1, 2, 7}).contiguous();
  auto f = [&](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
    return improved_clustered_attention_fused(q, k, v, 4, 2, 0.7, assignment, kernels::FusedKernel::CpuFlash, 2);
  };
  EXPECT_LT(testing::max_gradient_error(f, randn({1, 2, 7, 3}, 7), randn({1, 2, 5, 3}, 8), randn({1, 2, 5, 2}, 9)),
            1e-7);
}

TEST(FusedPaths, ForcedBackends) {
  auto q = randn({1, 1, 16, 4}, 19), k = randn({1, 1, 16, 4}, 20), v = randn({1, 1, 16, 4}, 21);
  // backend=fused runs the CPU's flash kernel; backend=reference is exactly the reference function.
  EXPECT_NO_THROW(attend(smyrf(2, 4, 4), q, k, v, {.backend = Backend::Fused}));
  auto projections = smyrf_draw_projections(1, 1, 2, 4, seeded(5), at::kCPU);
  EXPECT_TRUE(at::equal(attend(smyrf(2, 4, 4), q, k, v, {.backend = Backend::Reference, .generator = seeded(5)}),
                        smyrf_attention_reference(q, k, v, smyrf(2, 4, 4), 0.5, projections)));
  // No fused kernel takes integer tensors: the fused backend says so and what to use instead.
  try {
    fused_kernel_for_call({.backend = Backend::Fused}, q.to(at::kLong), "smyrf");
    FAIL() << "backend=fused accepted int64 inputs";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("backend=reference"), std::string::npos) << e.what();
  }
  EXPECT_EQ(parse_backend("fused_math"), Backend::FusedMath);
  EXPECT_THROW(parse_backend("kernel"), std::invalid_argument);
}

// Batches over a kernel's problem limit (CUDA's 65,535) go in several calls. With the limit lowered
// the SMYRF and clustered paths give what one call per batch gives, gradients included: the same
// function, up to BLAS rounding (MKL's results depend on buffer alignment, which the split moves).
TEST(FusedPaths, CallsSplitAtTheProblemLimitGiveTheSameResults) {
  // B*H = 8 groups: clustered's centroid problems (one per group) split too.
  auto in = make_inputs({2, 4, 48, 24, 8, 16}, at::kFloat, at::kCPU, false, 4);
  for (const AttentionSpec& spec : {AttentionSpec{smyrf(3, 4, 2)}, AttentionSpec{ClusteredOptions{.clusters = 6}},
                                    AttentionSpec{ImprovedClusteredOptions{.clustering = {.clusters = 6}, .topk = 5}}}) {
    auto f = [&](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
      return attend(spec, q, k, v, {.generator = seeded(8)});
    };
    auto whole = run(f, in.q, in.k, in.v);
    const kernels::ScopedProblemLimitForTesting limit(5);  // SMYRF: 48 problems per round in calls of 5
    auto split = run(f, in.q, in.k, in.v);
    const std::string what = to_string(spec);
    EXPECT_LT(testing::relative_error(split.out, whole.out), 1e-6) << what;
    EXPECT_LT(testing::relative_error(split.dq, whole.dq), 1e-6) << what;
    EXPECT_LT(testing::relative_error(split.dk, whole.dk), 1e-6) << what;
    EXPECT_LT(testing::relative_error(split.dv, whole.dv), 1e-6) << what;
  }
}

TEST(FusedPaths, CudaEqualsReference) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  smyrf_cases(at::kCUDA);
  clustered_cases(at::kCUDA);
  improved_cases(at::kCUDA);
}

TEST(FusedPaths, CudaEqualsCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  // Draws are made on the CPU and moved: both devices hash and cluster alike for one seed.
  for (const AttentionSpec& spec : {AttentionSpec{smyrf(2, 16, 8)}, AttentionSpec{ClusteredOptions{.clusters = 6}},
                                    AttentionSpec{ImprovedClusteredOptions{.clustering = {.clusters = 6}, .topk = 5}}}) {
    auto in = make_inputs({2, 2, 64, 32, 8, 16}, at::kFloat, at::kCPU, false, 9);
    auto cpu = attend(spec, in.q, in.k, in.v, {.generator = seeded(42)});
    auto cuda = attend(spec, in.q.cuda(), in.k.cuda(), in.v.cuda(), {.generator = seeded(42)});
    EXPECT_LT(testing::relative_error(cuda.cpu(), cpu), 1e-4) << to_string(spec);
  }
}

}  // namespace
}  // namespace longgan::attention

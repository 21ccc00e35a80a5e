#pragma once
// Helpers of the kernel tests: outputs and input gradients of an attention function, and
// their comparison with a reference by relative max error.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <string>

namespace longgan::kernels::testing {

using AttentionFn = std::function<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&)>;

struct Result {
  at::Tensor out, dq, dk, dv;
};

// Runs fn on leaf copies of q, k, v and back-propagates sum(out * weight).
inline Result run_with_grads(const AttentionFn& fn, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             const at::Tensor& weight) {
  at::Tensor ql = q.detach().clone().requires_grad_(true);
  at::Tensor kl = k.detach().clone().requires_grad_(true);
  at::Tensor vl = v.detach().clone().requires_grad_(true);
  at::Tensor out = fn(ql, kl, vl);
  (out.to(at::kFloat) * weight).sum().backward();
  return {out.detach(), ql.grad(), kl.grad(), vl.grad()};
}

// max |got - want| / max |want|, in double.
inline double relative_error(const at::Tensor& got, const at::Tensor& want) {
  const at::Tensor g = got.detach().to(at::kDouble).cpu(), w = want.detach().to(at::kDouble).cpu();
  EXPECT_EQ(g.sizes(), w.sizes());
  const double scale = w.abs().max().item<double>();
  return (g - w).abs().max().item<double>() / (scale > 0 ? scale : 1.0);
}

inline void expect_close(const Result& got, const Result& want, double tolerance, const std::string& what) {
  ASSERT_TRUE(got.dq.defined() && got.dk.defined() && got.dv.defined()) << what << ": missing gradients";
  EXPECT_EQ(got.out.scalar_type(), want.out.scalar_type()) << what;
  EXPECT_LE(relative_error(got.out, want.out), tolerance) << what << ": output";
  EXPECT_LE(relative_error(got.dq, want.dq), tolerance) << what << ": dq";
  EXPECT_LE(relative_error(got.dk, want.dk), tolerance) << what << ": dk";
  EXPECT_LE(relative_error(got.dv, want.dv), tolerance) << what << ": dv";
}

// softmax(q k^T * scale) v in fp32.
inline at::Tensor dense_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale) {
  return at::matmul(at::softmax(at::matmul(q.to(at::kFloat), k.to(at::kFloat).transpose(-1, -2)) * scale, -1),
                    v.to(at::kFloat));
}

struct Inputs {
  at::Tensor q, k, v, weight;
};

// Random q, k, v [B,H,N,Dqk], [B,H,M,Dqk], [B,H,M,Dv] of `type` on the GPU and a gradient weight.
inline Inputs random_inputs(int64_t b, int64_t h, int64_t n, int64_t m, int64_t dqk, int64_t dv, at::ScalarType type,
                            uint64_t seed) {
  torch::manual_seed(seed);
  const auto options = torch::TensorOptions().dtype(at::kFloat);
  Inputs in;
  in.q = torch::randn({b, h, n, dqk}, options).to(torch::kCUDA, type);
  in.k = torch::randn({b, h, m, dqk}, options).to(torch::kCUDA, type);
  in.v = torch::randn({b, h, m, dv}, options).to(torch::kCUDA, type);
  in.weight = torch::randn({b, h, n, dv}, options).to(torch::kCUDA);
  return in;
}

}  // namespace longgan::kernels::testing

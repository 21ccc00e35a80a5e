// Cross-replica batch norm and gradient averaging over a 2-rank Gloo group (two threads of this
// process on a localhost TCPStore) against single-process batch norm on the whole batch.
#include "gan/distributed/sync_batch_norm.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <thread>

#include "gan/distributed/process_group.h"
#include "tests/free_port.h"

namespace longgan::gan {
namespace {
using longgan::testing::free_port;

// Runs body(group) on `ranks` threads, each a rank of one Gloo group; rethrows the first error.
void on_ranks(int ranks, const std::function<void(ProcessGroup&)>& body) {
  const int port = free_port();
  std::vector<std::exception_ptr> errors(ranks);
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r) {
    threads.emplace_back([&, r] {
      try {
        ProcessGroup group(DistEnvironment{r, ranks, r, "127.0.0.1", port}, c10::DeviceType::CPU,
                           std::chrono::seconds(30));
        body(group);
      } catch (...) {
        errors[r] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

void expect_close(const at::Tensor& a, const at::Tensor& b, const std::string& what) {
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  const double scale = b.abs().max().item<double>() + 1e-12;
  EXPECT_LT((a - b).abs().max().item<double>() / scale, 1e-5) << what;
}

TEST(SyncBatchNorm, TwoRanksMatchOneProcessOnTheWholeBatch) {
  if (!ProcessGroup::backend_available(c10::DeviceType::CPU)) GTEST_SKIP() << "built without Gloo (libgloo-dev)";
  torch::manual_seed(3);
  const at::Tensor x = at::randn({6, 3, 4, 4}) * 2 + 0.5;
  const at::Tensor upstream = at::randn({6, 3, 4, 4});
  auto make_bn = [] {
    torch::nn::BatchNorm2d bn(3);
    torch::NoGradGuard no_grad;
    bn->weight.copy_(at::tensor({0.5, 1.5, -1.0}));
    bn->bias.copy_(at::tensor({0.1, -0.2, 0.3}));
    return bn;
  };
  // One process, the whole batch of 6.
  auto reference = make_bn();
  at::Tensor x_all = x.clone().requires_grad_();
  (reference->forward(x_all) * upstream).sum().backward();

  // Two ranks, 3 samples each; the loss is a sum, so x's gradient slices add up unscaled and
  // the parameter gradients of the ranks sum to the whole batch's.
  std::vector<at::Tensor> x_grads(2), weight_grads(2), bias_grads(2), means(2), vars(2), outputs(2);
  on_ranks(2, [&](ProcessGroup& group) {
    const int r = group.rank();
    auto bn = make_bn();
    at::Tensor x_r = x.narrow(0, 3 * r, 3).clone().requires_grad_();
    at::Tensor y = batch_norm_2d(*bn, x_r, &group);
    (y * upstream.narrow(0, 3 * r, 3)).sum().backward();
    outputs[r] = y.detach();
    x_grads[r] = x_r.grad();
    weight_grads[r] = bn->weight.grad();
    bias_grads[r] = bn->bias.grad();
    means[r] = bn->running_mean.clone();
    vars[r] = bn->running_var.clone();
  });
  at::Tensor y_reference;
  {
    auto again = make_bn();
    y_reference = again->forward(x).detach();
  }
  expect_close(at::cat(outputs), y_reference, "output");
  expect_close(at::cat(x_grads), x_all.grad(), "x gradient");
  expect_close(weight_grads[0] + weight_grads[1], reference->weight.grad(), "weight gradient");
  expect_close(bias_grads[0] + bias_grads[1], reference->bias.grad(), "bias gradient");
  for (int r = 0; r < 2; ++r) {
    expect_close(means[r], reference->running_mean, "running mean");
    expect_close(vars[r], reference->running_var, "running var (unbiased, global count)");
  }
  // Local batch norm would differ: the halves have other statistics.
  auto local = make_bn();
  EXPECT_GT((local->forward(x.narrow(0, 0, 3)) - y_reference.narrow(0, 0, 3)).abs().max().item<double>(), 1e-3);
}

TEST(SyncBatchNorm, EvalModeAndNoGroupAreLocal) {
  torch::nn::BatchNorm2d bn(2);
  const at::Tensor x = at::randn({4, 2, 3, 3});
  torch::nn::BatchNorm2d twin(2);
  EXPECT_TRUE(batch_norm_2d(*bn, x, nullptr).equal(twin->forward(x)));
  EXPECT_TRUE(bn->running_mean.equal(twin->running_mean));
}

TEST(ProcessGroup, AverageGradientsInBucketsAndCollectives) {
  if (!ProcessGroup::backend_available(c10::DeviceType::CPU)) GTEST_SKIP() << "built without Gloo (libgloo-dev)";
  std::vector<std::vector<at::Tensor>> grads(2);
  on_ranks(2, [&](ProcessGroup& group) {
    const int r = group.rank();
    std::vector<at::Tensor> params;
    for (int64_t n : {5, 7, 3}) params.push_back(at::zeros({n}).requires_grad_());
    params[0].mutable_grad() = at::full({5}, 1.0 + r);
    params[1].mutable_grad() = at::arange(7, at::kFloat) * (r + 1);
    // params[2] has no gradient: it averages as zeros.
    average_gradients(group, params, /*bucket_bytes=*/24);  // several buckets
    for (auto& p : params) grads[r].push_back(p.grad());
    at::Tensor flag = at::tensor({static_cast<double>(r)});
    group.all_reduce_max(flag);
    EXPECT_EQ(flag.item<double>(), 1.0);
    std::vector<at::Tensor> value{at::full({2}, 10.0 * (r + 1))};
    group.broadcast(value, 1);
    EXPECT_TRUE(value[0].equal(at::full({2}, 20.0)));
    group.barrier();
  });
  for (int r = 0; r < 2; ++r) {
    EXPECT_TRUE(grads[r][0].allclose(at::full({5}, 1.5)));
    EXPECT_TRUE(grads[r][1].allclose(at::arange(7, at::kFloat) * 1.5));
    EXPECT_TRUE(grads[r][2].equal(at::zeros({3})));
  }
}

TEST(ProcessGroup, EnvironmentParsing) {
  unsetenv("RANK");
  unsetenv("WORLD_SIZE");
  EXPECT_FALSE(dist_environment().has_value());
  setenv("RANK", "1", 1);
  EXPECT_THROW(dist_environment(), std::invalid_argument);  // WORLD_SIZE missing
  setenv("WORLD_SIZE", "2", 1);
  setenv("MASTER_PORT", "1234", 1);
  auto env = dist_environment();
  ASSERT_TRUE(env.has_value());
  EXPECT_EQ(env->rank, 1);
  EXPECT_EQ(env->world_size, 2);
  EXPECT_EQ(env->master_port, 1234);
  setenv("RANK", "2", 1);
  EXPECT_THROW(dist_environment(), std::invalid_argument);  // rank >= world size
  setenv("RANK", "x", 1);
  EXPECT_THROW(dist_environment(), std::invalid_argument);
  unsetenv("RANK");
  unsetenv("WORLD_SIZE");
  unsetenv("MASTER_PORT");
}

}  // namespace
}  // namespace longgan::gan

#include "gan/distributed/sync_batch_norm.h"

namespace longgan::gan {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Statistics in float64 (sums over the global batch), the output in x's dtype.
struct SyncBatchNorm : torch::autograd::Function<SyncBatchNorm> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const at::Tensor& bias, at::Tensor running_mean, at::Tensor running_var,
                            double momentum, double eps, ProcessGroup* group) {
    const std::vector<int64_t> dims{0, 2, 3};
    const int64_t channels = x.size(1);
    const at::Tensor xd = x.to(at::kDouble);
    at::Tensor stats = at::cat({xd.sum(dims), xd.square().sum(dims),
                                at::full({1}, static_cast<double>(x.numel() / channels), xd.options())});
    std::vector<at::Tensor> reduce{stats};
    group->all_reduce_sum(reduce);
    const double count = stats[2 * channels].item<double>();
    const at::Tensor mean = stats.narrow(0, 0, channels) / count;
    const at::Tensor var = (stats.narrow(0, channels, channels) / count - mean.square()).clamp_min(0);
    const at::Tensor invstd = (var + eps).rsqrt();
    const at::Tensor xhat = (xd - mean.view({1, -1, 1, 1})) * invstd.view({1, -1, 1, 1});
    at::Tensor y = xhat;
    if (weight.defined()) y = y * weight.to(at::kDouble).view({1, -1, 1, 1});
    if (bias.defined()) y = y + bias.to(at::kDouble).view({1, -1, 1, 1});
    if (running_mean.numel() > 0) {
      torch::NoGradGuard no_grad;
      running_mean.mul_(1 - momentum).add_(mean.to(running_mean.dtype()), momentum);
      const double unbias = count > 1 ? count / (count - 1) : 1.0;
      running_var.mul_(1 - momentum).add_((var * unbias).to(running_var.dtype()), momentum);
    }
    ctx->save_for_backward({xhat, invstd, weight});
    ctx->saved_data["count"] = count;
    ctx->saved_data["group"] = reinterpret_cast<int64_t>(group);
    return y.to(x.scalar_type());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& xhat = saved[0];
    const at::Tensor& invstd = saved[1];
    const at::Tensor& weight = saved[2];
    const double count = ctx->saved_data["count"].toDouble();
    auto* group = reinterpret_cast<ProcessGroup*>(ctx->saved_data["group"].toInt());
    const std::vector<int64_t> dims{0, 2, 3};
    const int64_t channels = xhat.size(1);
    const at::Tensor grad_y = grads[0].to(at::kDouble);
    // Local parameter gradients (the gradient averaging across ranks combines them).
    const at::Tensor grad_bias = grad_y.sum(dims);
    const at::Tensor grad_weight = (grad_y * xhat).sum(dims);
    const at::Tensor g = weight.defined() ? grad_y * weight.to(at::kDouble).view({1, -1, 1, 1}) : grad_y;
    at::Tensor terms = at::cat({g.sum(dims), (g * xhat).sum(dims)});
    std::vector<at::Tensor> reduce{terms};
    group->all_reduce_sum(reduce);
    const at::Tensor mean_g = (terms.narrow(0, 0, channels) / count).view({1, -1, 1, 1});
    const at::Tensor mean_gx = (terms.narrow(0, channels, channels) / count).view({1, -1, 1, 1});
    const at::Tensor grad_x = (g - mean_g - xhat * mean_gx) * invstd.view({1, -1, 1, 1});
    at::Tensor grad_w, grad_b;
    if (weight.requires_grad()) {
      grad_w = grad_weight.to(weight.scalar_type());
      grad_b = grad_bias.to(weight.scalar_type());
    }
    return {grad_x.to(grads[0].scalar_type()), grad_w, grad_b, at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor batch_norm_2d(torch::nn::BatchNorm2dImpl& bn, const at::Tensor& x, ProcessGroup* group) {
  if (group == nullptr || !bn.is_training()) return bn.forward(x);
  const auto& o = bn.options;
  double momentum = o.momentum().value_or(0.1);
  if (o.track_running_stats() && bn.num_batches_tracked.defined()) {
    torch::NoGradGuard no_grad;
    bn.num_batches_tracked.add_(1);
    if (!o.momentum().has_value()) momentum = 1.0 / bn.num_batches_tracked.item<double>();
  }
  // Without affine parameters: constant ones and zeros (autograd functions take defined inputs).
  at::Tensor weight = o.affine() ? bn.weight : at::ones({x.size(1)}, x.options().dtype(at::kFloat));
  at::Tensor bias = o.affine() ? bn.bias : at::zeros({x.size(1)}, x.options().dtype(at::kFloat));
  at::Tensor running_mean = o.track_running_stats() ? bn.running_mean : at::empty({0});
  at::Tensor running_var = o.track_running_stats() ? bn.running_var : at::empty({0});
  return SyncBatchNorm::apply(x, weight, bias, running_mean, running_var, momentum, o.eps(), group);
}

}  // namespace longgan::gan

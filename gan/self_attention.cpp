#include "gan/self_attention.h"

#include "attention/call_profile.h"

#include <stdexcept>
#include <string>

namespace longgan::gan {

SelfAttentionImpl::SelfAttentionImpl(int64_t channels, attention::AttentionSpec spec_, bool key_pool_,
                                     int64_t heads_, int64_t resolution_)
    : key_pool(key_pool_), heads(heads_), resolution(resolution_) {
  if (heads < 1 || channels % (8 * heads) != 0) {
    throw std::invalid_argument("self-attention: channels (" + std::to_string(channels) +
                                ") must be divisible by 8 * heads (heads = " + std::to_string(heads) +
                                "); change ch or heads");
  }
  set_attention(spec_);
  theta = register_module("theta", SNConv2d(channels, channels / 8, 1, /*bias=*/false));
  phi = register_module("phi", SNConv2d(channels, channels / 8, 1, /*bias=*/false));
  g = register_module("g", SNConv2d(channels, channels / 2, 1, /*bias=*/false));
  o = register_module("o", SNConv2d(channels / 2, channels, 1, /*bias=*/false));
  gamma = register_parameter("gamma", torch::zeros({}));
}

void SelfAttentionImpl::set_attention(const attention::AttentionSpec& new_spec) {
  attention::validate(new_spec);
  if (resolution <= 0) {
    spec = new_spec;
    return;
  }
  const int64_t n = resolution * resolution;
  spec = attention::fit_if_bare(new_spec, n, key_pool ? n / 4 : n);
}

namespace {

// [B, C, H, W] -> [B, heads, H*W, C/heads] (channel c = head * C/heads + d).
at::Tensor to_tokens(const at::Tensor& x, int64_t heads) {
  const int64_t b = x.size(0), c = x.size(1), n = x.size(2) * x.size(3);
  return x.reshape({b, heads, c / heads, n}).transpose(-1, -2);
}

// tokens [B, N, Cin] (any strides) times a 1x1 kernel [Cout, Cin, 1, 1] -> [B, N, Cout], contiguous.
at::Tensor project_tokens(const at::Tensor& tokens, const at::Tensor& kernel) {
  const at::Tensor weight = kernel.view({kernel.size(0), kernel.size(1)}).t();  // [Cin, Cout]
  return at::bmm(tokens, weight.unsqueeze(0).expand({tokens.size(0), weight.size(0), weight.size(1)}));
}

// tokens [B, N, Cin] times a 1x1 kernel [Cout, Cin, 1, 1] -> [B, Cout, N], contiguous: the
// channel-major layout of the feature map.
at::Tensor project_to_map(const at::Tensor& tokens, const at::Tensor& kernel) {
  const at::Tensor weight = kernel.view({kernel.size(0), kernel.size(1)});  // [Cout, Cin]
  return at::bmm(weight.unsqueeze(0).expand({tokens.size(0), weight.size(0), weight.size(1)}),
                 tokens.transpose(1, 2));
}

// 2x2 max pooling of the tokens [B, H*W, C] of an H x W map -> [B, (H/2)*(W/2), C], through the
// channels-last view of the map (ATen pools that layout without a transpose).
at::Tensor pool_tokens(const at::Tensor& tokens, int64_t h, int64_t w) {
  const int64_t b = tokens.size(0), c = tokens.size(2);
  const at::Tensor pooled = at::max_pool2d(tokens.view({b, h, w, c}).permute({0, 3, 1, 2}), {2, 2});
  return pooled.permute({0, 2, 3, 1}).reshape({b, pooled.size(2) * pooled.size(3), c});
}

// [B, N, heads * d] -> [B, heads, N, d] (channel c = head * d + i), a view with unit last stride.
at::Tensor split_heads(const at::Tensor& tokens, int64_t heads) {
  return tokens.view({tokens.size(0), tokens.size(1), heads, -1}).transpose(1, 2);
}

attention::CallOptions call_options(int64_t h, int64_t w, bool key_pool,
                                    const std::optional<at::Generator>& generator) {
  attention::CallOptions call;
  call.scale = 1.0;
  call.query_grid = {h, w};
  call.key_grid = key_pool ? attention::Grid{h / 2, w / 2} : attention::Grid{h, w};
  call.generator = generator;
  return call;
}

}  // namespace

at::Tensor SelfAttentionImpl::attention_output(const at::Tensor& x) {
  const int64_t c = x.size(1), h = x.size(2), w = x.size(3);
  at::Tensor q, k, v;
  {
    attention::PhaseTimer phase(attention::kPhaseLayout);
    const at::Tensor tokens = x.flatten(2).transpose(1, 2);  // [B, N, C], a view
    const at::Tensor queries = project_tokens(tokens, theta->normalized_weight());
    // phi and g in one product: [B, N, C/8 + C/2], pooled together.
    at::Tensor keys_values =
        project_tokens(tokens, at::cat({phi->normalized_weight(), g->normalized_weight()}, 0));
    if (key_pool) keys_values = pool_tokens(keys_values, h, w);
    q = split_heads(queries, heads);
    k = split_heads(keys_values.narrow(2, 0, c / 8), heads);
    v = split_heads(keys_values.narrow(2, c / 8, c / 2), heads);
  }
  return attention::attend(spec, q, k, v, call_options(h, w, key_pool, generator));  // [B, heads, N, C/2/heads]
}

at::Tensor SelfAttentionImpl::block_output(const at::Tensor& x, const at::Tensor& attended) {
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  at::Tensor branch;
  {
    attention::PhaseTimer phase(attention::kPhaseLayout);
    const at::Tensor attended_tokens = attended.transpose(1, 2).reshape({b, h * w, c / 2});
    branch = gamma * project_to_map(attended_tokens, o->normalized_weight()).view({b, c, h, w});
  }
  record_branch_ratio(branch, x);
  return x + branch;
}

void SelfAttentionImpl::record_branch_ratio(const at::Tensor& branch, const at::Tensor& x) {
  torch::NoGradGuard no_grad;
  if (!branch.defined()) {
    branch_ratio_ = at::zeros({}, at::kFloat);
    return;
  }
  // Two reductions per call, read only when logged (no device synchronisation here).
  branch_ratio_ = branch.detach().to(at::kFloat).norm() / x.detach().to(at::kFloat).norm().clamp_min(1e-30);
}

std::optional<double> SelfAttentionImpl::last_branch_ratio() const {
  if (!branch_ratio_.defined()) return std::nullopt;
  return branch_ratio_.item<double>();
}

at::Tensor SelfAttentionImpl::forward(const at::Tensor& x) {
  if (input_observer) input_observer(x);
  if (attention::is_none(spec)) {
    record_branch_ratio({}, x);
    return x;
  }
  return block_output(x, attention_output(x));
}

at::Tensor SelfAttentionImpl::forward_reference(const at::Tensor& x) {
  if (attention::is_none(spec)) return x;
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  at::Tensor keys = phi->forward(x);
  at::Tensor values = g->forward(x);
  if (key_pool) {
    keys = at::max_pool2d(keys, {2, 2});
    values = at::max_pool2d(values, {2, 2});
  }
  const at::Tensor q = to_tokens(theta->forward(x), heads);
  const at::Tensor k = to_tokens(keys, heads);
  const at::Tensor v = to_tokens(values, heads);
  const at::Tensor attended = attention::attend(spec, q, k, v, call_options(h, w, key_pool, generator));
  const at::Tensor map = attended.transpose(-1, -2).reshape({b, c / 2, h, w});
  return x + gamma * o->forward(map);
}

std::map<std::string, AttentionReading> attention_readings(torch::nn::Module& network) {
  std::map<std::string, AttentionReading> readings;
  for (const auto& item : network.named_modules("", /*include_self=*/false)) {
    const auto* block = item.value()->as<SelfAttentionImpl>();
    if (!block) continue;
    readings[item.key()] = {block->resolution, block->gamma.item<double>(), block->last_branch_ratio()};
  }
  return readings;
}

}  // namespace longgan::gan

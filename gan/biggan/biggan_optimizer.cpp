#include "gan/biggan/biggan_optimizer.h"

#include <functional>
#include <optional>
#include <set>
#include <sstream>

#include "gan/biggan/biggan_tensors.h"
#include "gan/module_state.h"

namespace longgan::gan {
namespace {

using checkpoints::PickleValue;

std::optional<double> number(const PickleValue& value) {
  if (const double* d = value.as_double()) return *d;
  if (const int64_t* i = value.as_int()) return static_cast<double>(*i);
  if (const bool* b = value.as_bool()) return *b ? 1.0 : 0.0;
  return std::nullopt;
}

// Adam's step: an int (torch < 1.12) or a one-element tensor (later torch).
std::optional<int64_t> step_count(const PickleValue& value) {
  if (const int64_t* i = value.as_int()) return *i;
  if (const double* d = value.as_double()) return static_cast<int64_t>(*d);
  if (const at::Tensor* t = value.as_tensor(); t && t->numel() == 1) return static_cast<int64_t>(t->item<double>());
  return std::nullopt;
}

const PickleValue* find_int_key(const PickleValue& dict, int64_t key) {
  if (const PickleValue::Dict* entries = dict.as_dict()) {
    for (const auto& [k, v] : *entries) {
      if (const int64_t* i = k.as_int(); i && *i == key) return &v;
    }
  }
  return nullptr;
}

std::invalid_argument bad_file(const std::string& file, const std::string& what) {
  return std::invalid_argument(file + ": " + what);
}

// The Adam moment tensor `key` of one parameter's state, checked against its parameter's shape.
at::Tensor moment(const PickleValue& state, const char* key, const std::string& parameter, const at::Tensor& like,
                  const std::string& file) {
  const PickleValue* value = state.find(key);
  const at::Tensor* tensor = value ? value->as_tensor() : nullptr;
  if (tensor == nullptr) throw bad_file(file, "the state of " + parameter + " has no tensor '" + key + "'");
  if (tensor->sizes() != like.sizes()) {
    throw bad_file(file, std::string(key) + " of " + parameter + " has shape " + shape_text(tensor->sizes()) +
                             ", its parameter has " + shape_text(like.sizes()) +
                             " (is this the optimizer of these weights?)");
  }
  return tensor->to(at::kFloat);
}

// The LongGAN state of `network` whose parameters hold `values` (BigGAN names) and whose other
// tensors are the weights' own: state_from_biggan's mapping applied to moments. Only the
// parameters' entries are kept.
std::map<std::string, at::Tensor> mapped_parameters(const torch::nn::Module& network, const ModelConfig& model,
                                                    const checkpoints::NamedTensors& weights,
                                                    const std::map<std::string, at::Tensor>& values,
                                                    const std::string& file) {
  checkpoints::NamedTensors substituted;
  for (const auto& [name, tensor] : weights) {
    auto it = values.find(name);
    substituted.emplace_back(name, it == values.end() ? tensor : it->second);
  }
  const std::map<std::string, at::Tensor> state = state_from_biggan(network, model, substituted, file);
  std::map<std::string, at::Tensor> parameters;
  for (const auto& parameter : network.named_parameters()) parameters[parameter.key()] = state.at(parameter.key());
  return parameters;
}

}  // namespace

BigGanAdam adam_state_from_biggan(const torch::nn::Module& network, const ModelConfig& model,
                                  const checkpoints::NamedTensors& weights, const PickleValue& optimizer,
                                  const std::string& file) {
  // BigGAN's parameter order: the entries of its state dict that are parameters, in file order.
  std::set<std::string> biggan_parameters;
  for (const auto& parameter : network.named_parameters()) biggan_parameters.insert(biggan_tensor_name(parameter.key()));
  std::vector<std::pair<std::string, at::Tensor>> order;
  for (const auto& [name, tensor] : weights) {
    if (biggan_parameters.contains(name)) order.emplace_back(name, tensor);
  }

  const PickleValue* groups = optimizer.find("param_groups");
  const PickleValue* states = optimizer.find("state");
  if (groups == nullptr || states == nullptr || groups->as_list() == nullptr || states->as_dict() == nullptr) {
    throw bad_file(file, "is not an optimizer state dict (no 'state' and 'param_groups'; BigGAN-PyTorch writes "
                         "G.optim.state_dict() as G_optim.pth)");
  }
  if (groups->as_list()->size() != 1) {
    throw bad_file(file, "has " + std::to_string(groups->as_list()->size()) +
                             " param groups; BigGAN-PyTorch's Adam has one");
  }
  const PickleValue& group = groups->as_list()->front();
  auto hyper = [&](const char* key) -> std::optional<double> {
    const PickleValue* value = group.find(key);
    return value ? number(*value) : std::nullopt;
  };
  const PickleValue* betas = group.find("betas");
  const std::optional<double> lr = hyper("lr"), eps = hyper("eps");
  if (!lr || !eps || betas == nullptr || betas->as_list() == nullptr || betas->as_list()->size() != 2 ||
      !number(betas->as_list()->at(0)) || !number(betas->as_list()->at(1))) {
    throw bad_file(file, "its param group lacks Adam's lr, betas or eps: is it an Adam optimizer's state?");
  }
  if (const auto decay = hyper("weight_decay"); decay && *decay != 0) {
    throw bad_file(file, "Adam with weight_decay " + std::to_string(*decay) + ": LongGAN's Adam has none");
  }
  if (const auto amsgrad = hyper("amsgrad"); amsgrad && *amsgrad != 0) {
    throw bad_file(file, "Adam with amsgrad: LongGAN's Adam has no amsgrad");
  }
  const PickleValue* ids = group.find("params");
  if (ids == nullptr || ids->as_list() == nullptr) throw bad_file(file, "its param group has no 'params' list");
  if (ids->as_list()->size() != order.size()) {
    throw bad_file(file, "holds Adam state for " + std::to_string(ids->as_list()->size()) +
                             " parameters, the weights have " + std::to_string(order.size()) +
                             " (is it the optimizer of these weights? BigGAN-PyTorch saves G.optim as G_optim.pth "
                             "and D.optim as D_optim.pth)");
  }

  BigGanAdam result;
  result.lr = *lr;
  result.eps = *eps;
  result.beta1 = *number(betas->as_list()->at(0));
  result.beta2 = *number(betas->as_list()->at(1));
  std::map<std::string, at::Tensor> exp_avg, exp_avg_sq;
  std::map<std::string, int64_t> steps;  // by BigGAN name
  for (size_t i = 0; i < order.size(); ++i) {
    const auto& [name, weight] = order[i];
    const int64_t* id = ids->as_list()->at(i).as_int();
    if (id == nullptr) throw bad_file(file, "its param group's params are not parameter numbers");
    const PickleValue* state = find_int_key(*states, *id);
    if (state == nullptr || state->as_dict() == nullptr || state->as_dict()->empty()) {
      exp_avg[name] = at::zeros(weight.sizes(), at::kFloat);
      exp_avg_sq[name] = at::zeros(weight.sizes(), at::kFloat);
      steps[name] = 0;
      ++result.fresh_parameters;
      continue;
    }
    exp_avg[name] = moment(*state, "exp_avg", name, weight, file);
    exp_avg_sq[name] = moment(*state, "exp_avg_sq", name, weight, file);
    const PickleValue* step = state->find("step");
    const std::optional<int64_t> count = step ? step_count(*step) : std::nullopt;
    if (!count || *count < 0) throw bad_file(file, "the state of " + name + " has no step count");
    steps[name] = *count;
  }
  for (const auto& [name, tensor] : mapped_parameters(network, model, weights, exp_avg, file)) {
    result.state[name + ".exp_avg"] = tensor;
  }
  for (const auto& [name, tensor] : mapped_parameters(network, model, weights, exp_avg_sq, file)) {
    result.state[name + ".exp_avg_sq"] = tensor;
  }
  for (const auto& parameter : network.named_parameters()) {
    result.state[parameter.key() + ".step"] = at::scalar_tensor(steps.at(biggan_tensor_name(parameter.key())), at::kLong);
  }
  return result;
}

std::vector<std::string> read_biggan_train_settings(const PickleValue& config, const std::string& source,
                                                    TrainConfig& train) {
  std::vector<std::string> set;
  auto read = [&](const char* flag) -> std::optional<double> {
    const PickleValue* value = config.find(flag);
    if (value == nullptr || value->is_none()) return std::nullopt;
    const std::optional<double> result = number(*value);
    if (!result) throw std::invalid_argument(source + ": config['" + flag + "'] is not a number");
    return result;
  };
  auto integer = [](double value) { return static_cast<int64_t>(value); };
  struct Setting {
    const char* flag;
    const char* field;
    std::function<void(double)> apply;
  };
  const std::vector<Setting> settings = {
      {"batch_size", "batch", [&](double v) { train.batch = integer(v); }},
      {"num_D_steps", "d_steps", [&](double v) { train.d_steps = integer(v); }},
      {"G_lr", "lr_g", [&](double v) { train.lr_g = v; }},
      {"D_lr", "lr_d", [&](double v) { train.lr_d = v; }},
      {"G_B1", "beta1", [&](double v) { train.beta1 = v; }},
      {"G_B2", "beta2", [&](double v) { train.beta2 = v; }},
      {"adam_eps", "eps", [&](double v) { train.eps = v; }},
      {"ema_decay", "ema_decay", [&](double v) { train.ema_decay = v; }},
      {"ema_start", "ema_start", [&](double v) { train.ema_start = integer(v); }},
  };
  for (const Setting& setting : settings) {
    if (const auto value = read(setting.flag)) {
      setting.apply(*value);
      set.push_back(std::string(setting.flag) + " -> " + setting.field);
    }
  }
  for (const auto& [d_flag, g_flag] : {std::pair{"D_B1", "G_B1"}, {"D_B2", "G_B2"}}) {
    const auto d = read(d_flag), g = read(g_flag);
    if (d && g && *d != *g) {
      std::ostringstream note;
      note << d_flag << " " << *d << " differs from " << g_flag << " " << *g
           << ": LongGAN's G and D share one beta pair (G's is used)";
      set.push_back(note.str());
    }
  }
  return set;
}

}  // namespace longgan::gan

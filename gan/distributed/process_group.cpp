#include "gan/distributed/process_group.h"

#include <ATen/ATen.h>
#include <torch/torch.h>
#include <c10/util/Exception.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cstdlib>
#include <map>
#include <stdexcept>

namespace longgan::gan {
namespace {

std::optional<std::string> env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

int env_int(const char* name, int fallback, int low, int high) {
  auto text = env(name);
  if (!text) return fallback;
  size_t used = 0;
  int value = 0;
  try {
    value = std::stoi(*text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text->size() || value < low || value > high) {
    throw std::invalid_argument(std::string("environment variable ") + name + "='" + *text +
                                "' is not an integer in [" + std::to_string(low) + ", " + std::to_string(high) + "]");
  }
  return value;
}

}  // namespace

std::optional<DistEnvironment> dist_environment() {
  const bool has_rank = env("RANK").has_value(), has_world = env("WORLD_SIZE").has_value();
  if (!has_rank && !has_world) return std::nullopt;
  if (has_rank != has_world) {
    throw std::invalid_argument("distributed training needs both RANK and WORLD_SIZE (only " +
                                std::string(has_rank ? "RANK" : "WORLD_SIZE") +
                                " is set); start the ranks with torchrun, or unset it for a single process");
  }
  DistEnvironment e;
  e.world_size = env_int("WORLD_SIZE", 1, 1, 1 << 20);
  e.rank = env_int("RANK", 0, 0, e.world_size - 1);
  e.local_rank = env_int("LOCAL_RANK", e.rank, 0, 1 << 20);
  e.master_addr = env("MASTER_ADDR").value_or("127.0.0.1");
  e.master_port = env_int("MASTER_PORT", 29500, 1, 65535);
  return e;
}

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
};

ProcessGroup::ProcessGroup(const DistEnvironment& env, c10::DeviceType device, std::chrono::milliseconds timeout)
    : env_(env), timeout_(timeout), impl_(std::make_unique<Impl>()) {
  if (device == c10::DeviceType::CUDA) device_ = c10::Device(device, static_cast<c10::DeviceIndex>(env.local_rank));
  const std::string where = "rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size);
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(env.master_port);
    options.isServer = env.rank == 0;
    options.numWorkers = static_cast<size_t>(env.world_size);
    options.waitWorkers = true;
    options.timeout = timeout;
    // torchrun's agent may already serve the store on MASTER_PORT (it says so in
    // TORCHELASTIC_USE_AGENT_STORE): every rank joins it as a client then.
    const std::string agent_store = std::getenv("TORCHELASTIC_USE_AGENT_STORE") ? std::getenv("TORCHELASTIC_USE_AGENT_STORE") : "";
    if (agent_store == "True" || agent_store == "true" || agent_store == "1") {
      options.isServer = false;
      options.numWorkers = std::nullopt;
      options.waitWorkers = false;
    }
    auto tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
    // Keys of a restarted attempt (torchrun --max-restarts) apart from the previous one's.
    const char* restart = std::getenv("TORCHELASTIC_RESTART_COUNT");
    impl_->store = c10::make_intrusive<c10d::PrefixStore>(std::string("longgan/") + (restart ? restart : "0") + "/", tcp);
  } catch (const std::exception& e) {
    throw std::runtime_error("distributed: " + where + " could not join the TCPStore at " + env.master_addr + ":" +
                             std::to_string(env.master_port) + " within " +
                             std::to_string(timeout.count() / 1000) + " s: " + e.what());
  }
  try {
    if (device == c10::DeviceType::CUDA) {
#ifdef USE_C10D_NCCL
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      impl_->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, env.rank, env.world_size, options);
#else
      throw std::runtime_error("this build has no NCCL support (c10d NCCL headers or nccl.h were not found)");
#endif
    } else {
#ifdef USE_C10D_GLOO
      auto options = c10d::ProcessGroupGloo::Options::create(timeout);
      // GLOO_SOCKET_IFNAME (as in PyTorch) names the network interface; otherwise, with all ranks
      // on this host (MASTER_ADDR loopback), the loopback device, else the address this
      // machine's hostname resolves to.
      const bool loopback = env.master_addr == "localhost" || env.master_addr.starts_with("127.");
      if (const char* interface = std::getenv("GLOO_SOCKET_IFNAME"); interface != nullptr && *interface != '\0') {
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface));
      } else {
        options->devices.push_back(loopback ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                            : c10d::ProcessGroupGloo::createDefaultDevice());
      }
      impl_->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, env.rank, env.world_size, options);
#else
      throw std::runtime_error("this build has no Gloo support (the gloo headers were not found: install "
                               "libgloo-dev, see scripts/setup.sh, and rebuild)");
#endif
    }
  } catch (const std::exception& e) {
    throw std::runtime_error("distributed: " + where + " could not create its process group: " + e.what());
  }
}

ProcessGroup::~ProcessGroup() = default;

bool ProcessGroup::backend_available(c10::DeviceType device) {
  if (device == c10::DeviceType::CUDA) {
#ifdef USE_C10D_NCCL
    return true;
#else
    return false;
#endif
  }
#ifdef USE_C10D_GLOO
  return true;
#else
  return false;
#endif
}

std::string ProcessGroup::backend_name() const { return impl_->backend->getBackendName(); }

void ProcessGroup::run(const std::string& what, const std::function<void()>& collective) {
  try {
    collective();
  } catch (const std::exception& e) {
    std::string message = e.what();
    if (auto cut = message.find("\nException raised from"); cut != std::string::npos) message.resize(cut);
    throw std::runtime_error("distributed: rank " + std::to_string(env_.rank) + " of " +
                             std::to_string(env_.world_size) + ": " + what +
                             " failed (another rank died or did not answer within " +
                             std::to_string(timeout_.count() / 1000) + " s, see --dist-timeout): " + message);
  }
}

void ProcessGroup::all_reduce_sum(std::vector<at::Tensor>& tensors) {
  if (tensors.empty()) return;
  run("all-reduce", [&] {
    // All buckets in flight at once, then waited on in order.
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (auto& t : tensors) {
      std::vector<at::Tensor> one{t};
      works.push_back(impl_->backend->allreduce(one, c10d::AllreduceOptions{}));
    }
    for (auto& work : works) work->wait(timeout_);
  });
}

namespace {

// One element-wise all-reduce with `op`, waited for within `timeout`.
void all_reduce_with(c10d::Backend& backend, at::Tensor& tensor, c10d::ReduceOp::RedOpType op,
                     std::chrono::milliseconds timeout) {
  std::vector<at::Tensor> one{tensor};
  c10d::AllreduceOptions options;
  options.reduceOp = c10d::ReduceOp(op);
  backend.allreduce(one, options)->wait(timeout);
}

}  // namespace

void ProcessGroup::all_reduce_max(at::Tensor& tensor) {
  run("all-reduce (max)", [&] { all_reduce_with(*impl_->backend, tensor, c10d::ReduceOp::MAX, timeout_); });
}

void ProcessGroup::all_reduce_min(at::Tensor& tensor) {
  run("all-reduce (min)", [&] { all_reduce_with(*impl_->backend, tensor, c10d::ReduceOp::MIN, timeout_); });
}

void ProcessGroup::broadcast(std::vector<at::Tensor>& tensors, int root) {
  run("broadcast", [&] {
    for (auto& t : tensors) {
      std::vector<at::Tensor> one{t};
      c10d::BroadcastOptions options;
      options.rootRank = root;
      impl_->backend->broadcast(one, options)->wait(timeout_);
    }
  });
}

void ProcessGroup::barrier() {
  run("barrier", [&] {
    c10d::BarrierOptions options;
    if (device_.is_cuda()) options.device = device_;  // NCCL: this rank's GPU, not a guess
    impl_->backend->barrier(options)->wait(timeout_);
  });
}

void average_gradients(ProcessGroup& group, const std::vector<at::Tensor>& parameters, int64_t bucket_bytes) {
  if (group.size() == 1) return;
  // Buckets of consecutive parameters of one dtype and device, about bucket_bytes each.
  std::vector<std::vector<at::Tensor>> buckets;
  int64_t bytes = 0;
  for (const at::Tensor& p : parameters) {
    if (!p.requires_grad()) continue;
    at::Tensor grad = p.grad();
    if (!grad.defined()) {
      const_cast<at::Tensor&>(p).mutable_grad() = at::zeros_like(p);
      grad = p.grad();
    }
    const int64_t size = grad.numel() * static_cast<int64_t>(grad.element_size());
    if (buckets.empty() || bytes + size > bucket_bytes || buckets.back().front().scalar_type() != grad.scalar_type() ||
        buckets.back().front().device() != grad.device()) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().push_back(grad);
    bytes += size;
  }
  std::vector<at::Tensor> flat;
  flat.reserve(buckets.size());
  for (const auto& bucket : buckets) {
    std::vector<at::Tensor> pieces;
    for (const auto& g : bucket) pieces.push_back(g.reshape({-1}));
    flat.push_back(at::cat(pieces));
  }
  group.all_reduce_sum(flat);
  torch::NoGradGuard no_grad;
  for (size_t b = 0; b < buckets.size(); ++b) {
    flat[b].div_(group.size());
    int64_t offset = 0;
    for (auto& g : buckets[b]) {
      g.copy_(flat[b].narrow(0, offset, g.numel()).view_as(g));
      offset += g.numel();
    }
  }
}

}  // namespace longgan::gan

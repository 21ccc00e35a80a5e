#pragma once
// Multi-process training (one process per rank, as started by torchrun): joins a c10d process
// group from the environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) over a
// TCPStore, Gloo for CPU training, NCCL for CUDA (one GPU per local rank). The collectives
// used by training (sums of tensors, a max, broadcast, barrier) wrap c10d's and turn a failure
// (a rank that died, a collective past the timeout) into a std::runtime_error naming the rank.
#include <ATen/Tensor.h>
#include <c10/core/Device.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace longgan::gan {

// The launcher's variables, or nullopt when RANK and WORLD_SIZE are both unset (a single
// process, no group). std::invalid_argument when they are partial or malformed.
struct DistEnvironment {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};
std::optional<DistEnvironment> dist_environment();

class ProcessGroup {
 public:
  // Joins the group (blocks until every rank has joined, at most `timeout`). `device` picks the
  // backend: Gloo for the CPU, NCCL for CUDA (the caller selects the GPU of its local rank).
  ProcessGroup(const DistEnvironment& env, c10::DeviceType device, std::chrono::milliseconds timeout);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  // Whether this build has the backend of `device` (Gloo: the gloo headers were found at build
  // time; NCCL: a CUDA build with nccl.h).
  static bool backend_available(c10::DeviceType device);

  int rank() const { return env_.rank; }
  int size() const { return env_.world_size; }
  int local_rank() const { return env_.local_rank; }
  std::chrono::milliseconds timeout() const { return timeout_; }
  std::string backend_name() const;

  // In-place sum of each tensor across ranks (contiguous, on the group's device).
  void all_reduce_sum(std::vector<at::Tensor>& tensors);
  void all_reduce_max(at::Tensor& tensor);
  void all_reduce_min(at::Tensor& tensor);
  // In place: every rank receives root's tensors.
  void broadcast(std::vector<at::Tensor>& tensors, int root = 0);
  void barrier();

 private:
  struct Impl;
  void run(const std::string& what, const std::function<void()>& collective);
  DistEnvironment env_;
  std::chrono::milliseconds timeout_;
  c10::Device device_ = c10::Device(c10::DeviceType::CPU);
  std::unique_ptr<Impl> impl_;
};

// Averages the gradients of `parameters` across the ranks of `group`: the defined gradients
// are flattened into buckets of about `bucket_bytes` (one dtype each), each all-reduced (sum)
// and divided by the world size. A parameter without a gradient gets a zero one first, so that
// every rank reduces the same buckets.
void average_gradients(ProcessGroup& group, const std::vector<at::Tensor>& parameters,
                       int64_t bucket_bytes = 25 << 20);

}  // namespace longgan::gan

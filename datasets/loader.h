#pragma once
// Batches from a packed dataset: memory-mapped records, a per-epoch permutation and per-sample
// horizontal flips that depend only on (seed, epoch, position), filled by background threads into
// a bounded queue. The sequence of batches depends only on the file, the seed, batch and
// drop_last: never on the thread count, and a loader started at start_position = p continues
// exactly as an uninterrupted one that has consumed p samples.
#include <ATen/Tensor.h>

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "datasets/packed_format.h"

namespace longgan::datasets {

struct LoaderOptions {
  int64_t batch = 16;
  uint64_t seed = 0;
  bool flip = true;             // random horizontal flips, probability 1/2 per sample
  int64_t threads = 2;          // background threads filling batches (>= 1)
  int64_t prefetch = 4;         // batches prepared ahead (>= 1)
  bool pin_memory = false;      // page-locked batches (only when CUDA is available)
  bool drop_last = true;        // every batch full; the epoch's last partial batch is dropped
  int64_t start_position = 0;   // samples already consumed (resume), by all shards together
  // Distributed training: shard `shard` of `shards` ranks. Every rank walks the same epoch
  // order in global batches of batch * shards samples and returns its slice
  // [shard * batch, (shard + 1) * batch) of each, so the ranks' batches are disjoint and together
  // are exactly the batches of one loader with batch * shards. Needs drop_last.
  int64_t shard = 0;
  int64_t shards = 1;
};

struct Batch {
  at::Tensor images;  // [B, C, H, W] float32 in [-1, 1] (x / 127.5 - 1)
  at::Tensor labels;  // [B] int64
};

class Loader {
 public:
  Loader(const std::filesystem::path& path, LoaderOptions options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // The next batch (blocks until it is ready); rethrows a worker's error (e.g. a corrupted block).
  Batch next();
  // Samples consumed so far by all shards (global batches), start_position included; pass it
  // back as start_position to resume (the same on every rank).
  int64_t position() const { return position_; }
  // Samples per epoch (the dataset size, rounded down to whole global batches with drop_last).
  int64_t epoch_samples() const { return epoch_samples_; }
  int64_t epoch() const { return position_ / epoch_samples_; }
  uint64_t fingerprint() const { return reader_.fingerprint(); }
  const PackedReader& reader() const { return reader_; }

 private:
  struct Job {
    int64_t sequence, epoch, offset, size;
    std::shared_ptr<const std::vector<int64_t>> permutation;
  };
  struct Slot {
    Batch batch;
    int64_t samples = 0;  // of the global batch
    std::exception_ptr error;
  };

  Job make_job(int64_t sequence, int64_t position);  // under mutex_
  void fill(const Job& job, Slot& slot);
  void verify_block_once(int64_t block);
  void worker_loop();

  PackedReader reader_;
  LoaderOptions options_;
  int64_t epoch_samples_ = 0;
  int64_t position_ = 0;       // consumer side
  int64_t next_sequence_ = 0;  // consumer side: the batch next() returns

  std::mutex mutex_;
  std::condition_variable work_ready_, slot_ready_;
  bool stop_ = false;
  int64_t assign_sequence_ = 0, assign_position_ = 0;  // the next job handed to a worker
  std::map<int64_t, Slot> done_;
  std::map<int64_t, std::shared_ptr<const std::vector<int64_t>>> permutations_;
  std::unique_ptr<std::once_flag[]> block_checked_;
  std::vector<std::thread> workers_;
};

// Images [first, first + count) of `reader` as uint8 [count, H, W, 3], copied from its records
// (whose checksums the caller verifies first where it matters).
at::Tensor read_images(const PackedReader& reader, int64_t first, int64_t count);

// The permutation of [0, n) for an epoch: std::mt19937_64 seeded from (seed, epoch), Fisher-Yates.
std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch);
// Whether the sample at `offset` of `epoch` is flipped.
bool flip_sample(uint64_t seed, int64_t epoch, int64_t offset);

}  // namespace longgan::datasets

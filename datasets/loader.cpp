#include "datasets/loader.h"

#include <cstring>

#include <ATen/ATen.h>
#include <torch/cuda.h>

#include <random>
#include <stdexcept>
#include <string>

#include "datasets/hash.h"

namespace longgan::datasets {
namespace {

void validate(const LoaderOptions& o, const PackedReader& reader) {
  const std::string name = "loader for '" + reader.path().string() + "': ";
  if (o.batch < 1) throw std::invalid_argument(name + "batch must be >= 1, got " + std::to_string(o.batch));
  if (o.threads < 1) throw std::invalid_argument(name + "threads must be >= 1, got " + std::to_string(o.threads));
  if (o.prefetch < 1) throw std::invalid_argument(name + "prefetch must be >= 1, got " + std::to_string(o.prefetch));
  if (o.start_position < 0) throw std::invalid_argument(name + "start_position must be >= 0");
  if (o.shards < 1 || o.shard < 0 || o.shard >= o.shards) {
    throw std::invalid_argument(name + "shard " + std::to_string(o.shard) + " of " + std::to_string(o.shards) +
                                " is out of range (0 <= shard < shards)");
  }
  if (o.shards > 1 && !o.drop_last) throw std::invalid_argument(name + "sharded loading needs drop_last");
  if (reader.size() == 0) throw std::invalid_argument(name + "the dataset is empty");
  if (o.drop_last && reader.size() < o.batch * o.shards) {
    throw std::invalid_argument(name + "the dataset has " + std::to_string(reader.size()) +
                                " images, fewer than one batch of " + std::to_string(o.batch * o.shards) +
                                (o.shards > 1 ? " (" + std::to_string(o.batch) + " per rank x " + std::to_string(o.shards) + " ranks)" : std::string()) +
                                "; lower the batch size or use more images");
  }
}

}  // namespace

std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  std::mt19937_64 rng(mix64(mix64(seed) ^ static_cast<uint64_t>(epoch)));
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
    std::swap(p[i], p[j]);
  }
  return p;
}

bool flip_sample(uint64_t seed, int64_t epoch, int64_t offset) {
  return (mix64(mix64(mix64(seed ^ 0x666c6970ULL) ^ static_cast<uint64_t>(epoch)) ^ static_cast<uint64_t>(offset)) >> 63) != 0;
}

Loader::Loader(const std::filesystem::path& path, LoaderOptions options) : reader_(path), options_(options) {
  validate(options_, reader_);
  const int64_t global_batch = options_.batch * options_.shards;
  epoch_samples_ = options_.drop_last ? reader_.size() / global_batch * global_batch : reader_.size();
  position_ = assign_position_ = options_.start_position;
  block_checked_ = std::make_unique<std::once_flag[]>(static_cast<size_t>(reader_.block_count()));
  for (int64_t t = 0; t < options_.threads; ++t) workers_.emplace_back([this] { worker_loop(); });
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_ready_.notify_all();
  for (auto& w : workers_) w.join();
}

Loader::Job Loader::make_job(int64_t sequence, int64_t position) {
  Job job;
  job.sequence = sequence;
  job.epoch = position / epoch_samples_;
  job.offset = position % epoch_samples_;
  job.size = std::min(options_.batch * options_.shards, epoch_samples_ - job.offset);  // global batch
  auto& perm = permutations_[job.epoch];
  if (!perm) perm = std::make_shared<const std::vector<int64_t>>(epoch_permutation(reader_.size(), options_.seed, job.epoch));
  job.permutation = perm;
  // Workers hold their own references: keep only the permutations of this epoch and the next.
  while (!permutations_.empty() && permutations_.begin()->first < job.epoch) permutations_.erase(permutations_.begin());
  return job;
}

void Loader::verify_block_once(int64_t block) {
  std::call_once(block_checked_[static_cast<size_t>(block)], [&] { reader_.verify_block(block); });
}

void Loader::fill(const Job& job, Slot& slot) {
  const int64_t c = reader_.channels(), h = reader_.height(), w = reader_.width();
  auto image_options = at::TensorOptions().dtype(at::kFloat);
  const bool pin = options_.pin_memory && torch::cuda::is_available();
  if (pin) image_options = image_options.pinned_memory(true);
  // This shard's slice of the global batch (all of it with one shard).
  const int64_t size = job.size / options_.shards;
  const int64_t first = job.offset + options_.shard * size;
  auto images = at::empty({size, c, h, w}, image_options);
  auto labels = at::empty({size}, at::TensorOptions().dtype(at::kLong));
  float* out = images.data_ptr<float>();
  int64_t* out_labels = labels.data_ptr<int64_t>();
  for (int64_t k = 0; k < size; ++k) {
    const int64_t index = (*job.permutation)[static_cast<size_t>(first + k)];
    verify_block_once(reader_.block_of(index));
    const uint8_t* src = reader_.image(index).data();
    const bool flip = options_.flip && flip_sample(options_.seed, job.epoch, first + k);
    float* dst = out + k * c * h * w;
    for (int64_t y = 0; y < h; ++y) {
      for (int64_t x = 0; x < w; ++x) {
        const uint8_t* px = src + (y * w + (flip ? w - 1 - x : x)) * c;
        for (int64_t ch = 0; ch < c; ++ch) dst[(ch * h + y) * w + x] = static_cast<float>(px[ch]) / 127.5f - 1.0f;
      }
    }
    out_labels[k] = reader_.label(index);
  }
  slot.batch = {images, labels};
  slot.samples = job.size;
}

void Loader::worker_loop() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_ready_.wait(lock, [&] { return stop_ || assign_sequence_ < next_sequence_ + options_.prefetch; });
      if (stop_) return;
      job = make_job(assign_sequence_, assign_position_);
      ++assign_sequence_;
      assign_position_ += job.size;
    }
    Slot slot;
    try {
      fill(job, slot);
    } catch (...) {
      slot.error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_[job.sequence] = std::move(slot);
    }
    slot_ready_.notify_all();
  }
}

Batch Loader::next() {
  Slot slot;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    slot_ready_.wait(lock, [&] { return done_.count(next_sequence_) > 0; });
    auto it = done_.find(next_sequence_);
    slot = std::move(it->second);
    done_.erase(it);
    ++next_sequence_;
  }
  work_ready_.notify_all();
  if (slot.error) std::rethrow_exception(slot.error);
  position_ += slot.samples;
  return std::move(slot.batch);
}

at::Tensor read_images(const PackedReader& reader, int64_t first, int64_t count) {
  at::Tensor images = at::empty({count, reader.height(), reader.width(), 3}, at::kByte);
  for (int64_t i = 0; i < count; ++i) {
    const auto record = reader.image(first + i);
    std::memcpy(images[i].data_ptr<uint8_t>(), record.data(), record.size());
  }
  return images;
}

}  // namespace longgan::datasets

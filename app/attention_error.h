#pragma once
// The swap advisor (`longgan metrics --checkpoint RUN --attention-error SPECS [--advise BOUND]`):
// for each attention block of a trained model, on the activations that reach it (G: latents
// through G_ema with dense attention; D: real images of the data), the relative error of each
// spec's attention output and block output (x + gamma o) against dense, with the block's time and
// peak memory; and the cheapest spec whose block-output error stays under a bound in every block.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "app/bench/bench_timing.h"
#include "attention/attention.h"

namespace longgan::app {

// One spec on one block.
struct SpecError {
  std::string spec;          // as given (a bare name is fitted to each block, as a swap fits it)
  std::string run;           // as the block ran it
  double attention_error = 0;  // ||a - a_dense|| / ||a_dense||
  double block_error = 0;      // ||y - y_dense|| / ||y_dense||, y = x + gamma o(a)
  double milliseconds = 0;     // the block's forward pass, median
  std::optional<double> peak_mb;
  std::string failure;  // non-empty: the spec does not fit this block (the message)
};

// One attention block: rows[0] is dense, the reference.
struct BlockErrors {
  std::string block;  // "G attention.3"
  int64_t resolution = 0;
  std::vector<SpecError> rows;
};

struct AttentionErrorSettings {
  int64_t batch = 8;  // latents through G, real images through D
  uint64_t seed = 0;  // of the latents and of the hashes
  TimingSettings timing{1, 3};
  std::string device = "cpu";
};

// Measures every attention block of the checkpoint's G_ema (or G, per `sampling_override`) and D
// with dense and each of `specs`; `data` is the real images' .lgd.
std::vector<BlockErrors> measure_attention_error(const std::filesystem::path& checkpoint,
                                                 const std::vector<std::string>& specs,
                                                 const std::filesystem::path& data,
                                                 const nlohmann::json& sampling_override,
                                                 const AttentionErrorSettings& settings);

// The advisor's pick: the spec (an index into rows 1.. of every block) with the smallest total
// time over the blocks among those that run on every block with a block error <= bound there;
// nullopt when none does.
std::optional<size_t> advise(const std::vector<BlockErrors>& blocks, double bound);

void print_attention_errors(std::ostream& out, const std::vector<BlockErrors>& blocks);
// The pick's line (or that none qualified), with what it saves against dense and the swap command.
void print_advice(std::ostream& out, const std::vector<BlockErrors>& blocks, double bound,
                  const std::string& checkpoint);
nlohmann::json attention_errors_json(const std::vector<BlockErrors>& blocks, std::optional<double> bound);

}  // namespace longgan::app

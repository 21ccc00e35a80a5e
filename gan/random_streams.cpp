#include "gan/random_streams.h"

#include "datasets/hash.h"

namespace longgan::gan {

uint64_t stream_seed(uint64_t seed, RandomStream stream) {
  switch (stream) {
    case RandomStream::WeightInit: return seed;
    case RandomStream::Training: return datasets::mix64(seed ^ 0x747261696e696e67ULL);  // "training"
    case RandomStream::FixedSamples: return seed + 1;
    case RandomStream::EvaluationLatents: return seed + 2;
    case RandomStream::EvaluationHashes: return seed + 3;
    case RandomStream::SampleHashes: return seed + 4;
    case RandomStream::StandingStatistics: return seed ^ 0x5a3d1e5c0ffee123ULL;
  }
  return seed;
}

std::string_view to_string(RandomStream stream) {
  switch (stream) {
    case RandomStream::WeightInit: return "weight_init";
    case RandomStream::Training: return "training";
    case RandomStream::FixedSamples: return "fixed_samples";
    case RandomStream::EvaluationLatents: return "evaluation_latents";
    case RandomStream::EvaluationHashes: return "evaluation_hashes";
    case RandomStream::SampleHashes: return "sample_hashes";
    case RandomStream::StandingStatistics: return "standing_statistics";
  }
  return "?";
}

}  // namespace longgan::gan

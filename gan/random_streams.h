#pragma once
// Every random stream of a training run, derived in one place from the run's one seed (run.seed,
// `train --seed`). Each stream has a generator of its own, so that drawing more from one (an
// evaluation, a sample grid) never shifts another, and resuming restores exactly what was drawn.
//
//   stream                what draws from it                                   seed
//   WeightInit            initial weights of G and D (global generator)       seed
//   Training              z, labels, hashes of hashing attention, DiffAugment  mix64(seed ^ "training")
//                         (its state is checkpointed as trainer.generator)
//   FixedSamples          latents of the sample grids (samples/step-N.png)     seed + 1
//   EvaluationLatents     latents of --eval-every's FID set                    seed + 2
//   EvaluationHashes      hashes while rendering the FID set                   seed + 3
//   SampleHashes          hashes while rendering the sample grids              seed + 4
//   StandingStatistics    latents of the standing batch-norm passes            seed ^ 0x5a3d1e5c0ffee123
//   data order, flips     datasets::Loader, from the seed with mixes of its own (epoch_permutation, flip_sample)
//
// The seed + k streams and the standing statistics keep the derivations of earlier releases, so a
// resumed run evaluates on the same latents as before; Training was the seed itself (the same
// stream as WeightInit) before it got a tag of its own, which changes only new runs: a resumed
// run restores the generator's state from its checkpoint. `stream_seed` values of one run are
// pairwise distinct (tests/gan/random_streams_test.cpp).
#include <cstdint>
#include <string_view>

namespace longgan::gan {

enum class RandomStream {
  WeightInit,
  Training,
  FixedSamples,
  EvaluationLatents,
  EvaluationHashes,
  SampleHashes,
  StandingStatistics,
};

// The seed of `stream` in the run of `seed` (table above).
uint64_t stream_seed(uint64_t seed, RandomStream stream);

// "weight_init", "training", ...: for messages and docs.
std::string_view to_string(RandomStream stream);

}  // namespace longgan::gan

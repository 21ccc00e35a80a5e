#pragma once
// BigGAN-PyTorch checkpoints as LongGAN run directories, and back (docs/BIGGAN_IMPORT.md).
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "gan/biggan/biggan_flags.h"

namespace longgan::app {

// The files of one BigGAN-PyTorch checkpoint: G required; G_ema, D, state_dict and the optimizer
// files G_optim, D_optim where present.
struct BigGanFiles {
  std::filesystem::path g, g_ema, d, state_dict, g_optim, d_optim;  // empty: absent
};

// BigGAN-PyTorch's weights folder (weights/<experiment>/: G<suffix>.pth, G_ema<suffix>.pth,
// D<suffix>.pth, state_dict<suffix>.pth, G_optim<suffix>.pth, D_optim<suffix>.pth), or one G file (a TF Hub port). UsageError naming the
// path when there is no G.
BigGanFiles locate_biggan_files(const std::filesystem::path& weights, const std::string& suffix);

struct BigGanImportRequest {
  BigGanFiles files;
  std::optional<int64_t> tfhub;                             // --tfhub R: the port's settings first
  std::vector<std::pair<std::string, std::string>> flags;  // given on the command line (win)
  std::filesystem::path out;
};

// Writes a run directory at request.out (config.json and one checkpoint at the state dict's
// iteration, or step 0) whose G, G_ema and D compute BigGAN-PyTorch's; with D, the optimizer
// files' Adam state and the training settings of state_dict.pth's config (lr, betas, eps, batch,
// D steps, EMA) become the run's, so train --resume continues BigGAN's training; prints what it
// read and dropped to `out`. Nothing is written when a file or flag is wrong: gan::BigGanTensorMismatch
// and std::invalid_argument name the file, tensor or flag; UsageError when request.out exists.
void import_biggan(const BigGanImportRequest& request, std::ostream& out);

// Writes G.pth, G_ema.pth, D.pth (what the run has) and state_dict.pth (itr and the config
// BigGAN-PyTorch's train.py would hold) of a run's checkpoint into `dir`, in BigGAN-PyTorch's
// layout; std::invalid_argument naming the model option BigGAN-PyTorch cannot express.
void export_biggan(const std::filesystem::path& checkpoint, const std::filesystem::path& dir, std::ostream& out);

}  // namespace longgan::app

#include "app/biggan/biggan_import.h"

#include <ostream>

#include "app/checkpoint_io.h"
#include "app/cli.h"
#include "app/session_config.h"
#include "app/train/train_session.h"
#include "checkpoints/atomic_file.h"
#include "checkpoints/checkpoint.h"
#include "checkpoints/torch_file.h"
#include "gan/biggan/biggan_optimizer.h"
#include "gan/biggan/biggan_tensors.h"
#include "gan/discriminator.h"
#include "gan/generator.h"
#include "gan/module_state.h"
#include "gan/trainer.h"

namespace longgan::app {
namespace {
namespace fs = std::filesystem;

using TensorMap = std::map<std::string, at::Tensor>;

// The state of `network` read from BigGAN-PyTorch's file `path`, loaded into the network; prints
// what was dropped. `file_tensors`, when given, receives the file's tensors (its order).
TensorMap import_network(torch::nn::Module& network, const gan::ModelConfig& model, const fs::path& path,
                         std::ostream& out, checkpoints::NamedTensors* file_tensors = nullptr) {
  checkpoints::NamedTensors tensors = checkpoints::read_state_dict(path);
  gan::BigGanImportNotes notes;
  TensorMap state = gan::state_from_biggan(network, model, tensors, path.string(), &notes);
  gan::load_module_state(network, state, path.string());
  out << "  " << path.string() << ": " << tensors.size() << " tensors";
  if (notes.dropped_sigmas > 0) out << ", " << notes.dropped_sigmas << " sv0 dropped (logged sigmas, unused by a forward)";
  if (notes.dropped_extra_vectors > 0) {
    out << ", " << notes.dropped_extra_vectors << " extra singular vectors dropped (only u0 enters the forward)";
  }
  if (notes.converted_to_float > 0) out << ", " << notes.converted_to_float << " fp16 tensors converted to fp32";
  out << "\n";
  if (file_tensors) *file_tensors = std::move(tensors);
  return gan::module_state(network);
}

// The Adam state of `network` from BigGAN-PyTorch's optimizer file `path` (nullopt when there is
// none); prints what it read.
std::optional<gan::BigGanAdam> import_optimizer(const torch::nn::Module& network, const gan::ModelConfig& model,
                                                const checkpoints::NamedTensors& weights, const fs::path& path,
                                                std::ostream& out) {
  if (path.empty()) return std::nullopt;
  gan::BigGanAdam adam = gan::adam_state_from_biggan(network, model, weights, checkpoints::read_torch_file(path),
                                                     path.string());
  int64_t steps = 0;
  for (const auto& [name, tensor] : adam.state) {
    if (name.ends_with(".step")) steps = std::max(steps, tensor.item<int64_t>());
  }
  out << "  " << path.string() << ": Adam state of " << network.named_parameters().size() << " parameters (up to "
      << steps << " steps";
  if (adam.fresh_parameters > 0) out << "; " << adam.fresh_parameters << " never stepped: zero moments";
  out << "), lr " << adam.lr << ", betas (" << adam.beta1 << ", " << adam.beta2 << "), eps " << adam.eps << "\n";
  return adam;
}

TensorMap copies(const TensorMap& state, const std::string& prefix) {
  TensorMap result;
  for (const auto& [name, tensor] : state) result[prefix + name] = tensor.detach().clone();
  return result;
}

}  // namespace

BigGanFiles locate_biggan_files(const fs::path& weights, const std::string& suffix) {
  BigGanFiles files;
  if (fs::is_regular_file(weights)) {
    files.g = weights;
    return files;
  }
  if (!fs::is_directory(weights)) {
    throw UsageError("'" + weights.string() + "' is neither a BigGAN-PyTorch weights folder nor a G file");
  }
  auto named = [&](const std::string& stem) {
    const fs::path path = weights / (stem + suffix + ".pth");
    return fs::is_regular_file(path) ? path : fs::path();
  };
  files.g = named("G");
  if (files.g.empty()) {
    throw UsageError("'" + weights.string() + "' has no G" + suffix +
                     ".pth (BigGAN-PyTorch's weights folder holds G.pth, G_ema.pth, D.pth and state_dict.pth; "
                     "its copies take a suffix: --suffix _copy0, --suffix _best0)");
  }
  files.g_ema = named("G_ema");
  files.d = named("D");
  files.state_dict = named("state_dict");
  files.g_optim = named("G_optim");
  files.d_optim = named("D_optim");
  return files;
}

void import_biggan(const BigGanImportRequest& request, std::ostream& out) {
  if (fs::exists(request.out) && !(fs::is_directory(request.out) && fs::is_empty(request.out))) {
    throw UsageError("'" + request.out.string() + "' exists; import writes a new run directory: choose another --out");
  }
  gan::BigGanFlags flags = request.tfhub ? gan::tfhub_biggan_flags(*request.tfhub) : gan::BigGanFlags{};
  // BigGAN's G_ema is a decay average (train.py's defaults); its state_dict's config and optimizer
  // files refine these below.
  gan::TrainConfig train;
  train.ema = "decay";
  train.ema_decay = 0.9999;
  train.ema_start = 0;
  int64_t itr = 0;
  out << "importing BigGAN-PyTorch checkpoint\n";
  if (!request.files.state_dict.empty()) {
    const checkpoints::PickleValue saved = checkpoints::read_torch_file(request.files.state_dict);
    if (const auto* value = saved.find("itr"); value && value->as_int()) itr = std::max<int64_t>(*value->as_int(), 0);
    if (const auto* config = saved.find("config")) {
      const auto names = gan::read_biggan_flags(*config, request.files.state_dict.string(), flags);
      const auto settings = gan::read_biggan_train_settings(*config, request.files.state_dict.string(), train);
      out << "  " << request.files.state_dict.string() << ": iteration " << itr << ", " << names.size()
          << " model settings from its config";
      if (!settings.empty()) {
        out << "; training settings:";
        for (size_t i = 0; i < settings.size(); ++i) out << (i ? ", " : " ") << settings[i];
      }
      out << "\n";
    }
  }
  for (const auto& [name, text] : request.flags) gan::set_biggan_flag(flags, name, text);
  // Without D (a TF Hub port) no D attention is recorded: info would list blocks the run lacks.
  if (request.files.d.empty()) flags.D_attn = "0";
  const gan::ModelConfig model = gan::biggan_model_config(flags);

  gan::Generator g(model), g_ema(model);
  g->eval();
  g_ema->eval();
  checkpoints::NamedTensors g_file, d_file;
  const TensorMap g_state = import_network(*g, model, request.files.g, out, &g_file);
  if (!request.files.g_ema.empty()) {
    import_network(*g_ema, model, request.files.g_ema, out);
  } else {
    gan::load_module_state(*g_ema, copies(g_state, ""), "G");
    out << "  no G_ema: G_ema is a copy of G\n";
  }
  std::optional<gan::Discriminator> d;
  std::optional<gan::BigGanAdam> g_adam, d_adam;
  if (!request.files.d.empty()) {
    d.emplace(model);
    import_network(**d, model, request.files.d, out, &d_file);
    g_adam = import_optimizer(*g, model, g_file, request.files.g_optim, out);
    d_adam = import_optimizer(**d, model, d_file, request.files.d_optim, out);
    if (!g_adam || !d_adam) {
      out << "  no " << (g_adam ? "D_optim" : d_adam ? "G_optim" : "G_optim/D_optim")
          << ": fine-tuning starts " << (g_adam || d_adam ? "that optimizer" : "both optimizers")
          << " with fresh Adam moments\n";
    }
  } else {
    out << "  no D: the run samples and scores, but cannot be fine-tuned (train --resume needs D)\n";
  }
  if (g_adam) train.lr_g = g_adam->lr;
  if (d_adam) train.lr_d = d_adam->lr;
  // LongGAN's G and D share one beta pair and eps: G's optimizer's, else D's.
  if (const gan::BigGanAdam* shared = g_adam ? &*g_adam : d_adam ? &*d_adam : nullptr) {
    train.beta1 = shared->beta1;
    train.beta2 = shared->beta2;
    train.eps = shared->eps;
  }
  if (g_adam && d_adam &&
      (d_adam->beta1 != g_adam->beta1 || d_adam->beta2 != g_adam->beta2 || d_adam->eps != g_adam->eps)) {
    out << "  note: D's Adam betas/eps differ from G's; LongGAN's G and D share one setting (G's is used)\n";
  }
  if (flags.num_G_SV_itrs != 1 || flags.num_D_SV_itrs != 1) {
    out << "  note: num_G_SV_itrs/num_D_SV_itrs only change training; LongGAN trains with one power iteration\n";
  }
  train.validate();

  nlohmann::json config = default_session_config();
  config["model"] = gan::to_json(model);
  config["train"] = gan::to_json(train);
  config["run"] = default_run_section();
  config["run"]["sampling_stats"] = "running";

  std::map<std::string, TensorMap> files;
  if (d) {
    gan::GanTrainer trainer(model, train, torch::kCPU);
    gan::load_module_state(*trainer.generator(), g_state, "G");
    gan::load_module_state(*trainer.g_ema(), gan::module_state(*g_ema), "G_ema");
    gan::load_module_state(*trainer.discriminator(), gan::module_state(**d), "D");
    TensorMap state = trainer.state();
    for (const auto& [prefix, adam] : {std::pair{"optim_G.", &g_adam}, {"optim_D.", &d_adam}}) {
      if (*adam) {
        for (const auto& [name, tensor] : (*adam)->state) state.at(prefix + name) = tensor;
      }
    }
    state["trainer.step"] = at::scalar_tensor(itr, at::kLong);
    state["trainer.images_seen"] = at::scalar_tensor(itr * train.batch, at::kLong);
    state[kLoaderPosition] = at::scalar_tensor(int64_t{0}, at::kLong);
    files = split_state(state);
  } else {
    files["G"] = copies(g_state, "");
    files["G_ema"] = copies(gan::module_state(*g_ema), "");
  }
  nlohmann::json provenance = {{"from", "biggan-pytorch"},
                               {"flags", gan::biggan_flags_json(flags)},
                               {"iteration", itr},
                               {"tfhub", request.tfhub ? nlohmann::json(*request.tfhub) : nlohmann::json(nullptr)}};
  for (const auto& [key, path] : {std::pair{"G", request.files.g}, {"G_ema", request.files.g_ema},
                                  {"D", request.files.d}, {"state_dict", request.files.state_dict},
                                  {"G_optim", request.files.g_optim}, {"D_optim", request.files.d_optim}}) {
    provenance["files"][key] = path.empty() ? nlohmann::json(nullptr) : nlohmann::json(fs::absolute(path).string());
  }
  const nlohmann::json manifest = {{"config", config},
                                   {"model", config["model"]},
                                   {"attention", attention::to_json(model.attention)},
                                   {"train", config["train"]},
                                   {"data", nlohmann::json::object()},
                                   {"metrics", nlohmann::json::object()},
                                   {"import", provenance}};
  fs::create_directories(request.out);
  const fs::path step_dir = checkpoints::CheckpointWriter(request.out).write(itr, manifest, files);
  checkpoints::write_file_atomic(request.out / "config.json", config.dump(2) + "\n");
  out << "wrote " << step_dir.string() << " (" << (d ? "G, G_ema, D" : "G, G_ema") << "; resolution "
      << model.resolution << ", ch " << model.ch << ", z_dim " << model.z_dim << ", " << model.n_classes
      << " classes, G attention at";
  for (int64_t site : model.g_attn) out << " " << site;
  out << ", spectral_norm biggan)\n";
}

void export_biggan(const fs::path& checkpoint_path, const fs::path& dir, std::ostream& out) {
  const checkpoints::Checkpoint checkpoint = checkpoints::read_checkpoint(checkpoint_path);
  gan::ModelConfig model = gan::model_config_from_json(checkpoint.manifest.at("config").at("model"));
  if (checkpoint.manifest.contains("attention")) {
    model.attention = attention::attention_spec_from_json(checkpoint.manifest.at("attention"));
  }
  const gan::BigGanFlags flags = gan::biggan_flags_of(model);
  std::vector<std::pair<std::string, checkpoints::NamedTensors>> outputs;
  for (const std::string stem : {"G", "G_ema"}) {
    auto file = checkpoint.files.find(stem);
    if (file == checkpoint.files.end()) continue;
    gan::Generator g(model);
    gan::load_module_state(*g, file->second, (checkpoint.dir / (stem + ".pt")).string());
    outputs.emplace_back(stem, gan::state_to_biggan(*g, model));
  }
  if (auto file = checkpoint.files.find("D"); file != checkpoint.files.end()) {
    if (model.resolution == 512) {
      out << "D not exported: BigGAN-PyTorch has no D at 512\n";
    } else {
      gan::Discriminator d(model);
      gan::load_module_state(*d, file->second, (checkpoint.dir / "D.pt").string());
      outputs.emplace_back("D", gan::state_to_biggan(*d, model));
    }
  }
  fs::create_directories(dir);
  for (const auto& [stem, tensors] : outputs) {
    const fs::path path = dir / (stem + ".pth");
    checkpoints::write_state_dict(path, tensors);
    out << "wrote " << path.string() << " (" << tensors.size() << " tensors)\n";
  }
  const std::string command_flags = gan::biggan_train_py_flags(flags);
  checkpoints::write_file_atomic(dir / "train_py_flags.txt", command_flags + "\n");
  out << "BigGAN-PyTorch's train.py builds this model with: " << command_flags << " (and a --dataset of "
      << flags.resolution << "x" << flags.resolution << " images in " << flags.n_classes << " classes)\n"
      << "import these files back with: longgan import biggan-pytorch " << dir.string() << " --resolution "
      << flags.resolution << " --n_classes " << flags.n_classes << " $(cat " << (dir / "train_py_flags.txt").string()
      << ") --out RUN\n";
}

}  // namespace longgan::app

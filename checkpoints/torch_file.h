#pragma once
// Files as Python's torch.save writes them, read and written with LibTorch alone (no Python): the
// zip format (torch >= 1.6: data.pkl + data/<key> records) and the legacy format (torch < 1.6:
// consecutive pickles followed by the raw storages). LibTorch's own unpickler cannot read a state
// dict (it has no collections.OrderedDict) nor the legacy format, hence this small reader of the
// pickle opcodes torch.save emits (protocols 2 to 4). Used to import and export other tools'
// checkpoints (BigGAN-PyTorch's G.pth, D.pth, state_dict.pth) and latents saved by torch.save.
#include <ATen/ATen.h>
#include <ATen/core/ivalue.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace longgan::checkpoints {

// A file that is not a torch.save file, is truncated, or holds something this reader does not
// understand; the message names the file and what was wrong.
struct TorchFileError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A Python object as the pickle held it. Dicts keep their order (OrderedDict and dict alike).
// Globals this reader does not rebuild (nn.ReLU in BigGAN-PyTorch's config, sets, ...) stay
// opaque: their module and name are kept, nothing else.
struct PickleValue {
  struct None {};
  struct Opaque {
    std::string module, name;  // e.g. "torch.nn.modules.activation", "ReLU"
  };
  using List = std::vector<PickleValue>;
  using Dict = std::vector<std::pair<PickleValue, PickleValue>>;
  std::variant<None, bool, int64_t, double, std::string, List, Dict, at::Tensor, Opaque> value;
  bool is_tuple = false;  // a List that was a Python tuple

  bool is_none() const { return std::holds_alternative<None>(value); }
  const std::string* as_string() const { return std::get_if<std::string>(&value); }
  const int64_t* as_int() const { return std::get_if<int64_t>(&value); }
  const double* as_double() const { return std::get_if<double>(&value); }
  const bool* as_bool() const { return std::get_if<bool>(&value); }
  const at::Tensor* as_tensor() const { return std::get_if<at::Tensor>(&value); }
  const List* as_list() const { return std::get_if<List>(&value); }
  const Dict* as_dict() const { return std::get_if<Dict>(&value); }
  const Opaque* as_opaque() const { return std::get_if<Opaque>(&value); }
  // The value of a string key of a dict; nullptr when this is not a dict or has no such key.
  const PickleValue* find(const std::string& key) const;
};

// The object a torch.save file holds. Tensors are CPU tensors with the file's dtype, sizes,
// strides and storage offsets (tensors sharing a storage in the file share it here).
// TorchFileError naming `path` for anything else.
PickleValue read_torch_file(const std::filesystem::path& path);

// A state dict: an (Ordered)Dict of string -> tensor, in the file's order. TorchFileError naming
// `path` (and the key) when the file holds anything else.
using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;
NamedTensors read_state_dict(const std::filesystem::path& path);

// A file holding one tensor (torch.save(tensor, path)). TorchFileError naming `path` otherwise.
at::Tensor read_tensor_file(const std::filesystem::path& path);

// Writes `tensors` as torch.save(OrderedDict) would in the zip format, so that Python's
// torch.load(path) (weights_only=True, the default since torch 2.6) returns a dict name -> tensor
// that module.load_state_dict(..., strict=True) accepts. Tensors are written contiguous, on the
// CPU, with their dtype. Atomic (temporary file + fsync + rename): a failure leaves no file.
void write_state_dict(const std::filesystem::path& path, const NamedTensors& tensors);

// torch.save(tensor, path) in the zip format; atomic like write_state_dict.
void write_tensor_file(const std::filesystem::path& path, const at::Tensor& tensor);

// The bytes torch.save(value) writes in the zip format (data.pkl, data/<i>, byteorder), without
// TorchScript's type tags, which torch.load(weights_only=True) refuses; for what LibTorch's Pickler
// takes (tensors, dicts and lists of them, strings, numbers). Tensors are written as they are: each
// one's whole storage (write_state_dict passes contiguous CPU tensors alone in their storages).
// c10::Error for what the Pickler cannot write.
std::string torch_save_bytes(const c10::IValue& value);

}  // namespace longgan::checkpoints

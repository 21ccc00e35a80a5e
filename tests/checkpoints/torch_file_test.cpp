// The torch.save reader and writer: the BigGAN fixture's files in both formats against what
// Python's torch.load reads (tests/fixtures/biggan/tensor_sums.json, scripts/make_torch_file_sums.py),
// files built opcode by opcode for what the fixture lacks (shared storages, parameters, hostile
// pickles), round trips, and damaged files (errors naming the file, never a crash).
#include "checkpoints/torch_file.h"

#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <cmath>
#include <cstdlib>
#include <functional>
#include <random>

#include "checkpoints/atomic_file.h"
#include "tests/checkpoints/fresh_dir.h"

namespace longgan::checkpoints {
namespace {
namespace fs = std::filesystem;

using testing::fresh_dir;

constexpr const char* kLegacy = "res128_gattn64";  // G.pth, D.pth, state_dict.pth in the legacy format
constexpr const char* kZip = "res256_gattn128";    // everything in the zip format
constexpr const char* kTensorFiles[] = {"z.pth", "y.pth", "G_images.pth", "D_logits.pth"};

// CTest sets LONGGAN_SOURCE_DIR (tests/CMakeLists.txt).
fs::path fixture(const std::string& relative) {
  const char* source = std::getenv("LONGGAN_SOURCE_DIR");
  EXPECT_NE(source, nullptr) << "LONGGAN_SOURCE_DIR is not set: run this test through ctest";
  return fs::path(source == nullptr ? "." : source) / "tests" / "fixtures" / "biggan" / relative;
}

const nlohmann::json& python_sums() {
  static const nlohmann::json sums = nlohmann::json::parse(read_file(fixture("tensor_sums.json")));
  return sums;
}

at::ScalarType dtype_named(const std::string& name) {
  static const std::map<std::string, at::ScalarType> kTypes{
      {"float32", at::kFloat}, {"float64", at::kDouble}, {"int64", at::kLong}, {"int32", at::kInt}};
  return kTypes.at(name);
}

// The tensor has the name, shape, dtype and float64 sum Python's torch.load gave (one row of
// tensor_sums.json: [name, shape, dtype, sum]).
void expect_as_python(const std::string& name, const at::Tensor& tensor, const nlohmann::json& row,
                      const std::string& file) {
  EXPECT_EQ(name, row[0].get<std::string>()) << file;
  EXPECT_EQ(tensor.sizes().vec(), row[1].get<std::vector<int64_t>>()) << file << " " << name;
  EXPECT_EQ(tensor.scalar_type(), dtype_named(row[2].get<std::string>())) << file << " " << name;
  const at::Tensor values = tensor.to(at::kDouble);
  const double scale = values.abs().sum().item<double>();
  EXPECT_NEAR(values.sum().item<double>(), row[3].get<double>(), 1e-12 * scale + 1e-300) << file << " " << name;
}

// `read` throws a TorchFileError whose message names `path` and contains `expected`.
void expect_error(const std::function<void()>& read, const fs::path& path, const std::string& expected) {
  try {
    read();
    ADD_FAILURE() << "no error reading " << path << " (expected '" << expected << "')";
  } catch (const TorchFileError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    EXPECT_NE(message.find(expected), std::string::npos) << "expected '" << expected << "' in: " << message;
  }
}

// A zip archive as torch.save writes one (records under a top folder named after the file).
void write_zip(const fs::path& path, const std::vector<std::pair<std::string, std::string>>& records) {
  caffe2::serialize::PyTorchStreamWriter writer(path.string());
  for (const auto& [name, bytes] : records) writer.writeRecord(name, bytes.data(), bytes.size());
  writer.writeEndOfFile();
}

// Pickle bytes (protocol 2) written opcode by opcode, for objects the fixture does not hold.
struct Pickle {
  std::string bytes{"\x80\x02", 2};

  Pickle& op(std::string_view opcodes) {
    bytes += opcodes;
    return *this;
  }
  Pickle& str(const std::string& text) {
    const auto n = static_cast<uint32_t>(text.size());
    bytes += 'X';
    for (int i = 0; i < 4; ++i) bytes += static_cast<char>((n >> (8 * i)) & 0xff);
    bytes += text;
    return *this;
  }
  Pickle& integer(int32_t value) {
    bytes += 'J';
    for (int i = 0; i < 4; ++i) bytes += static_cast<char>((static_cast<uint32_t>(value) >> (8 * i)) & 0xff);
    return *this;
  }
  Pickle& global(const std::string& module, const std::string& name) { return op("c" + module + "\n" + name + "\n"); }
  Pickle& ints(const std::vector<int32_t>& values) {
    op("(");
    for (int32_t v : values) integer(v);
    return op("t");
  }
  // torch._utils._rebuild_tensor_v2(storage <key> of `numel` floats, offset, size, stride, False, OrderedDict())
  Pickle& tensor(const std::string& key, int32_t numel, int32_t offset, const std::vector<int32_t>& size,
                 const std::vector<int32_t>& stride) {
    global("torch._utils", "_rebuild_tensor_v2").op("((").str("storage").global("torch", "FloatStorage");
    str(key).str("cpu").integer(numel).op("NtQ").integer(offset).ints(size).ints(stride);
    return op("\x89").global("collections", "OrderedDict").op(")RtR");
  }
  std::string done() const { return bytes + "."; }
};

std::string float_bytes(const std::vector<float>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
}

// {'a': [[1, 3], [2, 4]], 'b': [3, 4, 5], 'p': nn.Parameter(0.)}: three tensors over one storage
// of 6 floats (0..5) under `key`.
std::string shared_storage_pickle(const std::string& key) {
  Pickle p;
  p.op("}(").str("a").tensor(key, 6, 1, {2, 2}, {1, 2}).str("b").tensor(key, 6, 3, {3}, {1});
  p.str("p").global("torch._utils", "_rebuild_parameter").op("(").tensor(key, 6, 0, {}, {});
  p.op("\x89").global("collections", "OrderedDict").op(")RtR").op("u");
  return p.done();
}
const std::vector<float> kSharedValues{0, 1, 2, 3, 4, 5};

// The legacy format around an object pickle: magic number, protocol version, sys info, the object,
// the storage keys, then each storage's element count and elements.
std::string legacy_file(const std::string& object,
                        const std::vector<std::pair<std::string, std::vector<float>>>& storages,
                        bool little_endian = true) {
  std::string out = std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15);
  out += Pickle().op("M\xe9\x03").done();  // 1001
  out += Pickle().op("}").str("little_endian").op(little_endian ? "\x88" : "\x89").op("s").done();
  out += object;
  Pickle keys;
  keys.op("(");
  for (const auto& [key, values] : storages) keys.str(key);
  out += keys.op("l").done();
  for (const auto& [key, values] : storages) {
    const int64_t numel = static_cast<int64_t>(values.size());
    out += std::string(reinterpret_cast<const char*>(&numel), sizeof numel) + float_bytes(values);
  }
  return out;
}

TEST(TorchFile, ReadsStateDictsOfBothFormatsAsPythonDoes) {
  for (const std::string folder : {kLegacy, kZip}) {
    const nlohmann::json flags = nlohmann::json::parse(read_file(fixture(folder + "/flags.json")));
    for (const std::string file : {"G.pth", "D.pth"}) {
      const std::string name = folder + "/" + file;
      const NamedTensors tensors = read_state_dict(fixture(name));
      const nlohmann::json& rows = python_sums().at(name);
      ASSERT_EQ(tensors.size(), flags["files"][file]["keys"].get<size_t>()) << name;
      ASSERT_EQ(tensors.size(), rows.size()) << name;
      for (size_t i = 0; i < tensors.size(); ++i) expect_as_python(tensors[i].first, tensors[i].second, rows[i], name);
    }
  }
  // Two keys of docs/BIGGAN_IMPORT.md §2.2, and G_ema.pth (a byte copy of G.pth) reads the same.
  const NamedTensors g = read_state_dict(fixture(std::string(kLegacy) + "/G.pth"));
  const auto gain =
      std::find_if(g.begin(), g.end(), [](const auto& t) { return t.first == "blocks.0.0.bn1.gain.weight"; });
  ASSERT_NE(gain, g.end());
  EXPECT_EQ(gain->second.sizes().vec(), (std::vector<int64_t>{64, 20}));
  EXPECT_EQ(g.front().first, "shared.weight");
  const NamedTensors ema = read_state_dict(fixture(std::string(kLegacy) + "/G_ema.pth"));
  ASSERT_EQ(ema.size(), g.size());
  for (size_t i = 0; i < g.size(); ++i) EXPECT_TRUE(torch::equal(ema[i].second, g[i].second)) << g[i].first;
}

TEST(TorchFile, ReadsBareTensorsAsLibTorchDoes) {
  for (const std::string folder : {kLegacy, kZip}) {
    for (const std::string file : kTensorFiles) {
      const std::string name = folder + "/" + file;
      const at::Tensor tensor = read_tensor_file(fixture(name));
      const std::string bytes = read_file(fixture(name));
      const at::Tensor expected = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end())).toTensor();
      EXPECT_EQ(tensor.scalar_type(), expected.scalar_type()) << name;
      EXPECT_TRUE(torch::equal(tensor, expected)) << name;
      expect_as_python("", tensor, python_sums().at(name).at(0), name);
    }
  }
}

TEST(TorchFile, ReadsBigGanStateAndConfig) {
  for (const std::string folder : {kLegacy, kZip}) {
    const PickleValue state = read_torch_file(fixture(folder + "/state_dict.pth"));
    ASSERT_NE(state.as_dict(), nullptr) << folder;
    EXPECT_EQ(state.as_dict()->size(), 7u) << folder;
    ASSERT_NE(state.find("itr"), nullptr);
    ASSERT_NE(state.find("itr")->as_int(), nullptr);
    EXPECT_EQ(*state.find("itr")->as_int(), 40);
    EXPECT_EQ(state.find("no such key"), nullptr);
    const PickleValue* config = state.find("config");
    ASSERT_NE(config, nullptr);
    ASSERT_NE(config->as_dict(), nullptr);
    EXPECT_EQ(config->as_dict()->size(), 94u);
    EXPECT_EQ(*config->find("G_ch")->as_int(), 4);
    const nlohmann::json flags = nlohmann::json::parse(read_file(fixture(folder + "/flags.json")));
    ASSERT_NE(config->find("BN_eps")->as_double(), nullptr);
    EXPECT_EQ(*config->find("BN_eps")->as_double(), flags["config"]["BN_eps"].get<double>());
    EXPECT_EQ(*config->find("G_attn")->as_string(), flags["config"]["G_attn"].get<std::string>());
    EXPECT_EQ(*config->find("hier")->as_bool(), true);
    for (const char* activation : {"G_activation", "D_activation"}) {
      const PickleValue::Opaque* relu = config->find(activation)->as_opaque();
      ASSERT_NE(relu, nullptr) << folder << " " << activation;
      EXPECT_EQ(relu->module, "torch.nn.modules.activation");
      EXPECT_EQ(relu->name, "ReLU");
    }
    EXPECT_EQ(config->find("G_ch")->find("x"), nullptr);  // not a dict
  }
}

TEST(TorchFile, TensorsSharingAStorageShareIt) {
  const fs::path dir = fresh_dir("torch_file_shared");
  const std::string key = "94372011";
  write_zip(dir / "shared_zip.pth",
            {{"data.pkl", shared_storage_pickle(key)}, {"data/" + key, float_bytes(kSharedValues)}});
  write_file_durable(dir / "shared_legacy.pth", legacy_file(shared_storage_pickle(key), {{key, kSharedValues}}));
  for (const char* file : {"shared_zip.pth", "shared_legacy.pth"}) {
    const NamedTensors tensors = read_state_dict(dir / file);
    ASSERT_EQ(tensors.size(), 3u) << file;
    EXPECT_EQ(tensors[0].first, "a");
    EXPECT_EQ(tensors[1].first, "b");
    EXPECT_EQ(tensors[2].first, "p");
    EXPECT_TRUE(torch::equal(tensors[0].second, torch::tensor({1.f, 3.f, 2.f, 4.f}).reshape({2, 2}))) << file;
    EXPECT_EQ(tensors[0].second.strides().vec(), (std::vector<int64_t>{1, 2})) << file;
    EXPECT_TRUE(torch::equal(tensors[1].second, torch::tensor({3.f, 4.f, 5.f}))) << file;
    EXPECT_EQ(tensors[2].second.dim(), 0) << file;
    EXPECT_EQ(tensors[2].second.item<float>(), 0.f) << file;
    EXPECT_TRUE(tensors[0].second.storage().is_alias_of(tensors[1].second.storage())) << file;
    EXPECT_TRUE(tensors[0].second.storage().is_alias_of(tensors[2].second.storage())) << file;
  }
}

TEST(TorchFile, WrittenStateDictReadsBackIdentical) {
  const fs::path dir = fresh_dir("torch_file_write");
  NamedTensors tensors = read_state_dict(fixture(std::string(kLegacy) + "/G.pth"));
  tensors.emplace_back("extra.transposed", torch::arange(12, torch::kFloat64).reshape({3, 4}).t());
  tensors.emplace_back("extra.slice", torch::arange(10, torch::kInt64).slice(0, 2, 5));
  tensors.emplace_back("extra.bool", torch::tensor({true, false}));
  tensors.emplace_back("extra.half", torch::full({2, 2}, 1.5, torch::kHalf));
  write_state_dict(dir / "G.pth", tensors);
  const NamedTensors back = read_state_dict(dir / "G.pth");
  ASSERT_EQ(back.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(back[i].first, tensors[i].first);
    EXPECT_EQ(back[i].second.scalar_type(), tensors[i].second.scalar_type()) << tensors[i].first;
    EXPECT_TRUE(torch::equal(back[i].second, tensors[i].second)) << tensors[i].first;
  }
  EXPECT_EQ(back.back().second.storage().nbytes(), 8u);  // the slice alone, not its 10-element storage

  const at::Tensor z = read_tensor_file(fixture(std::string(kZip) + "/z.pth"));
  write_tensor_file(dir / "z.pth", z);
  EXPECT_TRUE(torch::equal(read_tensor_file(dir / "z.pth"), z));
  const std::string bytes = read_file(dir / "z.pth");
  EXPECT_TRUE(torch::equal(torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end())).toTensor(), z));

  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"G.pth", "z.pth"}));  // no temporaries left
}

TEST(TorchFile, WriteFailuresLeaveNoFile) {
  const fs::path dir = fresh_dir("torch_file_write_fail");
  const NamedTensors tensors{{"w", torch::ones({2})}};
  EXPECT_THROW(write_state_dict(dir / "missing" / "G.pth", tensors), TorchFileError);
  EXPECT_FALSE(fs::exists(dir / "missing"));
  expect_error(
      [&] {
        write_state_dict(dir / "G.pth", {{"w", torch::ones({2})}, {"w", torch::zeros({2})}});
      },
      dir / "G.pth", "'w' appears twice");
  expect_error([&] { write_state_dict(dir / "G.pth", {{"w", at::Tensor()}}); }, dir / "G.pth", "'w' is undefined");
  EXPECT_TRUE(fs::is_empty(dir));
}

TEST(TorchFile, WrongContentNamesTheFile) {
  const fs::path z = fixture(std::string(kZip) + "/z.pth");
  expect_error([&] { read_state_dict(z); }, z, "is not a state dict (a dict of name -> tensor): it holds a tensor");
  const fs::path g = fixture(std::string(kLegacy) + "/G.pth");
  expect_error([&] { read_tensor_file(g); }, g, "holds a dict, not a tensor");
  const fs::path state = fixture(std::string(kZip) + "/state_dict.pth");
  expect_error([&] { read_state_dict(state); }, state, "the value of 'itr' is an int");
  const fs::path missing = fixture("no_such_file.pth");
  expect_error([&] { read_torch_file(missing); }, missing, "");
}

TEST(TorchFile, TruncatedAndDamagedFilesAreErrors) {
  const fs::path dir = fresh_dir("torch_file_damaged");
  std::mt19937 rng(30);
  for (const std::string folder : {kLegacy, kZip}) {
    const std::string bytes = read_file(fixture(folder + "/G.pth"));
    std::vector<size_t> lengths{0, 1, 2, 3, 4, 10, 14, 15, 16, 30, 100, 1000, 10000, bytes.size() / 2};
    for (size_t cut : {1000, 100, 22, 1}) lengths.push_back(bytes.size() - cut);
    for (size_t length : lengths) {
      const fs::path path = dir / (folder + "_" + std::to_string(length) + ".pth");
      write_file_durable(path, bytes.substr(0, length));
      expect_error([&] { read_torch_file(path); }, path, "");
    }
    // One byte changed anywhere: either read (the storage bytes of the legacy format are not
    // checked) or an error, never a crash.
    for (int i = 0; i < 20; ++i) {
      std::string damaged = bytes;
      damaged[rng() % damaged.size()] ^= static_cast<char>(1 + rng() % 255);
      const fs::path path = dir / (folder + "_flip.pth");
      write_file_durable(path, damaged);
      try {
        read_torch_file(path);
      } catch (const TorchFileError& e) {
        EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
      }
    }
  }
  for (const std::string start : {"", "PK\x03\x04", "\x80\x02"}) {
    std::string random = start;
    while (random.size() < 4096) random += static_cast<char>(rng());
    const fs::path path = dir / "random.pth";
    write_file_durable(path, random);
    expect_error([&] { read_torch_file(path); }, path, "");
  }
  const fs::path random = dir / "random.pth";
  write_file_durable(random, "hello world");
  expect_error([&] { read_torch_file(random); }, random,
               "neither a zip archive (torch >= 1.6) nor torch.save's legacy format");
  const fs::path no_pickle = dir / "no_pickle.pth";
  write_zip(no_pickle, {{"data/0", "1234"}});
  expect_error([&] { read_torch_file(no_pickle); }, no_pickle, "without a data.pkl record");
}

// Pickles that must fail with a clear error (each in a zip archive as data.pkl).
TEST(TorchFile, HostilePicklesAreErrors) {
  const fs::path dir = fresh_dir("torch_file_hostile");
  std::string deep = Pickle().done();
  deep.pop_back();
  deep += std::string(1000000, ']') + std::string(999999, 'a') + ".";
  std::string shared = Pickle().op("]").done();  // ([], []) nested 64 times: 2^64 lists when expanded
  shared.pop_back();
  for (int i = 0; i < 64; ++i) shared += "2\x86";
  shared += ".";
  const std::vector<std::pair<std::string, std::string>> cases{
      {Pickle().op("I12\n").done(), "unsupported pickle opcode 0x49 ('I') at byte 2 of data.pkl"},
      {Pickle().op("h\x05").done(), "memo key 5, which was never stored"},
      {Pickle().op("a").done(), "pickle stack underflow at opcode 0x61 ('a') at byte 2"},
      {Pickle().op("]").str("x").op("u").done(), "has no MARK before it"},
      {Pickle().op("(").str("x").op("e").done(), "pickle stack underflow"},
      {Pickle().op("N)R").done(), "calls None"},
      {Pickle().op("K\x01").str("k").str("v").op("s").done(), "sets items of an int"},
      {Pickle().op("(").str("foo").op("tQ").done(), "unknown persistent id 'foo'"},
      {Pickle().op("X\xff\xff\xff\x7f").done(),
       "truncated pickle: opcode 0x58 ('X') at byte 2 of data.pkl needs 2147483647 byte(s), 1 left"},
      {Pickle().op("]").done().substr(0, 3), "truncated pickle: data.pkl ends at byte 3 before its STOP opcode"},
      {Pickle().op("\x80\x06").done(), "unsupported pickle protocol 6"},
      {Pickle().tensor("0", 6, 0, {}, {}).done(), "storage '0' has no record data/0"},
      {Pickle().tensor("k", 4, 2, {3}, {1}).done(), "reaches beyond the storage's 4 elements"},
      {Pickle().tensor("k", 4, 0, {2}, {-1}).done(), "negative size or stride"},
      {Pickle().tensor("k", 5, 0, {2}, {1}).done(),
       "storage 'k' (record data/k) holds 16 bytes, its 5 Float elements need 20"},
      {Pickle().op("]2a").done(), "objects nested deeper than 1000 levels"},  // a list holding itself
      {deep, "objects nested deeper than 1000 levels"},
      {shared, "references its shared objects too many times"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const fs::path path = dir / ("case_" + std::to_string(i) + ".pth");
    write_zip(path, {{"data.pkl", cases[i].first}, {"data/k", float_bytes({1, 2, 3, 4})}});
    expect_error([&] { read_torch_file(path); }, path, cases[i].second);
  }
}

TEST(TorchFile, DamagedLegacyLayoutsAreErrors) {
  const fs::path dir = fresh_dir("torch_file_legacy");
  const std::string object = shared_storage_pickle("7");
  const std::vector<std::pair<std::string, std::string>> cases{
      {legacy_file(object, {{"7", kSharedValues}}, /*little_endian=*/false), "written on a big-endian machine"},
      {legacy_file(object, {{"7", kSharedValues}, {"8", kSharedValues}}),
       "storage '8' is listed but no tensor uses it"},
      {legacy_file(object, {{"7", {0, 1, 2, 3, 4}}}), "storage '7' holds 5 elements, its persistent id says 6"},
      {legacy_file(object, {}), "storage '7' has no data in the file"},
      {legacy_file(object, {{"7", kSharedValues}}).substr(0, 16),
       "truncated pickle: opcode 0x80 at byte 15 of the protocol version pickle (legacy format) needs 1 byte(s), 0 "
       "left"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const fs::path path = dir / ("case_" + std::to_string(i) + ".pth");
    write_file_durable(path, cases[i].first);
    expect_error([&] { read_torch_file(path); }, path, cases[i].second);
  }
}

}  // namespace
}  // namespace longgan::checkpoints

#include "checkpoints/torch_file.h"

#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/read_adapter_interface.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickler.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <string_view>
#include <unordered_map>

#include "checkpoints/atomic_file.h"

namespace longgan::checkpoints {
namespace fs = std::filesystem;
namespace {

// Bounds against hostile files: how deep the object read may nest, and how many values the
// conversion may make beyond the pickle's own objects (a pickle can reference one list from many
// places, each level doubling the values made from it).
constexpr int kMaxDepth = 1000;
constexpr int64_t kMaxSharedExpansion = int64_t{1} << 20;
constexpr int kLegacyProtocolVersion = 1001;
// The legacy format's first pickle: the int 0x1950a86a20f9469cfc6c, as LONG1's little-endian bytes.
constexpr std::string_view kLegacyMagic{"\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10};

// What is wrong with the bytes; the public functions add the file's path (TorchFileError).
struct Malformed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void malformed(const std::string& what) { throw Malformed(what); }

// The pickle opcodes of protocols 2 to 4 this reader executes (Python's Lib/pickle.py names).
enum Op : uint8_t {
  kMark = '(',
  kStop = '.',
  kPop = '0',
  kPopMark = '1',
  kDup = '2',
  kBinInt = 'J',
  kBinInt1 = 'K',
  kBinInt2 = 'M',
  kNone = 'N',
  kBinPersId = 'Q',
  kReduce = 'R',
  kBinString = 'T',
  kShortBinString = 'U',
  kBinUnicode = 'X',
  kBinBytes = 'B',
  kShortBinBytes = 'C',
  kAppend = 'a',
  kBuild = 'b',
  kGlobal = 'c',
  kDict = 'd',
  kEmptyDict = '}',
  kAppends = 'e',
  kGet = 'g',
  kBinGet = 'h',
  kLongBinGet = 'j',
  kList = 'l',
  kEmptyList = ']',
  kPut = 'p',
  kBinPut = 'q',
  kLongBinPut = 'r',
  kSetItem = 's',
  kTuple = 't',
  kEmptyTuple = ')',
  kSetItems = 'u',
  kBinFloat = 'G',
  kProto = 0x80,
  kNewObj = 0x81,
  kTuple1 = 0x85,
  kTuple2 = 0x86,
  kTuple3 = 0x87,
  kNewTrue = 0x88,
  kNewFalse = 0x89,
  kLong1 = 0x8a,
  kLong4 = 0x8b,
  kShortBinUnicode = 0x8c,
  kBinUnicode8 = 0x8d,
  kBinBytes8 = 0x8e,
  kEmptySet = 0x8f,
  kAddItems = 0x90,
  kFrozenSet = 0x91,
  kNewObjEx = 0x92,
  kStackGlobal = 0x93,
  kMemoize = 0x94,
  kFrame = 0x95,
};

std::string describe_opcode(uint8_t op) {
  char text[32];
  if (op >= 0x20 && op < 0x7f) {
    std::snprintf(text, sizeof text, "0x%02x ('%c')", op, op);
  } else {
    std::snprintf(text, sizeof text, "0x%02x", op);
  }
  return text;
}

// A storage a persistent id named; its bytes are read once the pickle is done (the legacy format
// stores them after it).
struct Storage {
  std::string key;
  at::ScalarType dtype;
  int64_t numel = 0;
  at::Tensor data;  // 1-D, numel elements; undefined until read
};

at::ScalarType storage_dtype(const std::string& module, const std::string& name) {
  static const std::map<std::string, at::ScalarType, std::less<>> kTypes{{"FloatStorage", at::kFloat},
                                                                         {"DoubleStorage", at::kDouble},
                                                                         {"HalfStorage", at::kHalf},
                                                                         {"BFloat16Storage", at::kBFloat16},
                                                                         {"LongStorage", at::kLong},
                                                                         {"IntStorage", at::kInt},
                                                                         {"ShortStorage", at::kShort},
                                                                         {"CharStorage", at::kChar},
                                                                         {"ByteStorage", at::kByte},
                                                                         {"BoolStorage", at::kBool},
                                                                         {"ComplexFloatStorage", at::kComplexFloat},
                                                                         {"ComplexDoubleStorage", at::kComplexDouble},
                                                                         {"UntypedStorage", at::kByte}};
  const auto it = kTypes.find(name);
  if (module != "torch" || it == kTypes.end()) malformed("unsupported storage type " + module + "." + name);
  return it->second;
}

// One Python object of the pickle. Nodes live in a Graph and refer to each other by pointer, so
// that the memo, shared objects and even cycles (a hostile file) cost nothing until converted.
struct Node {
  enum class Kind : uint8_t { None, Bool, Int, BigInt, Float, String, List, Tuple, Set, Dict, Global, Object, Storage };
  Kind kind = Kind::None;
  int64_t integer = 0;         // Bool, Int
  double real = 0;             // Float
  std::string text;            // String; BigInt: its little-endian bytes; Global: the module
  std::string name;            // Global: the name
  std::vector<Node*> items;    // List, Tuple, Set; Dict: key, value, key, ...; Object: class, args
  Storage* storage = nullptr;  // Storage
};

// The Python type of a node, with its article: "an int", "a dict".
const char* a_kind(Node::Kind kind) {
  switch (kind) {
    case Node::Kind::None: return "None";
    case Node::Kind::Bool: return "a bool";
    case Node::Kind::Int: return "an int";
    case Node::Kind::BigInt: return "an int";
    case Node::Kind::Float: return "a float";
    case Node::Kind::String: return "a str";
    case Node::Kind::List: return "a list";
    case Node::Kind::Tuple: return "a tuple";
    case Node::Kind::Set: return "a set";
    case Node::Kind::Dict: return "a dict";
    case Node::Kind::Global: return "a class or function";
    case Node::Kind::Object: return "an object";
    case Node::Kind::Storage: return "a storage";
  }
  return "?";
}

// The objects of one file's pickles and the storages they name.
struct Graph {
  std::deque<Node> nodes;                   // a deque: pointers stay valid as it grows
  std::map<std::string, Storage> storages;  // by persistent key

  Node* make(Node::Kind kind) { return &nodes.emplace_back(Node{.kind = kind}); }
};

template <typename N>  // Node or const Node
N* expect(N* node, Node::Kind kind, const std::string& what) {
  if (node->kind != kind) {
    malformed(what + " is " + a_kind(node->kind) + ", expected " + a_kind(kind));
  }
  return node;
}

bool is_global(const Node* node, std::string_view module, std::string_view name) {
  return node->kind == Node::Kind::Global && node->text == module && node->name == name;
}

// Executes one pickle (up to its STOP) from bytes[pos...]: a stack machine whose every read,
// stack pop, mark and memo lookup is checked.
class Unpickler {
 public:
  Unpickler(std::string_view bytes, size_t pos, std::string where, Graph& graph)
      : bytes_(bytes), pos_(pos), where_(std::move(where)), graph_(graph) {}

  size_t position() const { return pos_; }

  Node* run() {
    for (;;) {
      if (pos_ >= bytes_.size()) {
        malformed("truncated pickle: " + where_ + " ends at byte " + std::to_string(pos_) + " before its STOP opcode");
      }
      op_pos_ = pos_;
      op_ = static_cast<uint8_t>(bytes_[pos_++]);
      if (op_ == kStop) return pop();
      step();
    }
  }

 private:
  std::string at() const {
    return "opcode " + describe_opcode(op_) + " at byte " + std::to_string(op_pos_) + " of " + where_;
  }

  std::string_view take(uint64_t n) {
    if (n > bytes_.size() - pos_) {
      malformed("truncated pickle: " + at() + " needs " + std::to_string(n) + " byte(s), " +
                std::to_string(bytes_.size() - pos_) + " left");
    }
    std::string_view out = bytes_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  uint64_t little_endian(size_t n) {
    const std::string_view b = take(n);
    uint64_t x = 0;
    for (size_t i = 0; i < n; ++i) x |= uint64_t{static_cast<uint8_t>(b[i])} << (8 * i);
    return x;
  }
  std::string line() {
    const size_t end = bytes_.find('\n', pos_);
    if (end == std::string_view::npos) malformed("truncated pickle: " + at() + " has no end of line");
    std::string out(bytes_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return out;
  }
  uint64_t decimal_line() {
    const std::string text = line();
    const auto digit = [](char c) { return c >= '0' && c <= '9'; };
    if (text.empty() || text.size() > 18 || !std::all_of(text.begin(), text.end(), digit)) {
      malformed(at() + " has a bad memo key '" + text + "'");
    }
    return std::stoull(text);
  }

  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(Node* node) { stack_.push_back(node); }
  Node* top() {
    if (stack_.size() <= floor()) malformed("pickle stack underflow at " + at());
    return stack_.back();
  }
  Node* pop() {
    Node* node = top();
    stack_.pop_back();
    return node;
  }
  std::vector<Node*> pop_mark() {
    if (marks_.empty()) malformed(at() + " has no MARK before it");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<Node*> out(stack_.begin() + static_cast<ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return out;
  }

  Node* make(Node::Kind kind) { return graph_.make(kind); }
  Node* make_int(int64_t value) {
    Node* node = make(Node::Kind::Int);
    node->integer = value;
    return node;
  }
  Node* make_bool(bool value) {
    Node* node = make(Node::Kind::Bool);
    node->integer = value;
    return node;
  }
  Node* make_string(std::string_view text) {
    Node* node = make(Node::Kind::String);
    node->text = text;
    return node;
  }
  Node* make_sequence(Node::Kind kind, std::vector<Node*> items) {
    Node* node = make(kind);
    node->items = std::move(items);
    return node;
  }
  Node* make_global(std::string module, std::string name) {
    Node* node = make(Node::Kind::Global);
    node->text = std::move(module);
    node->name = std::move(name);
    return node;
  }
  // A two's-complement little-endian integer (LONG1, LONG4); beyond int64 a BigInt.
  Node* make_long(std::string_view b) {
    const size_t n = b.size();
    const bool negative = n > 0 && (static_cast<uint8_t>(b[n - 1]) & 0x80);
    bool fits = true;
    for (size_t i = 8; i < n; ++i) fits = fits && static_cast<uint8_t>(b[i]) == (negative ? 0xff : 0x00);
    if (n > 8) fits = fits && ((static_cast<uint8_t>(b[7]) & 0x80) != 0) == negative;
    if (!fits) {
      Node* node = make(Node::Kind::BigInt);
      node->text = b;
      return node;
    }
    uint64_t x = negative ? ~uint64_t{0} : 0;
    for (size_t i = 0; i < std::min<size_t>(n, 8); ++i) {
      x &= ~(uint64_t{0xff} << (8 * i));
      x |= uint64_t{static_cast<uint8_t>(b[i])} << (8 * i);
    }
    return make_int(static_cast<int64_t>(x));
  }

  void add_items(Node* target, const std::vector<Node*>& items) {
    switch (target->kind) {
      case Node::Kind::List:
      case Node::Kind::Set: target->items.insert(target->items.end(), items.begin(), items.end()); break;
      case Node::Kind::Object: break;  // a list/set subclass: stays opaque, its items are dropped
      default: malformed(at() + " adds items to " + std::string(a_kind(target->kind)));
    }
  }
  void set_items(Node* target, const std::vector<Node*>& items) {
    if (items.size() % 2 != 0) malformed(at() + " has an odd number of keys and values");
    switch (target->kind) {
      case Node::Kind::Dict: target->items.insert(target->items.end(), items.begin(), items.end()); break;
      case Node::Kind::Object: break;  // a dict subclass (defaultdict, ...): stays opaque
      default: malformed(at() + " sets items of " + std::string(a_kind(target->kind)));
    }
  }
  void memo_put(uint64_t key) { memo_[key] = top(); }
  Node* memo_get(uint64_t key) {
    const auto it = memo_.find(key);
    if (it == memo_.end()) malformed(at() + " reads memo key " + std::to_string(key) + ", which was never stored");
    return it->second;
  }

  // callable(*args): collections.OrderedDict and set/frozenset become their containers; anything
  // else (tensor rebuilds included: legacy storages are filled after the pickle) an Object.
  Node* reduce(Node* callable, Node* args) {
    if (callable->kind != Node::Kind::Global) malformed(at() + " calls " + std::string(a_kind(callable->kind)));
    expect(args, Node::Kind::Tuple, "the arguments of " + callable->text + "." + callable->name + " at " + at());
    if (is_global(callable, "collections", "OrderedDict")) {
      Node* dict = make(Node::Kind::Dict);
      if (!args->items.empty()) {
        for (Node* pair : sequence(args->items.front(), "the argument of OrderedDict")) {
          if ((pair->kind != Node::Kind::Tuple && pair->kind != Node::Kind::List) || pair->items.size() != 2) {
            malformed("OrderedDict(...) at " + at() + " is given " + a_kind(pair->kind) + " instead of a pair");
          }
          dict->items.insert(dict->items.end(), pair->items.begin(), pair->items.end());
        }
      }
      return dict;
    }
    for (const char* module : {"builtins", "__builtin__"}) {
      if (is_global(callable, module, "set") || is_global(callable, module, "frozenset")) {
        return make_sequence(Node::Kind::Set, args->items.empty()
                                                  ? std::vector<Node*>{}
                                                  : sequence(args->items.front(), "the argument of set"));
      }
    }
    return new_object(callable, args);
  }
  const std::vector<Node*>& sequence(Node* node, const std::string& what) {
    if (node->kind != Node::Kind::List && node->kind != Node::Kind::Tuple) {
      malformed(what + " at " + at() + " is " + a_kind(node->kind) + ", expected a list or tuple");
    }
    return node->items;
  }
  Node* new_object(Node* cls, Node* args) {
    if (cls->kind != Node::Kind::Global) malformed(at() + " makes an object of " + std::string(a_kind(cls->kind)));
    return make_sequence(Node::Kind::Object, {cls, args});
  }

  // torch.save's persistent ids: ('storage', torch.<T>Storage, key, location, numel[, view]) and,
  // in the legacy format, ('module', class, source file, source) for module classes.
  Node* persistent_load(Node* pid) {
    expect(pid, Node::Kind::Tuple, "the persistent id at " + at());
    if (pid->items.empty() || pid->items[0]->kind != Node::Kind::String) malformed("bad persistent id at " + at());
    const std::string& type = pid->items[0]->text;
    if (type == "module" && pid->items.size() >= 2) return pid->items[1];
    if (type != "storage") malformed("unknown persistent id '" + type + "' at " + at());
    const auto& f = pid->items;
    if (f.size() != 5 && f.size() != 6)
      malformed("storage persistent id at " + at() + " has " + std::to_string(f.size()) + " fields");
    const Node* type_node = expect(f[1], Node::Kind::Global, "the storage type at " + at());
    const std::string& key = expect(f[2], Node::Kind::String, "the storage key at " + at())->text;
    const int64_t numel = expect(f[4], Node::Kind::Int, "the storage size at " + at())->integer;
    if (f.size() == 6 && f[5]->kind != Node::Kind::None)
      malformed("storage '" + key + "' is a view of another storage (unsupported)");
    const at::ScalarType dtype = storage_dtype(type_node->text, type_node->name);
    const int64_t element_size = static_cast<int64_t>(c10::elementSize(dtype));
    if (numel < 0 || numel > std::numeric_limits<int64_t>::max() / element_size) {
      malformed("storage '" + key + "' has a bad size " + std::to_string(numel));
    }
    auto [it, added] = graph_.storages.try_emplace(key, Storage{key, dtype, numel, {}});
    if (!added && (it->second.dtype != dtype || it->second.numel != numel)) {
      malformed("storage '" + key + "' is named with two types or sizes");
    }
    Node* node = make(Node::Kind::Storage);
    node->storage = &it->second;
    return node;
  }

  void step() {
    switch (op_) {
      case kProto: {
        const auto protocol = static_cast<uint8_t>(take(1)[0]);
        if (protocol > 5) malformed("unsupported pickle protocol " + std::to_string(protocol) + " at " + at());
        break;
      }
      case kFrame: take(8); break;  // protocol 4 framing: the bytes follow in any case
      case kMark: marks_.push_back(stack_.size()); break;
      case kPop:
        if (stack_.size() > floor()) {
          stack_.pop_back();
        } else {
          pop_mark();
        }
        break;
      case kPopMark: pop_mark(); break;
      case kDup: push(top()); break;
      case kNone: push(make(Node::Kind::None)); break;
      case kNewTrue: push(make_bool(true)); break;
      case kNewFalse: push(make_bool(false)); break;
      case kBinInt: push(make_int(static_cast<int32_t>(little_endian(4)))); break;
      case kBinInt1: push(make_int(static_cast<int64_t>(little_endian(1)))); break;
      case kBinInt2: push(make_int(static_cast<int64_t>(little_endian(2)))); break;
      case kLong1: push(make_long(take(little_endian(1)))); break;
      case kLong4: {
        const auto n = static_cast<int32_t>(little_endian(4));
        if (n < 0) malformed(at() + " has a negative length");
        push(make_long(take(static_cast<uint64_t>(n))));
        break;
      }
      case kBinFloat: {
        const uint64_t little = little_endian(8);
        uint64_t big = 0;  // BINFLOAT is big-endian
        for (int i = 0; i < 8; ++i) big = (big << 8) | ((little >> (8 * i)) & 0xff);
        Node* node = make(Node::Kind::Float);
        std::memcpy(&node->real, &big, sizeof big);
        push(node);
        break;
      }
      case kShortBinUnicode:
      case kShortBinString:
      case kShortBinBytes: push(make_string(take(little_endian(1)))); break;
      case kBinUnicode:
      case kBinString:
      case kBinBytes: push(make_string(take(little_endian(4)))); break;
      case kBinUnicode8:
      case kBinBytes8: push(make_string(take(little_endian(8)))); break;
      case kEmptyTuple: push(make(Node::Kind::Tuple)); break;
      case kTuple: push(make_sequence(Node::Kind::Tuple, pop_mark())); break;
      case kTuple1: {
        Node* a = pop();
        push(make_sequence(Node::Kind::Tuple, {a}));
        break;
      }
      case kTuple2: {
        Node* b = pop();
        Node* a = pop();
        push(make_sequence(Node::Kind::Tuple, {a, b}));
        break;
      }
      case kTuple3: {
        Node* c = pop();
        Node* b = pop();
        Node* a = pop();
        push(make_sequence(Node::Kind::Tuple, {a, b, c}));
        break;
      }
      case kEmptyList: push(make(Node::Kind::List)); break;
      case kList: push(make_sequence(Node::Kind::List, pop_mark())); break;
      case kAppend: {
        Node* item = pop();
        add_items(top(), {item});
        break;
      }
      case kAppends:
      case kAddItems: {
        const std::vector<Node*> items = pop_mark();
        add_items(top(), items);
        break;
      }
      case kEmptySet: push(make(Node::Kind::Set)); break;
      case kFrozenSet: push(make_sequence(Node::Kind::Set, pop_mark())); break;
      case kEmptyDict: push(make(Node::Kind::Dict)); break;
      case kDict: {
        Node* dict = make(Node::Kind::Dict);
        set_items(dict, pop_mark());
        push(dict);
        break;
      }
      case kSetItem: {
        Node* value = pop();
        Node* key = pop();
        set_items(top(), {key, value});
        break;
      }
      case kSetItems: {
        const std::vector<Node*> items = pop_mark();
        set_items(top(), items);
        break;
      }
      case kGlobal: {
        std::string module = line();
        push(make_global(std::move(module), line()));
        break;
      }
      case kStackGlobal: {
        Node* name = expect(pop(), Node::Kind::String, "the name of STACK_GLOBAL at " + at());
        Node* module = expect(pop(), Node::Kind::String, "the module of STACK_GLOBAL at " + at());
        push(make_global(module->text, name->text));
        break;
      }
      case kReduce: {
        Node* args = pop();
        Node* callable = pop();
        push(reduce(callable, args));
        break;
      }
      case kNewObj: {
        Node* args = pop();
        Node* cls = pop();
        push(new_object(cls, args));
        break;
      }
      case kNewObjEx: {
        pop();  // kwargs
        Node* args = pop();
        Node* cls = pop();
        push(new_object(cls, args));
        break;
      }
      case kBuild:
        pop();  // the state: an opaque object's is not kept; a dict's (a state dict's _metadata) is dropped
        top();
        break;
      case kBinPersId: push(persistent_load(pop())); break;
      case kBinPut: memo_put(little_endian(1)); break;
      case kLongBinPut: memo_put(little_endian(4)); break;
      case kPut: memo_put(decimal_line()); break;
      case kMemoize: memo_put(memo_.size()); break;
      case kBinGet: push(memo_get(little_endian(1))); break;
      case kLongBinGet: push(memo_get(little_endian(4))); break;
      case kGet: push(memo_get(decimal_line())); break;
      default: malformed("unsupported pickle " + at());
    }
  }

  std::string_view bytes_;
  size_t pos_;
  std::string where_;
  Graph& graph_;
  std::vector<Node*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Node*> memo_;
  uint8_t op_ = 0;
  size_t op_pos_ = 0;
};

// Turns the nodes into PickleValues, rebuilding tensors over the (now filled) storages; a tensor
// object referenced twice becomes one at::Tensor. Depth and total size are bounded.
class Converter {
 public:
  explicit Converter(const Graph& graph) : budget_(static_cast<int64_t>(graph.nodes.size()) + kMaxSharedExpansion) {}

  PickleValue value(const Node* node, int depth) {
    if (depth > kMaxDepth) malformed("objects nested deeper than " + std::to_string(kMaxDepth) + " levels");
    if (--budget_ < 0)
      malformed("the pickle references its shared objects too many times (over " + std::to_string(kMaxSharedExpansion) +
                " extra values)");
    PickleValue out;
    switch (node->kind) {
      case Node::Kind::None: break;
      case Node::Kind::Bool: out.value = node->integer != 0; break;
      case Node::Kind::Int: out.value = node->integer; break;
      case Node::Kind::BigInt: out.value = PickleValue::Opaque{"builtins", "int"}; break;  // beyond int64
      case Node::Kind::Float: out.value = node->real; break;
      case Node::Kind::String: out.value = node->text; break;
      case Node::Kind::List:
      case Node::Kind::Tuple:
      case Node::Kind::Set: {
        PickleValue::List items;
        items.reserve(node->items.size());
        for (const Node* item : node->items) items.push_back(value(item, depth + 1));
        out.value = std::move(items);
        out.is_tuple = node->kind == Node::Kind::Tuple;
        break;
      }
      case Node::Kind::Dict: {
        PickleValue::Dict items;
        items.reserve(node->items.size() / 2);
        for (size_t i = 0; i + 1 < node->items.size(); i += 2) {
          items.emplace_back(value(node->items[i], depth + 1), value(node->items[i + 1], depth + 1));
        }
        out.value = std::move(items);
        break;
      }
      case Node::Kind::Global: out.value = PickleValue::Opaque{node->text, node->name}; break;
      case Node::Kind::Object: {
        const Node* cls = node->items[0];
        if (is_tensor_rebuild(cls)) {
          out.value = tensor(node, depth);
        } else {
          out.value = PickleValue::Opaque{cls->text, cls->name};
        }
        break;
      }
      case Node::Kind::Storage: out.value = storage_data(node); break;  // a bare storage: its elements
    }
    return out;
  }

 private:
  static bool is_tensor_rebuild(const Node* fn) {
    return is_global(fn, "torch._utils", "_rebuild_tensor_v2") || is_global(fn, "torch._utils", "_rebuild_tensor") ||
           is_global(fn, "torch._utils", "_rebuild_parameter") ||
           is_global(fn, "torch._utils", "_rebuild_parameter_with_state") ||
           is_global(fn, "torch._tensor", "_rebuild_from_type_v2");
  }

  static const at::Tensor& storage_data(const Node* node) {
    if (!node->storage->data.defined()) malformed("storage '" + node->storage->key + "' has no data in the file");
    return node->storage->data;
  }

  static std::vector<int64_t> int_list(const Node* node, const std::string& what) {
    if (node->kind != Node::Kind::Tuple && node->kind != Node::Kind::List) {
      malformed(what + " is " + a_kind(node->kind) + ", expected a tuple of ints");
    }
    std::vector<int64_t> out;
    for (const Node* item : node->items) {
      if (item->kind != Node::Kind::Int) malformed(what + " holds " + a_kind(item->kind) + ", expected ints");
      out.push_back(item->integer);
    }
    return out;
  }

  // storage.as_strided(size, stride, offset), after checking that it stays inside the storage.
  static at::Tensor strided_view(const Node* storage_node, const Node* offset_node, const Node* size_node,
                                 const Node* stride_node) {
    expect((storage_node), Node::Kind::Storage, "the storage of a tensor");
    const at::Tensor& data = storage_data(storage_node);
    const std::string what = "the tensor over storage '" + storage_node->storage->key + "'";
    const int64_t offset = expect((offset_node), Node::Kind::Int, "the offset of " + what)->integer;
    const std::vector<int64_t> size = int_list(size_node, "the size of " + what);
    const std::vector<int64_t> stride = int_list(stride_node, "the stride of " + what);
    if (size.size() != stride.size())
      malformed(what + " has " + std::to_string(size.size()) + " sizes but " + std::to_string(stride.size()) +
                " strides");
    bool empty = false;
    __int128 last = offset;  // the last element's index
    for (size_t i = 0; i < size.size(); ++i) {
      if (size[i] < 0 || stride[i] < 0) malformed(what + " has a negative size or stride");
      empty = empty || size[i] == 0;
      if (size[i] > 0) last += static_cast<__int128>(size[i] - 1) * stride[i];
    }
    if (offset < 0 || (!empty && last >= data.numel())) {
      malformed(what + " (offset " + std::to_string(offset) + ", size " + c10::str(at::IntArrayRef(size)) +
                ", stride " + c10::str(at::IntArrayRef(stride)) + ") reaches beyond the storage's " +
                std::to_string(data.numel()) + " elements");
    }
    return data.as_strided(size, stride, offset);
  }

  at::Tensor tensor(const Node* object, int depth) {
    const auto cached = tensors_.find(object);
    if (cached != tensors_.end()) return cached->second;
    at::Tensor out = rebuild(object->items[0], object->items[1], depth);
    tensors_.emplace(object, out);
    return out;
  }

  // fn(*args) for the tensor rebuild functions (is_tensor_rebuild).
  at::Tensor rebuild(const Node* fn, const Node* args, int depth) {
    if (depth > kMaxDepth) malformed("objects nested deeper than " + std::to_string(kMaxDepth) + " levels");
    const std::string what = "the arguments of " + fn->text + "." + fn->name;
    const auto arg = [&](size_t i) {
      if (args->kind != Node::Kind::Tuple || args->items.size() <= i) malformed(what + " are too few");
      return args->items[i];
    };
    if (fn->name == "_rebuild_tensor_v2" || fn->name == "_rebuild_tensor") {
      return strided_view(arg(0), arg(1), arg(2), arg(3));
    }
    if (fn->name == "_rebuild_from_type_v2") {  // (function, type, arguments, state): a Tensor subclass
      const Node* inner = arg(0);
      if (!is_tensor_rebuild(inner))
        malformed(what + " rebuild with " + inner->text + "." + inner->name + " (unsupported)");
      return rebuild(inner, arg(2), depth + 1);
    }
    // _rebuild_parameter(data, requires_grad, hooks[, state]): an nn.Parameter saved as such
    const Node* data = arg(0);
    if (data->kind != Node::Kind::Object || !is_tensor_rebuild(data->items[0])) {
      malformed(what + " hold " + std::string(a_kind(data->kind)) + " instead of a tensor");
    }
    return tensor(data, depth + 1);
  }

  int64_t budget_;
  std::unordered_map<const Node*, at::Tensor> tensors_;
};

// PyTorchStreamReader over bytes already in memory.
class MemoryReadAdapter final : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit MemoryReadAdapter(std::string_view bytes) : bytes_(bytes) {}
  size_t size() const override { return bytes_.size(); }
  size_t read(uint64_t pos, void* buf, size_t n, const char* /*what*/) const override {
    if (pos >= bytes_.size()) return 0;
    n = std::min<size_t>(n, bytes_.size() - pos);
    std::memcpy(buf, bytes_.data() + pos, n);
    return n;
  }

 private:
  std::string_view bytes_;
};

void check_storage_size(const Storage& storage, uint64_t nbytes, const std::string& where) {
  const uint64_t expected = static_cast<uint64_t>(storage.numel) * c10::elementSize(storage.dtype);
  if (nbytes != expected) {
    malformed("storage '" + storage.key + "' " + where + " holds " + std::to_string(nbytes) + " bytes, its " +
              std::to_string(storage.numel) + " " + c10::toString(storage.dtype) + " elements need " +
              std::to_string(expected));
  }
}

// The zip format (torch >= 1.6): the pickle in data.pkl, storage <key> in the record data/<key>.
Node* read_zip(std::string_view bytes, Graph& graph) {
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> zip;
  try {
    zip = std::make_unique<caffe2::serialize::PyTorchStreamReader>(std::make_shared<MemoryReadAdapter>(bytes));
  } catch (const c10::Error& e) {
    const std::string message = e.what_without_backtrace();
    malformed("not a readable zip archive (truncated or damaged?): " + message.substr(0, message.find('\n')));
  }
  if (!zip->hasRecord("data.pkl")) malformed("a zip archive without a data.pkl record: not written by torch.save");
  if (zip->hasRecord("byteorder")) {
    auto [data, size] = zip->getRecord("byteorder");
    const std::string order(static_cast<const char*>(data.get()), size);
    if (order != "little") malformed("written with byte order '" + order + "' (only little-endian files are read)");
  }
  auto [pickle, pickle_size] = zip->getRecord("data.pkl");
  Node* root = Unpickler({static_cast<const char*>(pickle.get()), pickle_size}, 0, "data.pkl", graph).run();
  for (auto& [key, storage] : graph.storages) {
    const std::string record = "data/" + key;
    if (!zip->hasRecord(record)) malformed("storage '" + key + "' has no record " + record);
    check_storage_size(storage, zip->getRecordSize(record), "(record " + record + ")");
    storage.data = at::empty({storage.numel}, at::TensorOptions().dtype(storage.dtype));
    zip->getRecord(record, storage.data.data_ptr(), storage.data.nbytes());
  }
  return root;
}

// The legacy format (torch < 1.6): five pickles (magic number, protocol version, sys info, the
// object, its storage keys), then per key, in that order, an int64 element count and the raw
// little-endian elements.
Node* read_legacy(std::string_view bytes, Graph& graph) {
  size_t pos = 0;
  const auto next = [&](const std::string& what) {
    Unpickler unpickler(bytes, pos, what + " pickle (legacy format)", graph);
    Node* node = unpickler.run();
    pos = unpickler.position();
    return node;
  };
  try {
    const Node* magic = next("the magic number");
    if (magic->kind != Node::Kind::BigInt || magic->text != kLegacyMagic)
      malformed("its first pickle is not the magic number");
  } catch (const Malformed& e) {
    malformed(std::string("neither a zip archive (torch >= 1.6) nor torch.save's legacy format (torch < 1.6): ") +
              e.what());
  }
  const Node* version = next("the protocol version");
  if (version->kind != Node::Kind::Int || version->integer != kLegacyProtocolVersion) {
    malformed("legacy protocol version is not " + std::to_string(kLegacyProtocolVersion));
  }
  const Node* sys_info = next("the sys info");
  for (size_t i = 0; sys_info->kind == Node::Kind::Dict && i + 1 < sys_info->items.size(); i += 2) {
    const Node* key = sys_info->items[i];
    const Node* value = sys_info->items[i + 1];
    if (key->kind == Node::Kind::String && key->text == "little_endian" && value->kind == Node::Kind::Bool &&
        !value->integer) {
      malformed("written on a big-endian machine (only little-endian files are read)");
    }
  }
  Node* root = next("the object");
  const Node* keys = next("the storage keys");
  if (keys->kind != Node::Kind::List)
    malformed("the storage keys pickle holds " + std::string(a_kind(keys->kind)) + ", expected a list");
  for (const Node* key_node : keys->items) {
    const std::string& key = expect((key_node), Node::Kind::String, "a storage key")->text;
    const auto it = graph.storages.find(key);
    if (it == graph.storages.end()) malformed("storage '" + key + "' is listed but no tensor uses it");
    Storage& storage = it->second;
    if (storage.data.defined()) malformed("storage '" + key + "' is listed twice");
    if (bytes.size() - pos < 8)
      malformed("truncated: storage '" + key + "' has no element count at byte " + std::to_string(pos));
    int64_t numel = 0;
    std::memcpy(&numel, bytes.data() + pos, sizeof numel);  // little-endian: checked above
    pos += sizeof numel;
    if (numel != storage.numel) {
      malformed("storage '" + key + "' holds " + std::to_string(numel) + " elements, its persistent id says " +
                std::to_string(storage.numel));
    }
    const size_t nbytes = static_cast<size_t>(numel) * c10::elementSize(storage.dtype);
    if (bytes.size() - pos < nbytes) {
      malformed("truncated: storage '" + key + "' needs " + std::to_string(nbytes) + " bytes at byte " +
                std::to_string(pos) + ", " + std::to_string(bytes.size() - pos) + " left");
    }
    storage.data = at::empty({numel}, at::TensorOptions().dtype(storage.dtype));
    std::memcpy(storage.data.data_ptr(), bytes.data() + pos, nbytes);
    pos += nbytes;
  }
  return root;
}

// The Python type of a value, with its article: "a tensor", "a torch.nn.modules.activation.ReLU".
std::string a_type(const PickleValue& value) {
  if (value.is_none()) return "None";
  if (value.as_bool()) return "a bool";
  if (value.as_int()) return "an int";
  if (value.as_double()) return "a float";
  if (value.as_string()) return "a str";
  if (value.as_list()) return value.is_tuple ? "a tuple" : "a list";
  if (value.as_dict()) return "a dict";
  if (value.as_tensor()) return "a tensor";
  const PickleValue::Opaque* opaque = value.as_opaque();
  return "a " + opaque->module + "." + opaque->name;
}

std::string quoted(const fs::path& path) { return "'" + path.string() + "'"; }

// A tensor as written: detached, on the CPU, contiguous, and alone in its storage (a view of a
// larger storage would write all of it).
at::Tensor writable(const at::Tensor& tensor, const std::string& name) {
  if (!tensor.defined()) throw std::invalid_argument("tensor '" + name + "' is undefined");
  at::Tensor out = tensor.detach().to(at::kCPU).contiguous();
  if (out.storage_offset() != 0 || out.storage().nbytes() != out.nbytes()) out = out.clone();
  return out;
}

void write_atomic(const fs::path& path, const std::function<c10::IValue()>& make_value) {
  try {
    write_file_atomic(path, torch_save_bytes(make_value()));
  } catch (const c10::Error& e) {
    const std::string message = e.what_without_backtrace();
    throw TorchFileError("cannot write torch file " + quoted(path) + ": " + message.substr(0, message.find('\n')));
  } catch (const std::exception& e) {
    throw TorchFileError("cannot write torch file " + quoted(path) + ": " + e.what());
  }
}

}  // namespace

const PickleValue* PickleValue::find(const std::string& key) const {
  const Dict* dict = as_dict();
  if (dict == nullptr) return nullptr;
  for (const auto& [k, v] : *dict) {
    const std::string* name = k.as_string();
    if (name != nullptr && *name == key) return &v;
  }
  return nullptr;
}

std::string torch_save_bytes(const c10::IValue& value) {
  std::vector<char> pickled;
  torch::jit::Pickler pickler([&](const char* data, size_t size) { pickled.insert(pickled.end(), data, data + size); },
                              /*tensor_table=*/nullptr, /*type_renamer=*/nullptr, /*memoized_class_types=*/nullptr,
                              /*get_tensor_id=*/nullptr, /*tag_aggregates=*/false);
  pickler.protocol();
  pickler.pushIValue(value);
  pickler.stop();
  std::string archive;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t size) {
    archive.append(static_cast<const char*>(data), size);
    return size;
  });
  torch::jit::writeArchiveAndTensors("data", pickled.data(), pickled.size(), pickler.tensorData(), writer);
  writer.writeRecord("byteorder", "little", 6);
  writer.writeEndOfFile();
  return archive;
}

PickleValue read_torch_file(const fs::path& path) {
  std::string bytes;
  try {
    bytes = read_file(path);
  } catch (const std::exception& e) {
    throw TorchFileError(e.what());
  }
  const std::string prefix = "cannot read torch file " + quoted(path) + ": ";
  try {
    Graph graph;
    const Node* root = nullptr;
    if (bytes.empty()) malformed("the file is empty");
    if (bytes.starts_with("PK\x03\x04")) {
      root = read_zip(bytes, graph);
    } else if (static_cast<uint8_t>(bytes[0]) == kProto) {
      root = read_legacy(bytes, graph);
    } else {
      malformed("neither a zip archive (torch >= 1.6) nor torch.save's legacy format (torch < 1.6)");
    }
    return Converter(graph).value(root, 0);
  } catch (const Malformed& e) {
    throw TorchFileError(prefix + e.what());
  } catch (const c10::Error& e) {
    const std::string message = e.what_without_backtrace();
    throw TorchFileError(prefix + message.substr(0, message.find('\n')));
  } catch (const std::exception& e) {  // std::bad_alloc on absurd sizes, ...
    throw TorchFileError(prefix + e.what());
  }
}

NamedTensors read_state_dict(const fs::path& path) {
  PickleValue value = read_torch_file(path);
  const std::string not_state_dict = "torch file " + quoted(path) + " is not a state dict (a dict of name -> tensor): ";
  auto* dict = std::get_if<PickleValue::Dict>(&value.value);
  if (dict == nullptr) throw TorchFileError(not_state_dict + "it holds " + a_type(value));
  NamedTensors tensors;
  tensors.reserve(dict->size());
  for (auto& [key, tensor] : *dict) {
    const std::string* name = key.as_string();
    if (name == nullptr) {
      throw TorchFileError(not_state_dict + "its key #" + std::to_string(tensors.size()) + " is " + a_type(key));
    }
    if (tensor.as_tensor() == nullptr) {
      throw TorchFileError(not_state_dict + "the value of '" + *name + "' is " + a_type(tensor));
    }
    tensors.emplace_back(*name, std::move(std::get<at::Tensor>(tensor.value)));
  }
  return tensors;
}

at::Tensor read_tensor_file(const fs::path& path) {
  const PickleValue value = read_torch_file(path);
  const at::Tensor* tensor = value.as_tensor();
  if (tensor == nullptr)
    throw TorchFileError("torch file " + quoted(path) + " holds " + a_type(value) + ", not a tensor");
  return *tensor;
}

void write_state_dict(const fs::path& path, const NamedTensors& tensors) {
  write_atomic(path, [&] {
    c10::impl::GenericDict dict(c10::StringType::get(), c10::TensorType::get());
    for (const auto& [name, tensor] : tensors) {
      if (dict.contains(name)) throw std::invalid_argument("tensor name '" + name + "' appears twice");
      dict.insert(name, writable(tensor, name));
    }
    return c10::IValue(dict);
  });
}

void write_tensor_file(const fs::path& path, const at::Tensor& tensor) {
  write_atomic(path, [&] { return c10::IValue(writable(tensor, "tensor")); });
}

}  // namespace longgan::checkpoints

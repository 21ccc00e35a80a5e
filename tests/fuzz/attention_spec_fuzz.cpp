// libFuzzer: attention spec texts ("smyrf:hashes=2,q_cluster=64"); a parsed spec must print back to
// a text that parses to the same spec (to_string is canonical).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <torch/torch.h>  // the attention headers rely on the precompiled torch header elsewhere

#include "attention/attention.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto spec = longgan::attention::parse_attention_spec(text);
    const auto again = longgan::attention::parse_attention_spec(longgan::attention::to_string(spec));
    if (longgan::attention::to_string(again) != longgan::attention::to_string(spec)) std::abort();
  } catch (const std::invalid_argument&) {
  }
  return 0;
}

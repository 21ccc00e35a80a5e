// AttentionSpec: parsing, printing, JSON, and the errors a user sees for bad options.
#include <gtest/gtest.h>

#include "attention/attention.h"
#include "attention_test_support.h"

namespace longgan::attention {
namespace {

// The message of the std::invalid_argument `f` throws ("" if none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(AttentionSpec, EveryTypeRoundTripsThroughStringAndJson) {
  for (const auto& text : {"dense", "smyrf:hashes=2,q_cluster=32,k_cluster=8", "clustered:clusters=7,bits=16",
                           "improved_clustered:clusters=5,topk=3,hash_bias=false", "combiner_axial"}) {
    auto spec = parse_attention_spec(text);
    EXPECT_EQ(parse_attention_spec(to_string(spec)), spec) << text;
    EXPECT_EQ(attention_spec_from_json(to_json(spec)), spec) << text;
    EXPECT_EQ(attention_spec_from_json(nlohmann::json::parse(to_json(spec).dump())), spec) << text;
  }
}

TEST(AttentionSpec, ParsesOptionsAndKeepsDefaults) {
  auto spec = parse_attention_spec("smyrf:hashes=2,q_cluster=64");
  const auto& smyrf = std::get<SmyrfOptions>(spec);
  EXPECT_EQ(smyrf.hashes, 2);
  EXPECT_EQ(smyrf.q_cluster, 64);
  EXPECT_EQ(smyrf.k_cluster, SmyrfOptions{}.k_cluster);
  EXPECT_EQ(to_string(spec), "smyrf:hashes=2,q_cluster=64,k_cluster=512");
  auto improved = std::get<ImprovedClusteredOptions>(parse_attention_spec("improved_clustered:topk=7,bits=12"));
  EXPECT_EQ(improved.topk, 7);
  EXPECT_EQ(improved.clustering.bits, 12);
  EXPECT_EQ(to_json(parse_attention_spec("clustered"))["clusters"], 100);
}

TEST(AttentionSpec, BadOptionsAreRejectedWithTheOptionAndTheAllowedRange) {
  EXPECT_NE(error_of([] { parse_attention_spec("flash"); }).find("unknown attention type 'flash'"), std::string::npos);
  EXPECT_NE(error_of([] { parse_attention_spec("flash"); }).find("smyrf"), std::string::npos);
  auto unknown_key = error_of([] { parse_attention_spec("smyrf:buckets=4"); });
  EXPECT_NE(unknown_key.find("unknown option 'buckets'"), std::string::npos) << unknown_key;
  EXPECT_NE(unknown_key.find("hashes, q_cluster, k_cluster"), std::string::npos) << unknown_key;
  EXPECT_NE(error_of([] { parse_attention_spec("smyrf:hashes=four"); }).find("'hashes' needs an integer"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_attention_spec("smyrf:hashes=0"); }).find("hashes must be in [1, 64]"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_attention_spec("smyrf:hashes"); }).find("expected key=value"), std::string::npos);
  EXPECT_NE(error_of([] { parse_attention_spec("clustered:bits=64"); }).find("bits must be in [1, 63]"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_attention_spec("clustered:hash_bias=maybe"); }).find("true or false"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_attention_spec("dense:x=1"); }).find("options: none"), std::string::npos);
  auto wrong_json = error_of([] { attention_spec_from_json({{"type", "smyrf"}, {"hashes", "4"}}); });
  EXPECT_NE(wrong_json.find("'hashes' must be an integer"), std::string::npos) << wrong_json;
  EXPECT_NE(error_of([] { attention_spec_from_json({{"hashes", 4}}); }).find("'type'"), std::string::npos);
}

TEST(AttentionSpec, LengthChecksRunBeforeAnyWork) {
  auto q = testing::randn({1, 1, 16, 4}, 1), k = testing::randn({1, 1, 8, 4}, 2), v = testing::randn({1, 1, 8, 3}, 3);
  auto too_big = error_of([&] { attend(parse_attention_spec("smyrf:hashes=1,q_cluster=32,k_cluster=8"), q, k, v); });
  EXPECT_NE(too_big.find("q_cluster=32 is larger than the 16 queries"), std::string::npos) << too_big;
  auto counts = error_of([&] { attend(parse_attention_spec("smyrf:hashes=1,q_cluster=4,k_cluster=4"), q, k, v); });
  EXPECT_NE(counts.find("gives 4 clusters but 8 keys / k_cluster=4 gives 2"), std::string::npos) << counts;
  auto clusters = error_of([&] { attend(parse_attention_spec("clustered:clusters=17"), q, k, v); });
  EXPECT_NE(clusters.find("clusters=17 exceeds the 16 queries"), std::string::npos) << clusters;
  auto topk = error_of([&] { attend(parse_attention_spec("improved_clustered:clusters=2,topk=9"), q, k, v); });
  EXPECT_NE(topk.find("topk=9 exceeds the 8 keys"), std::string::npos) << topk;
  auto shapes = error_of([&] { attend(DenseOptions{}, q, testing::randn({1, 1, 8, 5}, 4), v); });
  EXPECT_NE(shapes.find("same feature size"), std::string::npos) << shapes;
}

TEST(AttentionSpec, FittedToLengthsKeepsOtherOptionsAndFits) {
  // 1,024 queries, 256 keys: 8 clusters of 128 queries and 32 keys; hashes kept.
  auto smyrf = std::get<SmyrfOptions>(fitted_to_lengths(parse_attention_spec("smyrf:hashes=3"), 1024, 256));
  EXPECT_EQ(smyrf.hashes, 3);
  EXPECT_EQ(smyrf.q_cluster, 128);
  EXPECT_EQ(smyrf.k_cluster, 32);
  // 65,536 queries: 32 clusters of 2,048 (the budget), keys 16,384 / 32 = 512.
  auto large = std::get<SmyrfOptions>(fitted_to_lengths(parse_attention_spec("smyrf"), 65536, 16384));
  EXPECT_EQ(large.q_cluster, 2048);
  EXPECT_EQ(large.k_cluster, 512);
  // 12 keys cannot be cut into 8 equal clusters: 6 of 2 (queries 48 / 6 = 8).
  auto odd = std::get<SmyrfOptions>(fitted_to_lengths(parse_attention_spec("smyrf"), 48, 12));
  EXPECT_EQ(odd.q_cluster, 8);
  EXPECT_EQ(odd.k_cluster, 2);
  EXPECT_NO_THROW(validate_lengths(SmyrfOptions(odd), 48, 12));
  auto improved = std::get<ImprovedClusteredOptions>(
      fitted_to_lengths(parse_attention_spec("improved_clustered:topk=32,clusters=100"), 64, 16));
  EXPECT_EQ(improved.clustering.clusters, 64);
  EXPECT_EQ(improved.topk, 16);
}

TEST(AttentionSpec, OnlyBareSpecsThatDoNotFitAreFitted) {
  const AttentionSpec bare = parse_attention_spec("smyrf");  // 2048/512: more than 1,024 queries
  EXPECT_THROW(validate_lengths(bare, 1024, 256), std::invalid_argument);
  const AttentionSpec fitted = fit_if_bare(bare, 1024, 256);
  EXPECT_EQ(to_string(fitted), to_string(fitted_to_lengths(bare, 1024, 256)));
  EXPECT_NO_THROW(validate_lengths(fitted, 1024, 256));
  // A bare spec that fits is kept as it is (16,384 queries: 8 clusters of 2,048).
  EXPECT_EQ(to_string(fit_if_bare(bare, 16384, 4096)), to_string(bare));
  EXPECT_EQ(to_string(fit_if_bare(bare, 4096, 1024)), to_string(bare));
  // Options the user chose are never changed: the length check names them.
  const AttentionSpec chosen = parse_attention_spec("smyrf:q_cluster=4096");
  EXPECT_EQ(to_string(fit_if_bare(chosen, 1024, 256)), to_string(chosen));
  EXPECT_THROW(validate_lengths(fit_if_bare(chosen, 1024, 256), 1024, 256), std::invalid_argument);
}

}  // namespace
}  // namespace longgan::attention

// The swap advisor's pick on made-up measurements whose answer is known.
#include "app/attention_error.h"

#include <gtest/gtest.h>

namespace longgan::app {
namespace {

SpecError row(const std::string& spec, double block_error, double ms, const std::string& failure = "") {
  SpecError e;
  e.spec = e.run = spec;
  e.block_error = block_error;
  e.attention_error = 10 * block_error;
  e.milliseconds = ms;
  e.failure = failure;
  return e;
}

// Two blocks; rows: dense, exact (slow), close (fast), coarse (fastest), none (free but far).
std::vector<BlockErrors> two_blocks() {
  return {{"G attention.2", 32,
           {row("dense", 0, 10), row("exact", 1e-7, 12), row("close", 0.004, 5), row("coarse", 0.02, 2),
            row("none", 0.3, 0)}},
          {"D attention.0", 16,
           {row("dense", 0, 4), row("exact", 2e-7, 5), row("close", 0.009, 2), row("coarse", 0.05, 1),
            row("none", 0.2, 0)}}};
}

TEST(AttentionAdvisor, PicksTheCheapestSpecUnderTheBoundOnEveryBlock) {
  const auto blocks = two_blocks();
  EXPECT_EQ(advise(blocks, 1.0), 4u);     // everything qualifies: none costs nothing
  EXPECT_EQ(advise(blocks, 0.1), 3u);     // none is out (0.3): coarse
  EXPECT_EQ(advise(blocks, 0.03), 2u);    // coarse's D block (0.05) is out: close
  EXPECT_EQ(advise(blocks, 0.005), 1u);   // close's D block (0.009) is out: exact
  EXPECT_EQ(advise(blocks, 0.009), 2u);   // the bound is inclusive
  EXPECT_EQ(advise(blocks, 1e-9), std::nullopt);
  EXPECT_EQ(advise({}, 1.0), std::nullopt);
}

TEST(AttentionAdvisor, ASpecThatDoesNotFitABlockIsNeverPicked) {
  auto blocks = two_blocks();
  blocks[1].rows[3] = row("coarse", 0, 0, "smyrf: q_cluster 512 > 256 queries");
  EXPECT_EQ(advise(blocks, 0.1), 2u);
  std::ostringstream advice;
  print_advice(advice, blocks, 0.1, "runs/x");
  EXPECT_NE(advice.str().find("advice: close keeps every block's output within 0.1"), std::string::npos)
      << advice.str();
  EXPECT_NE(advice.str().find("7.00 ms against 14.00 ms with dense (0.50x, saves 50%)"), std::string::npos)
      << advice.str();
  EXPECT_NE(advice.str().find("longgan sample --checkpoint runs/x --out samples.png --attention close"),
            std::string::npos)
      << advice.str();
  std::ostringstream none;
  print_advice(none, blocks, 1e-9, "runs/x");
  EXPECT_NE(none.str().find("keep dense"), std::string::npos) << none.str();
  const auto json = attention_errors_json(blocks, 0.1);
  EXPECT_EQ(json["advice"], "close");
  EXPECT_EQ(json["blocks"][1]["specs"][3]["error"], "smyrf: q_cluster 512 > 256 queries");
}

}  // namespace
}  // namespace longgan::app
